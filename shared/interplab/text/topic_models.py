"""Topics of a pile of texts: ``topics`` (NMF or LDA) and the fitted ``Topics``."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ..errors import TooFewTermsError
from ..inputs import as_texts
from .terms import _fit, _vectorizer


class FewTextsWarning(UserWarning):
    """Too few texts for the result to be more than noise (e.g. topics from a hundred short replies)."""


MIN_TOPIC_TEXTS = 200  # below this, NMF/LDA topics of short texts change with the seed and the sample: a sketch only



@dataclass
class Topics:
    """A fitted topic model.

    ``words``: one row per topic (``topic``, ``label``, ``words``, ``weights``); ``doc_topics``: an
    (n_docs x n_topics) array of topic shares, each row summing to 1 (0 for a text with no known
    terms); ``labels``: short names like ``"0: lock · door · key"``.
    """

    method: str
    n_topics: int
    words: object
    doc_topics: np.ndarray
    model: object
    vectorizer: object
    labels: list[str] = field(default_factory=list)

    def transform(self, texts) -> np.ndarray:
        """Topic shares of new texts (rows sum to 1, or 0 for texts with no known terms)."""
        items = as_texts(texts, "Topics.transform: texts")
        return _shares(self.model.transform(self.vectorizer.transform(items)))

    def shares(self, groups):
        """Mean topic share per group: a DataFrame with one row per group and one column per topic."""
        import pandas as pd

        if len(groups) != len(self.doc_topics):
            raise ValueError(f"groups has {len(groups)} labels for {len(self.doc_topics)} documents")
        df = pd.DataFrame(self.doc_topics, columns=self.labels)
        df["group"] = [str(g) for g in groups]
        return df.groupby("group", sort=False).mean()

    def dominant(self) -> np.ndarray:
        """Index of each document's largest topic (-1 for documents with no known terms)."""
        d = self.doc_topics.argmax(axis=1)
        d[self.doc_topics.sum(axis=1) == 0] = -1
        return d

    def plot(self, groups=None, ax=None):
        """Top words per topic as small bar charts, or (with ``groups``) topic share per group as bars."""
        import matplotlib.pyplot as plt

        if groups is not None:
            sh = self.shares(groups)
            ax = sh.T.plot.barh(ax=ax, figsize=(7, 0.5 * self.n_topics * max(1, len(sh)) / 1.5 + 1.5))
            ax.invert_yaxis()
            ax.set_xlabel("mean topic share")
            ax.set_title(f"{self.method.upper()} topic shares per group")
            return ax
        cols = min(self.n_topics, 4)
        rows = (self.n_topics + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)
        for t, a in enumerate(axes.ravel()):
            if t >= self.n_topics:
                a.axis("off")
                continue
            r = self.words.iloc[t]
            a.barh(r["words"][::-1], r["weights"][::-1], color=f"C{t % 10}")
            a.set_title(f"topic {t}", fontsize=9)
            a.tick_params(labelsize=8)
        fig.suptitle(f"{self.method.upper()}: top words per topic")
        fig.tight_layout()
        return axes


def _shares(W) -> np.ndarray:
    W = np.asarray(W, dtype=float)
    s = W.sum(axis=1, keepdims=True)
    return np.divide(W, s, out=np.zeros_like(W), where=s > 0)


def topics(
    texts,
    n_topics: int = 5,
    *,
    method: str = "nmf",
    n_words: int = 8,
    ngram=1,
    stop_words: str | Iterable[str] | None = "english",
    extra_stop_words: Iterable[str] = (),
    min_df: int | float = 1,
    max_df: int | float = 0.95,
    max_features: int | None = 5000,
    random_state: int = 0,
) -> Topics:
    """Fit ``n_topics`` topics on ``texts`` with NMF (on TF-IDF) or LDA (on raw counts).

    NMF gives crisper topics on short texts; LDA is the classic probabilistic model. Both are
    deterministic for a given ``random_state``. ``max_df`` drops terms in more than that share of
    texts (too common to tell topics apart); with fewer than 3 texts it is ignored.
    """
    import pandas as pd

    items = as_texts(texts, "topics: texts")
    if method not in ("nmf", "lda"):
        raise ValueError(f"method must be 'nmf' or 'lda', got {method!r}")
    if not isinstance(n_topics, (int, np.integer)) or n_topics < 1:
        raise ValueError(f"n_topics must be a positive integer, got {n_topics!r}")
    if n_topics > len(items):
        raise ValueError(f"n_topics={n_topics} needs at least {n_topics} texts, got {len(items)}")
    if len(items) < MIN_TOPIC_TEXTS:
        warnings.warn(f"topics from {len(items)} texts (fewer than {MIN_TOPIC_TEXTS}) are mostly noise: they move with "
                      f"the seed and the sample, so read them as a sketch, not a finding", FewTextsWarning, stacklevel=2)
    if len(items) < 3:
        max_df = 1.0
    kind = "tfidf" if method == "nmf" else "count"
    vec = _vectorizer(kind, ngram=ngram, language=stop_words, extra=extra_stop_words, min_df=min_df, max_df=max_df,
                      max_features=max_features)
    X = _fit(vec, items, "topics")
    terms = vec.get_feature_names_out()
    if n_topics > len(terms):
        raise TooFewTermsError(f"n_topics={n_topics} is more than the {len(terms)} distinct terms in the texts",
                               n_terms=len(terms))
    if method == "nmf":
        from sklearn.decomposition import NMF

        model = NMF(n_components=n_topics, init="nndsvda", random_state=random_state, max_iter=500)
    else:
        from sklearn.decomposition import LatentDirichletAllocation

        model = LatentDirichletAllocation(n_components=n_topics, learning_method="batch", random_state=random_state,
                                          max_iter=30)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Maximum number of iterations")
        W = model.fit_transform(X)
    H = model.components_
    rows, labels = [], []
    for t in range(n_topics):
        top = np.lexsort((terms, -H[t]))[:n_words]
        words = [str(terms[j]) for j in top]
        weights = (H[t, top] / H[t].sum()).tolist() if H[t].sum() > 0 else [0.0] * len(top)
        label = f"{t}: " + " · ".join(words[:3])
        labels.append(label)
        rows.append({"topic": t, "label": label, "words": words, "weights": weights})
    return Topics(method, int(n_topics), pd.DataFrame(rows), _shares(W), model, vec, labels)
