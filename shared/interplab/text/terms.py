"""Counting terms: ``frequencies``, ``tfidf``/``top_terms``, ``distinctive_terms`` and their tables and plots."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..errors import NoTermsError
from ..inputs import as_texts
from .tokens import stop_words, tokenize


def _ngram_range(ngram) -> tuple[int, int]:
    if isinstance(ngram, int):
        rng = (ngram, ngram)
    else:
        rng = tuple(int(n) for n in ngram)
    if len(rng) != 2 or rng[0] < 1 or rng[1] < rng[0]:
        raise ValueError(f"ngram must be n or (min_n, max_n) with 1 <= min_n <= max_n, got {ngram!r}")
    return rng


def _analyzer(stop: frozenset[str], ngram, lowercase: bool = True):
    """Text -> terms: words minus stop words, and n-grams (n >= 2) unless every word in them is a stop word.

    Keeping stop words inside phrases keeps "can't help" and "cup of tea"; dropping all-stop n-grams
    drops "of the" and "if you". (scikit-learn instead removes stop words first, which glues
    non-adjacent words into n-grams.)
    """
    lo, hi = _ngram_range(ngram)

    def analyze(doc: str) -> list[str]:
        toks = tokenize(doc, lowercase=lowercase)
        if lo == hi == 1:
            return [t for t in toks if t not in stop]
        terms = []
        for n in range(lo, hi + 1):
            for i in range(len(toks) - n + 1):
                gram = toks[i:i + n]
                if all(w in stop for w in gram):
                    continue
                terms.append(gram[0] if n == 1 else " ".join(gram))
        return terms

    return analyze


def _vectorizer(kind: str, *, ngram=1, language="english", extra=(), lowercase=True, min_df=1, max_df=1.0,
                max_features=None, **kw):
    """A scikit-learn count or TF-IDF vectorizer over ``_analyzer`` with the stop words of ``language`` + ``extra``."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    cls = {"count": CountVectorizer, "tfidf": TfidfVectorizer}[kind]
    return cls(analyzer=_analyzer(stop_words(language, extra), ngram, lowercase), lowercase=False, min_df=min_df,
               max_df=max_df, max_features=max_features, **kw)


def _fit(vec, texts: list[str], what: str):
    try:
        return vec.fit_transform(texts)
    except ValueError as exc:
        msg = str(exc)
        if "empty vocabulary" in msg:
            raise NoTermsError(
                f"{what}: no terms left to count ({len(texts)} text(s)); they are empty or contain only stop words"
            ) from None
        if "max_df corresponds to < documents than min_df" in msg or "min_df" in msg:
            raise ValueError(f"{what}: min_df/max_df leave no terms for {len(texts)} text(s): {msg}") from None
        raise


# ---------------------------------------------------------------------------------------------
# Frequencies and TF-IDF
# ---------------------------------------------------------------------------------------------
def frequencies(
    texts,
    *,
    ngram=1,
    stop_words: str | Iterable[str] | None = "english",
    extra_stop_words: Iterable[str] = (),
    top: int | None = 20,
    lowercase: bool = True,
    min_df: int = 1,
):
    """Most frequent words (``ngram=1``) or n-grams (``ngram=2`` or ``(1, 2)``) across ``texts``.

    Returns a DataFrame sorted by count: ``term``, ``n`` (words in the term), ``count`` (total
    occurrences), ``documents`` (texts containing it), ``share`` (count / all terms of that length).
    Texts made only of stop words give an empty table (with a warning), not an error.
    """
    import pandas as pd

    items = as_texts(texts, "frequencies: texts")
    vec = _vectorizer("count", ngram=ngram, language=stop_words, extra=extra_stop_words, lowercase=lowercase, min_df=min_df)
    cols = ["term", "n", "count", "documents", "share"]
    try:
        X = _fit(vec, items, "frequencies")
    except NoTermsError as exc:
        warnings.warn(str(exc), stacklevel=2)
        return pd.DataFrame(columns=cols)
    terms = vec.get_feature_names_out()
    counts = np.asarray(X.sum(axis=0)).ravel()
    docs = np.asarray((X > 0).sum(axis=0)).ravel()
    n = np.array([t.count(" ") + 1 for t in terms])
    totals = {k: counts[n == k].sum() for k in np.unique(n)}
    share = np.array([c / totals[k] for c, k in zip(counts, n)])
    df = pd.DataFrame({"term": terms, "n": n, "count": counts, "documents": docs, "share": share})
    df = df.sort_values(["count", "term"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return df.head(top) if top else df


@dataclass
class TfidfResult:
    """TF-IDF of a set of texts: ``matrix`` (documents x terms, sparse, rows L2-normalised),
    ``terms`` (column names) and the fitted scikit-learn ``vectorizer`` (``.transform`` new texts)."""

    matrix: object
    terms: np.ndarray
    vectorizer: object

    def frame(self):
        """The matrix as a dense DataFrame (fine for a few hundred documents)."""
        import pandas as pd

        return pd.DataFrame(self.matrix.toarray(), columns=self.terms)

    def mean(self):
        """Mean TF-IDF of each term over all documents, highest first (a pandas Series)."""
        import pandas as pd

        return pd.Series(np.asarray(self.matrix.mean(axis=0)).ravel(), index=self.terms).sort_values(ascending=False)


def tfidf(
    texts,
    *,
    ngram=1,
    stop_words: str | Iterable[str] | None = "english",
    extra_stop_words: Iterable[str] = (),
    min_df: int | float = 1,
    max_df: int | float = 1.0,
    max_features: int | None = None,
    sublinear_tf: bool = False,
) -> TfidfResult:
    """Fit TF-IDF on ``texts`` (scikit-learn's smooth idf and L2-normalised rows)."""
    items = as_texts(texts, "tfidf: texts")
    vec = _vectorizer(
        "tfidf", ngram=ngram, language=stop_words, extra=extra_stop_words, min_df=min_df, max_df=max_df,
        max_features=max_features, sublinear_tf=sublinear_tf,
    )
    X = _fit(vec, items, "tfidf")
    return TfidfResult(X.tocsr(), vec.get_feature_names_out(), vec)


def top_terms(texts, k: int = 5, **tfidf_kwargs):
    """Each document's ``k`` highest-TF-IDF terms: a DataFrame with ``text`` and ``terms`` (a list)."""
    import pandas as pd

    items = as_texts(texts, "top_terms: texts")
    res = tfidf(items, **tfidf_kwargs)
    rows = []
    for i in range(res.matrix.shape[0]):
        row = res.matrix.getrow(i)
        order = np.lexsort((res.terms[row.indices], -row.data))[:k]
        rows.append({"text": items[i], "terms": [str(res.terms[row.indices[j]]) for j in order]})
    return pd.DataFrame(rows)


def distinctive_terms(
    texts_a,
    texts_b,
    *,
    top: int = 15,
    names: Sequence[str] = ("A", "B"),
    method: str = "tfidf",
    ngram=1,
    stop_words: str | Iterable[str] | None = "english",
    extra_stop_words: Iterable[str] = (),
    min_df: int = 1,
    prior: float = 1.0,
):
    """The terms that most set group A apart from group B, and B from A.

    ``method="tfidf"``: TF-IDF fitted on both groups; a term's score is its mean TF-IDF in its group
    minus its mean in the other group. ``method="log-odds"``: the z-score of the log-odds ratio with
    an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008, "Fightin' Words") whose background
    is both groups together scaled by ``prior``; it discounts rare terms that appear by chance.

    Returns a DataFrame with ``group`` (the name from ``names``), ``rank``, ``term``, ``score`` (> 0,
    higher = more distinctive), ``count_a``, ``count_b``, ``docs_a``, ``docs_b``. A term appears for
    at most one group, so the two lists never overlap.
    """
    import pandas as pd

    a = as_texts(texts_a, "distinctive_terms: texts_a")
    b = as_texts(texts_b, "distinctive_terms: texts_b")
    names = _names(names)
    if method not in ("tfidf", "log-odds"):
        raise ValueError(f"method must be 'tfidf' or 'log-odds', got {method!r}")
    counter = _vectorizer("count", ngram=ngram, language=stop_words, extra=extra_stop_words, min_df=min_df)
    C = _fit(counter, a + b, "distinctive_terms").tocsr()
    terms = counter.get_feature_names_out()
    Ca, Cb = C[: len(a)], C[len(a):]
    count_a, count_b = np.asarray(Ca.sum(0)).ravel(), np.asarray(Cb.sum(0)).ravel()
    docs_a, docs_b = np.asarray((Ca > 0).sum(0)).ravel(), np.asarray((Cb > 0).sum(0)).ravel()
    if method == "tfidf":
        from sklearn.feature_extraction.text import TfidfTransformer

        T = TfidfTransformer().fit_transform(C).tocsr()
        score = np.asarray(T[: len(a)].mean(0)).ravel() - np.asarray(T[len(a):].mean(0)).ravel()
    else:
        if prior <= 0:
            raise ValueError(f"prior must be > 0, got {prior}")
        alpha = prior * (count_a + count_b).astype(float)
        alpha0 = alpha.sum()
        na, nb = count_a.sum(), count_b.sum()
        la = np.log(count_a + alpha) - np.log(na + alpha0 - count_a - alpha)
        lb = np.log(count_b + alpha) - np.log(nb + alpha0 - count_b - alpha)
        score = (la - lb) / np.sqrt(1.0 / (count_a + alpha) + 1.0 / (count_b + alpha))
    rows = []
    for group, sign, in ((names[0], 1.0), (names[1], -1.0)):
        s = sign * score
        keep = np.flatnonzero(s > 1e-12)
        order = keep[np.lexsort((terms[keep], -s[keep]))][:top]
        for rank, j in enumerate(order, 1):
            rows.append({"group": group, "rank": rank, "term": str(terms[j]), "score": float(s[j]),
                         "count_a": int(count_a[j]), "count_b": int(count_b[j]),
                         "docs_a": int(docs_a[j]), "docs_b": int(docs_b[j])})
    cols = ["group", "rank", "term", "score", "count_a", "count_b", "docs_a", "docs_b"]
    return pd.DataFrame(rows, columns=cols)


def _names(names) -> tuple[str, str]:
    if isinstance(names, str) or len(names) != 2:
        raise ValueError(f"names must be two group names, e.g. ('chosen', 'rejected'), got {names!r}")
    a, b = (str(n) for n in names)
    if a == b:
        raise ValueError(f"the two group names must differ, got {names!r}")
    return a, b


def side_by_side(df, group_col: str = "group", value_col: str = "term", names: Sequence[str] | None = None):
    """A long table (one row per group x rank) as columns per group: compact for notebooks."""
    import pandas as pd

    groups = list(names) if names is not None else list(dict.fromkeys(df[group_col]))
    cols = {g: df.loc[df[group_col] == g, value_col].reset_index(drop=True) for g in groups}
    out = pd.DataFrame(cols)
    out.index = out.index + 1
    return out.fillna("")


def plot_terms(table, *, names: Sequence[str] | None = None, value: str | None = None, ax=None, title: str = ""):
    """Horizontal bar charts of a ``frequencies`` table (one panel) or a ``distinctive_terms`` table
    (one panel per group, side by side). Returns the Axes (an array of them for two groups)."""
    import matplotlib.pyplot as plt

    if "group" in table.columns:
        groups = list(names) if names is not None else list(dict.fromkeys(table["group"]))
        value = value or "score"
        if ax is None:
            n = max(len(table[table["group"] == g]) for g in groups) if len(table) else 1
            _, ax = plt.subplots(1, len(groups), figsize=(5 * len(groups), 0.3 * n + 1.2), squeeze=False)
            ax = ax[0]
        for a, g, color in zip(ax, groups, ("tab:blue", "tab:orange", "tab:green", "tab:red")):
            sub = table[table["group"] == g]
            a.barh(sub["term"][::-1], sub[value][::-1], color=color)
            a.set_title(f"{title} {g}".strip())
            a.set_xlabel(value)
        ax[0].figure.tight_layout()
        return ax
    value = value or "count"
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 0.3 * len(table) + 1.2))
    ax.barh(table["term"][::-1], table[value][::-1])
    ax.set_xlabel(value)
    ax.set_title(title)
    return ax
