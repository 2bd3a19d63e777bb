"""Two sets of texts side by side: ``compare`` and the ``Comparison`` it returns."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..errors import TooFewTermsError
from ..inputs import as_texts
from .embeddings import _unit, embed
from .maps import plot_map
from .terms import _names, distinctive_terms, frequencies, plot_terms, side_by_side
from .tokens import tokenize, type_token_ratio
from .topic_models import Topics, topics


@dataclass
class Comparison:
    """Everything ``compare`` found about two sets of texts; display it, or read the parts.

    ``summary`` (sizes, lengths, vocabulary, embedding similarity), ``frequencies`` (top terms per
    group, side by side), ``distinctive`` (``distinctive_terms`` table), ``topics`` (fitted on both
    groups) and ``topic_shares`` (mean share per group), ``embeddings`` and ``groups`` (one label per
    text, A's texts first) or None when ``embed=False``.
    """

    names: tuple[str, str]
    summary: object
    frequencies: object
    distinctive: object
    topics: Topics
    topic_shares: object
    embeddings: np.ndarray | None
    groups: list[str]
    texts: list[str]

    def distinctive_wide(self):
        """Distinctive terms as two columns, one per group."""
        return side_by_side(self.distinctive, names=self.names)

    def __repr__(self) -> str:
        a, b = self.names
        return (f"Comparison of {a!r} ({len(self.groups) - self.groups.count(b)} texts) vs {b!r} "
                f"({self.groups.count(b)} texts)\n\n{self.summary.to_string()}\n\nmost distinctive terms:\n"
                f"{self.distinctive_wide().head(10).to_string()}")

    def _repr_html_(self) -> str:
        import html as _h

        def block(title, df):
            return (f"<div style='display:inline-block;vertical-align:top;margin:0 18px 12px 0'>"
                    f"<b>{_h.escape(title)}</b>{df.to_html(max_rows=20)}</div>")

        a, b = self.names
        return (f"<div><h4>{_h.escape(a)} vs {_h.escape(b)}</h4>"
                + block("summary", self.summary)
                + block("most frequent terms", self.frequencies)
                + block("most distinctive terms", self.distinctive_wide())
                + block("topic share per group", self.topic_shares.T.round(3))
                + "</div>")

    def plot(self, method: str = "auto"):
        """One figure: distinctive terms of each group, topic shares per group, and the embedding map."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 2, figsize=(12, 9))
        axes = axes.ravel()
        plot_terms(self.distinctive, names=self.names, ax=axes[:2], title="distinctive:")
        self.topic_shares.T.plot.barh(ax=axes[2])
        axes[2].invert_yaxis()
        axes[2].set_xlabel("mean topic share")
        axes[2].set_title("topic share per group")
        if self.embeddings is not None:
            plot_map(self.embeddings, self.groups, method=method, ax=axes[3])
        else:
            axes[3].axis("off")
        fig.tight_layout()
        return fig


def compare(
    texts_a,
    texts_b,
    *,
    names: Sequence[str] = ("A", "B"),
    top: int = 10,
    ngram=1,
    stop_words: str | Iterable[str] | None = "english",
    extra_stop_words: Iterable[str] = (),
    distinctive_method: str = "tfidf",
    n_topics: int = 4,
    topic_method: str = "nmf",
    embed: bool = True,
    embeddings=None,
    model=None,
    tokenizer=None,
    random_state: int = 0,
    **embed_kwargs,
) -> Comparison:
    """Compare two sets of texts (chosen vs rejected, model A vs model B, wrong vs not wrong).

    Reports, side by side: sizes and lengths, vocabulary, the type/token ratio on equal-size word samples
    (``type_token_ratio`` with the smaller group's word count, so length does not decide it), the most frequent terms of each group, the most
    distinctive terms of each (``distinctive_terms``), topics fitted on both groups with their mean
    share per group, and (``embed=True``) sentence-embedding similarity within and between groups
    plus how often a text's nearest neighbour belongs to its own group. ``embeddings`` (A's rows
    first, then B's, e.g. from ``embed(a + b)``) skips embedding; ``embed=False`` skips that part.
    """
    import pandas as pd

    a = as_texts(texts_a, "compare: texts_a")
    b = as_texts(texts_b, "compare: texts_b")
    na, nb = _names(names)
    kw = dict(ngram=ngram, stop_words=stop_words, extra_stop_words=extra_stop_words)
    fa, fb = frequencies(a, top=top, **kw), frequencies(b, top=top, **kw)
    freq = pd.DataFrame({
        f"{na} term": fa["term"].reset_index(drop=True), f"{na} count": fa["count"].reset_index(drop=True),
        f"{nb} term": fb["term"].reset_index(drop=True), f"{nb} count": fb["count"].reset_index(drop=True),
    })
    freq.index = freq.index + 1
    dist = distinctive_terms(a, b, top=top, names=(na, nb), method=distinctive_method, **kw)
    both = a + b
    groups = [na] * len(a) + [nb] * len(b)
    k = max(1, min(n_topics, len(both)))
    try:
        tm = topics(both, k, method=topic_method, random_state=random_state, **kw)
    except TooFewTermsError as exc:  # tiny inputs: fewer distinct terms than topics
        warnings.warn(f"compare: only {exc.n_terms} distinct terms, so {exc.n_terms} topic(s) instead of {k}", stacklevel=2)
        tm = topics(both, exc.n_terms, method=topic_method, random_state=random_state, **kw)
    shares = tm.shares(groups)

    def lengths(ts):
        return np.array([len(tokenize(t)) for t in ts])

    stats = {}
    n_ttr = max(1, min(int(lengths(a).sum()), int(lengths(b).sum())))  # equal-size samples: the smaller group's words
    for name, ts in ((na, a), (nb, b)):
        toks = [w for t in ts for w in tokenize(t)]
        ln = lengths(ts)
        stats[name] = {
            "texts": len(ts),
            "mean words": round(float(ln.mean()), 1),
            "median words": float(np.median(ln)),
            "vocabulary": len(set(toks)),
            "type/token ratio (equal-size samples)": round(type_token_ratio(ts, n_ttr, seed=random_state), 3) if toks else 0.0,
            "words per type/token sample": n_ttr,
        }
    E = _vectors(both, len(a), embeddings if embeddings is not None else bool(embed), model, tokenizer, embed_kwargs)
    if E is not None:
        for name, row in _similarity(E, len(a), (na, nb)).items():
            stats[name].update(row)
    summary = pd.DataFrame({g: pd.Series(v, dtype=object) for g, v in stats.items()})  # counts stay integers
    return Comparison((na, nb), summary, freq, dist, tm, shares, E, groups, both)


def _vectors(texts, n_a: int, given, model, tokenizer, embed_kwargs) -> np.ndarray | None:
    """``compare``'s embeddings: the ones given (checked: one row per text), ``embed``'s, or None for ``False``."""
    if given is False:
        return None
    if given is True:
        return embed(texts, model, tokenizer, **embed_kwargs)
    E = np.asarray(given, dtype=np.float32)
    if E.ndim != 2 or E.shape[0] != len(texts):
        raise ValueError(f"embeddings has shape {E.shape}; expected one row per text ({n_a} + {len(texts) - n_a})")
    return E


def _similarity(E, n_a: int, names) -> dict[str, dict]:
    """Per group: mean cosine similarity within it and to the other group, and how often a text's
    nearest neighbour (itself excluded) is in its own group. A's rows come first in ``E``."""
    n = len(E)
    U = _unit(E)
    S = U @ U.T
    ia, ib = np.arange(n_a), np.arange(n_a, n)

    def mean_off_diag(idx):
        if len(idx) < 2:
            return float("nan")
        sub = S[np.ix_(idx, idx)]
        return float((sub.sum() - np.trace(sub)) / (len(idx) * (len(idx) - 1)))

    between = float(S[np.ix_(ia, ib)].mean())
    within = [mean_off_diag(ia), mean_off_diag(ib)]
    np.fill_diagonal(S, -np.inf)
    nn = S.argmax(axis=1)
    same = (nn < n_a) == (np.arange(n) < n_a)
    return {name: {"similarity within": round(within[g], 3), "similarity to other group": round(between, 3),
                   "nearest neighbour in same group": round(float(same[idx].mean()), 3) if n > 1 else float("nan")}
            for g, (name, idx) in enumerate(zip(names, (ia, ib)))}
