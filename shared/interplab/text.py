"""Extract information from a pile of texts: what words it uses, what sets it apart, what it is about.

Small helpers over scikit-learn and the embedded MiniLM encoder, for studying model outputs or a
dataset (HH-RLHF chosen vs rejected replies, ETHICS scenarios, a CSV of your model's answers):

* ``frequencies(texts)``: word and n-gram counts with English stop words removed.
* ``tfidf(texts)`` / ``top_terms(texts)``: TF-IDF weights and each document's most characteristic terms.
* ``distinctive_terms(a, b)``: the terms that most set group A apart from group B (and B from A),
  by mean TF-IDF difference or by log-odds with an informative Dirichlet prior.
* ``embed(texts)``: sentence embeddings (mean pooling + L2 norm, as all-MiniLM-L6-v2 was trained),
  batched by length, with a progress bar, cached on disk, truncated to the encoder's context with
  a warning. ``project``/``plot_map`` draw them in 2-D (PCA, t-SNE, or UMAP when installed);
  ``search`` finds the nearest texts to a query.
* ``topics(texts)``: NMF or LDA topics: top words per topic, topic share per document and per group
  (it warns below ``MIN_TOPIC_TEXTS`` texts: topics from a hundred short texts are mostly noise).
* ``type_token_ratio(texts, n_tokens)``: vocabulary richness on equal-size token samples, so groups of
  different lengths can be compared (the plain ratio falls as a text grows).
* ``compare(a, b)``: all of the above for two sets of texts, side by side.

The tokenizer keeps contractions ("don't"), splits Chinese/Japanese into characters and keeps emoji
as tokens, so non-English and chat text gives sensible counts.
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "TruncationWarning",
    "FewTextsWarning",
    "MIN_TOPIC_TEXTS",
    "type_token_ratio",
    "as_texts",
    "tokenize",
    "stop_words",
    "frequencies",
    "tfidf",
    "top_terms",
    "distinctive_terms",
    "embed",
    "context_length",
    "project",
    "plot_map",
    "search",
    "topics",
    "Topics",
    "compare",
    "Comparison",
    "plot_terms",
]


class TruncationWarning(UserWarning):
    """Some texts were longer than the encoder's context and only their beginning was embedded."""


class FewTextsWarning(UserWarning):
    """Too few texts for the result to be more than noise (e.g. topics from a hundred short replies)."""


MIN_TOPIC_TEXTS = 200  # below this, NMF/LDA topics of short texts change with the seed and the sample: a sketch only


# ---------------------------------------------------------------------------------------------
# Tokens and stop words
# ---------------------------------------------------------------------------------------------
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Emoji and pictographs as single tokens (skin-tone modifiers U+1F3FB-1F3FF are dropped).
_EMOJI = "\U0001f000-\U0001f3fa\U0001f400-\U0001faff\u2600-\u27bf"
_TOKEN = re.compile(
    rf"[{_CJK}]"  # one Chinese/Japanese character = one token (no spaces between words)
    rf"|[{_EMOJI}]"
    rf"|(?:(?![{_CJK}])[^\W_])+(?:'(?:(?![{_CJK}])[^\W_])+)*"  # words, keeping inner apostrophes
)
_SINGLE_OK = re.compile(rf"[{_CJK}{_EMOJI}]")
_CONTRACTIONS = {
    "i'm", "i've", "i'll", "i'd", "you're", "you've", "you'll", "you'd", "he's", "she's", "it's",
    "we're", "we've", "we'll", "we'd", "they're", "they've", "they'll", "they'd", "that's", "there's",
    "what's", "who's", "let's", "don't", "doesn't", "didn't", "can't", "cannot", "couldn't", "won't",
    "wouldn't", "shouldn't", "isn't", "aren't", "wasn't", "weren't", "hasn't", "haven't", "hadn't",
    "ll", "ve", "re",
}


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split one text into word tokens the way every counting helper here does.

    Words of two or more letters/digits (inner apostrophes kept: ``"don't"``), each Chinese or
    Japanese character, and each emoji. Curly apostrophes are straightened first.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize() needs a string, got {type(text).__name__}")
    text = text.replace("\u2019", "'")
    if lowercase:
        text = text.lower()
    return [t for t in _TOKEN.findall(text) if len(t) > 1 or _SINGLE_OK.match(t)]


def stop_words(language: str | Iterable[str] | None = "english", extra: Iterable[str] = ()) -> frozenset[str]:
    """The stop-word set the helpers use: scikit-learn's English list plus common contractions.

    ``language=None`` keeps every word; a list/set is used as given. ``extra`` adds words (e.g.
    ``["human", "assistant"]`` for raw HH-RLHF transcripts).
    """
    if language is None:
        words: set[str] = set()
    elif isinstance(language, str):
        if language != "english":
            raise ValueError(f"only 'english' stop words are built in, got {language!r}; pass your own list instead")
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        words = set(ENGLISH_STOP_WORDS) | _CONTRACTIONS
    else:
        words = {str(w).lower() for w in language}
    return frozenset(words | {str(w).lower() for w in extra})


def as_texts(texts, what: str = "texts", *, allow_empty: bool = False, one_string: bool = True) -> list[str]:
    """A list of strings from a list, tuple, array or pandas Series; one clear error for anything else.

    ``one_string=True`` treats a bare string as one document; ``False`` refuses it (for classifier
    functions, where ``f("text")`` would otherwise be read as one text per character).
    """
    if isinstance(texts, (str, bytes)):
        if not one_string or isinstance(texts, bytes):
            raise TypeError(f"{what} must be a list of strings, got a single {type(texts).__name__}; "
                            "wrap it in a list: [text]")
        texts = [texts]
    elif texts is None:
        raise TypeError(f"{what}: expected a list of strings, got None")
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(f"{what}: expected a list of strings, got {type(texts).__name__}") from None
    for i, t in enumerate(items):
        if not isinstance(t, str):
            kind = "a missing value (NaN/None)" if t is None or (isinstance(t, float) and t != t) else type(t).__name__
            raise TypeError(
                f"{what}[{i}] is {kind}, not a string; drop or fill missing values first (e.g. df[col].fillna(''))"
            )
        if type(t) is not str:  # numpy.str_ and other str subclasses: plain str for hashing and tokenizers
            items[i] = str(t)
    if not items and not allow_empty:
        raise ValueError(f"{what}: empty, no texts given")
    return items



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


def _vectorizer(kind: str, *, ngram=1, stop=frozenset(), lowercase=True, min_df=1, max_df=1.0, max_features=None, **kw):
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    cls = {"count": CountVectorizer, "tfidf": TfidfVectorizer}[kind]
    return cls(analyzer=_analyzer(frozenset(stop or ()), ngram, lowercase), lowercase=False, min_df=min_df,
               max_df=max_df, max_features=max_features, **kw)


def _fit(vec, texts: list[str], what: str):
    try:
        return vec.fit_transform(texts)
    except ValueError as exc:
        msg = str(exc)
        if "empty vocabulary" in msg:
            raise ValueError(
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
    vec = _vectorizer("count", ngram=ngram, stop=_stop(stop_words, extra_stop_words), lowercase=lowercase, min_df=min_df)
    cols = ["term", "n", "count", "documents", "share"]
    try:
        X = _fit(vec, items, "frequencies")
    except ValueError as exc:
        if "no terms left" not in str(exc):
            raise
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


def _stop(language, extra) -> frozenset[str]:
    return stop_words(language, extra)


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
        "tfidf", ngram=ngram, stop=_stop(stop_words, extra_stop_words), min_df=min_df, max_df=max_df,
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
    stop = _stop(stop_words, extra_stop_words)
    counter = _vectorizer("count", ngram=ngram, stop=stop, min_df=min_df)
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


# ---------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------
_ENCODERS: dict[str, tuple] = {}


def _resolve_encoder(model, tokenizer):
    """(model, tokenizer) from a name (via interplab.models), a (model, tokenizer) pair, or both given."""
    if isinstance(model, tuple) and len(model) == 2 and tokenizer is None:
        model, tokenizer = model
    if model is None or isinstance(model, str):
        if tokenizer is not None:
            raise ValueError("pass tokenizer= only together with a loaded model")
        from . import models

        key = str(models.parse_model_name(model))
        if key not in _ENCODERS:
            _ENCODERS[key] = models.load_encoder(model, attentions=False)
        return _ENCODERS[key]
    if tokenizer is None:
        raise ValueError("a loaded model needs its tokenizer: embed(texts, model=(model, tokenizer))")
    return model, tokenizer


def context_length(model, tokenizer) -> int:
    """Tokens the encoder reads per text (special tokens included); longer texts are truncated.

    A sentence-transformers folder's ``max_seq_length`` wins (256 for all-MiniLM-L6-v2, what it was
    trained with), then the tokenizer's ``model_max_length``, capped by the position embeddings.
    """
    limits = []
    pos = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(pos, int) and pos > 0:
        limits.append(pos)
    tml = getattr(tokenizer, "model_max_length", None)
    if isinstance(tml, int) and 0 < tml < 1_000_000:
        limits.append(tml)
    st = _sentence_transformers_max(getattr(model, "name_or_path", "") or "")
    if st:
        limits.append(st)
    return min(limits) if limits else 512


def _sentence_transformers_max(name_or_path: str) -> int | None:
    cfg = Path(name_or_path) / "sentence_bert_config.json" if name_or_path else None
    if cfg is None or not cfg.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(name_or_path, "sentence_bert_config.json") if name_or_path else None
            cfg = Path(found) if isinstance(found, str) else None
        except Exception:  # not a hub id, no cache: fall back to the tokenizer's limit
            cfg = None
    if cfg is None or not cfg.is_file():
        return None
    try:
        value = json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length")
    except (OSError, ValueError):
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


def _fingerprint(model) -> str:
    """A cheap digest of the weights, so a fine-tuned model never reads another model's cache.

    Hashes every parameter's name and shape and about 1,000 evenly spaced values of each (training
    changes nearly every weight), which takes milliseconds instead of reading all of them.
    """
    import torch

    h = hashlib.blake2b(digest_size=8)
    h.update(str(getattr(model, "interplab_name", "") or getattr(model, "name_or_path", "")).encode())
    with torch.no_grad():
        for name, p in model.named_parameters():
            flat = p.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 1024)].float().cpu().numpy()
            h.update(f"{name}:{tuple(p.shape)};".encode())
            h.update(sample.tobytes())
    return h.hexdigest()


class _Cache:
    """Embeddings of one (model, pooling, length) on disk: a SQLite file keyed by the text's hash."""

    def __init__(self, model, pooling: str, normalize: bool, max_length: int):
        from . import config

        label = re.sub(r"[^A-Za-z0-9._-]+", "-", str(getattr(model, "interplab_name", "") or "model"))[-40:]
        key = hashlib.blake2b(f"{_fingerprint(model)}|{pooling}|{normalize}|{max_length}".encode(), digest_size=8)
        self.path = config.cache_dir("embeddings") / f"{label}-{key.hexdigest()}.sqlite"

    def _connect(self):
        import sqlite3

        con = sqlite3.connect(self.path, timeout=60)
        con.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, n_tokens INTEGER, vec BLOB)")
        return con

    def _broken(self, exc: Exception) -> None:
        warnings.warn(f"embedding cache {self.path} is unreadable ({exc}); embedding without it "
                      f"(delete the file to rebuild it)", RuntimeWarning, stacklevel=4)

    def get(self, keys: list[str]) -> dict[str, tuple[int, np.ndarray]]:
        import sqlite3

        try:
            return self._get(keys)
        except sqlite3.DatabaseError as exc:
            self._broken(exc)
            self.path = None
            return {}

    def put(self, rows: list[tuple[str, int, np.ndarray]]) -> None:
        import sqlite3

        if self.path is None:
            return
        try:
            self._put(rows)
        except sqlite3.DatabaseError as exc:
            self._broken(exc)

    def _get(self, keys: list[str]) -> dict[str, tuple[int, np.ndarray]]:
        found: dict[str, tuple[int, np.ndarray]] = {}
        if not keys:
            return found
        con = self._connect()
        try:
            uniq = list(dict.fromkeys(keys))
            for i in range(0, len(uniq), 500):
                chunk = uniq[i:i + 500]
                q = f"SELECT key, n_tokens, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})"
                for k, n, blob in con.execute(q, chunk):
                    found[k] = (int(n), np.frombuffer(blob, dtype=np.float32))
        finally:
            con.close()
        return found

    def _put(self, rows: list[tuple[str, int, np.ndarray]]) -> None:
        con = self._connect()
        try:
            with con:
                con.executemany(
                    "INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                    [(k, int(n), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, n, v in rows],
                )
        finally:
            con.close()


def _text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def embed(
    texts,
    model=None,
    tokenizer=None,
    *,
    batch_size: int = 64,
    max_length: int | None = None,
    pooling: str = "mean",
    normalize: bool = True,
    cache: bool = True,
    progress: bool | None = None,
) -> np.ndarray:
    """Sentence embeddings of ``texts``: an ``(n_texts, hidden_size)`` float32 array.

    ``model``: a model name (``None``/``"minilm"`` = the embedded all-MiniLM-L6-v2, or any Hugging
    Face encoder id, resolved by ``interplab.models``), or a loaded ``(model, tokenizer)`` pair.
    ``pooling="mean"`` averages token vectors over the attention mask (how sentence-transformers
    trained MiniLM; ``"cls"`` takes the first token) and ``normalize`` scales rows to unit length,
    so a dot product is the cosine similarity.

    Texts are tokenized once, sorted by length and batched (little padding), with a progress bar
    when there is more than one batch. Vectors are cached on disk (``interplab.config.cache_dir
    ("embeddings")``), keyed by the model's weights and the text, so re-running a notebook is
    instant. Texts longer than the encoder's context (``context_length``) are cut to it, with one
    ``TruncationWarning``.
    """
    import torch

    items = as_texts(texts, "embed: texts", allow_empty=True)
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model, tokenizer = _resolve_encoder(model, tokenizer)
    limit = context_length(model, tokenizer)
    if max_length is None:
        max_length = limit
    elif max_length > limit:
        raise ValueError(f"max_length={max_length} is longer than the encoder's context of {limit} tokens")
    dim = int(getattr(model.config, "hidden_size", 0) or 0)
    if not items:
        return np.zeros((0, dim), dtype=np.float32)

    keys = [_text_key(t) for t in items]
    store = _Cache(model, pooling, normalize, max_length) if cache else None
    found = store.get(keys) if store else {}
    first: dict[str, int] = {}  # one position per distinct text that is not cached yet
    for i, k in enumerate(keys):
        if k not in found:
            first.setdefault(k, i)
    todo = list(first.values())

    fresh: dict[str, tuple[int, np.ndarray]] = {}
    if todo:
        enc = tokenizer([items[i] for i in todo], truncation=True, max_length=max_length,
                        return_attention_mask=False, return_token_type_ids=False, verbose=False)
        ids = enc["input_ids"]
        n_tokens = [len(x) for x in ids]
        at_limit = [j for j, n in enumerate(n_tokens) if n >= max_length]
        if at_limit:
            full = tokenizer([items[todo[j]] for j in at_limit], truncation=False, return_attention_mask=False,
                             return_token_type_ids=False, verbose=False)["input_ids"]
            for j, f in zip(at_limit, full):
                n_tokens[j] = len(f)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        device = next(model.parameters()).device
        order = sorted(range(len(todo)), key=lambda j: -len(ids[j]))
        n_batches = (len(order) + batch_size - 1) // batch_size
        from tqdm.auto import tqdm

        bar = tqdm(total=len(order), desc="embedding", unit="text",
                   disable=(n_batches <= 1) if progress is None else not progress)
        was_training = model.training
        model.eval()  # no dropout: the same text always gets the same vector
        try:
            with torch.inference_mode():
                for s in range(0, len(order), batch_size):
                    batch = order[s:s + batch_size]
                    width = max(len(ids[j]) for j in batch)
                    input_ids = np.full((len(batch), width), pad_id, dtype=np.int64)
                    mask = np.zeros((len(batch), width), dtype=np.int64)
                    for r, j in enumerate(batch):
                        input_ids[r, : len(ids[j])] = ids[j]
                        mask[r, : len(ids[j])] = 1
                    input_ids_t = torch.from_numpy(input_ids).to(device)
                    mask_t = torch.from_numpy(mask).to(device)
                    out = model(input_ids=input_ids_t, attention_mask=mask_t)
                    hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
                    if pooling == "mean":
                        m = mask_t.unsqueeze(-1).to(hidden.dtype)
                        vec = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
                    else:
                        vec = hidden[:, 0]
                    if normalize:
                        vec = torch.nn.functional.normalize(vec.float(), dim=-1)
                    vec = vec.float().cpu().numpy()
                    for r, j in enumerate(batch):
                        fresh[keys[todo[j]]] = (n_tokens[j], vec[r])
                    bar.update(len(batch))
        finally:
            bar.close()
            model.train(was_training)
        if store:
            store.put([(k, n, v) for k, (n, v) in fresh.items()])

    allv = {**found, **fresh}
    out = np.stack([allv[k][1] for k in keys]).astype(np.float32, copy=False)
    long = [(i, allv[k][0]) for i, k in enumerate(keys) if allv[k][0] > max_length]
    if long:
        worst = max(n for _, n in long)
        warnings.warn(
            f"{len(long)} of {len(items)} texts are longer than the encoder's {max_length}-token context and were "
            f"truncated (longest: {worst} tokens; first: texts[{long[0][0]}]); only their beginning is embedded",
            TruncationWarning,
            stacklevel=2,
        )
    return out


_embed = embed  # compare() has an ``embed`` flag


def project(embeddings, method: str = "auto", *, random_state: int = 0, **kwargs) -> np.ndarray:
    """2-D coordinates of ``embeddings`` (n x d): ``"pca"``, ``"tsne"``, ``"umap"`` (if umap-learn is
    installed) or ``"auto"`` (UMAP when installed and n >= 20, else PCA). One or zero rows give zeros.
    ``kwargs`` go to the reducer (e.g. ``perplexity=`` or ``max_iter=`` for t-SNE, ``n_neighbors=`` for UMAP)."""
    X = np.asarray(embeddings, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (texts x dimensions), got shape {X.shape}")
    method = _map_method(method, len(X))
    if len(X) < 2:
        return np.zeros((len(X), 2), dtype=np.float32)
    if method == "pca":
        from sklearn.decomposition import PCA

        k = min(2, X.shape[1], len(X))
        Y = PCA(n_components=k, random_state=random_state, **kwargs).fit_transform(X)
        if k < 2:
            Y = np.hstack([Y, np.zeros((len(X), 2 - k))])
        return Y.astype(np.float32)
    if method == "tsne":
        from sklearn.manifold import TSNE

        opts = {"perplexity": float(min(30.0, max(1.0, (len(X) - 1) / 3))), "init": "pca", "metric": "cosine", **kwargs}
        return TSNE(n_components=2, random_state=random_state, **opts).fit_transform(X).astype(np.float32)
    import umap  # method == "umap"

    opts = {"n_neighbors": int(min(15, len(X) - 1)), "metric": "cosine", **kwargs}
    return umap.UMAP(n_components=2, random_state=random_state, **opts).fit_transform(X).astype(np.float32)


def _map_method(method: str, n: int) -> str:
    if method not in ("auto", "pca", "tsne", "umap"):
        raise ValueError(f"method must be 'auto', 'pca', 'tsne' or 'umap', got {method!r}")
    if method in ("auto", "umap"):
        try:
            import umap  # noqa: F401

            have = True
        except ImportError:
            have = False
        if method == "umap" and not have:
            raise ImportError("method='umap' needs umap-learn (pip install umap-learn); use 'pca' or 'tsne'")
        if method == "auto":
            return "umap" if have and n >= 20 else "pca"
    return method


def plot_map(
    embeddings,
    groups=None,
    *,
    method: str = "auto",
    texts: Sequence[str] | None = None,
    label: int = 0,
    ax=None,
    title: str | None = None,
    random_state: int = 0,
):
    """Scatter of the embeddings in 2-D, coloured by ``groups`` (one label per text).

    ``label=k`` writes the first 40 characters of ``k`` texts (spread over the map) next to their points.
    Returns the Axes.
    """
    import matplotlib.pyplot as plt

    X = np.asarray(embeddings)
    if groups is not None and len(groups) != len(X):
        raise ValueError(f"groups has {len(groups)} labels for {len(X)} embeddings")
    used = _map_method(method, len(X))
    Y = project(X, used, random_state=random_state)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5))
    if groups is None:
        ax.scatter(Y[:, 0], Y[:, 1], s=14, alpha=0.75)
    else:
        g = np.asarray([str(x) for x in groups])
        for name in dict.fromkeys(g):
            sel = g == name
            ax.scatter(Y[sel, 0], Y[sel, 1], s=14, alpha=0.75, label=f"{name} ({sel.sum()})")
        ax.legend(fontsize=8, loc="best")
    if label and texts is not None:
        for i in np.linspace(0, len(X) - 1, min(label, len(X))).astype(int):
            ax.annotate(texts[i][:40] + ("…" if len(texts[i]) > 40 else ""), Y[i], fontsize=7, alpha=0.8)
    ax.set_xlabel(f"{used} 1")
    ax.set_ylabel(f"{used} 2")
    ax.set_title(title if title is not None else f"sentence embeddings ({used})")
    return ax


def search(
    queries,
    texts,
    *,
    k: int = 5,
    embeddings=None,
    model=None,
    tokenizer=None,
    **embed_kwargs,
):
    """Nearest texts to each query by cosine similarity of their embeddings (semantic search).

    ``embeddings`` of ``texts`` may be passed (from ``embed``) to skip re-embedding. Returns a
    DataFrame with ``query``, ``rank`` (1 = nearest), ``index`` (position, or the Series' index
    label), ``score`` (cosine similarity) and ``text``.
    """
    import pandas as pd

    qs = as_texts(queries, "search: queries")
    labels = list(texts.index) if type(texts).__name__ == "Series" and hasattr(texts, "index") else None
    items = as_texts(texts, "search: texts")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    pair = _resolve_encoder(model, tokenizer)
    E = embed(items, pair, **embed_kwargs) if embeddings is None else np.asarray(embeddings, dtype=np.float32)
    if E.shape[0] != len(items):
        raise ValueError(f"embeddings has {E.shape[0]} rows for {len(items)} texts")
    Q = embed(qs, pair, **embed_kwargs)
    if Q.shape[1] != E.shape[1]:
        raise ValueError(f"query embeddings have {Q.shape[1]} dimensions, text embeddings {E.shape[1]}: same model?")
    S = _unit(Q) @ _unit(E).T
    rows = []
    for qi, q in enumerate(qs):
        order = np.argsort(-S[qi], kind="stable")[:k]
        for rank, j in enumerate(order, 1):
            rows.append({"query": q, "rank": rank, "index": labels[j] if labels else int(j),
                         "score": float(S[qi, j]), "text": items[j]})
    return pd.DataFrame(rows)


def _unit(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(n == 0, 1, n)


# ---------------------------------------------------------------------------------------------
# Topics
# ---------------------------------------------------------------------------------------------
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
    vec = _vectorizer(kind, ngram=ngram, stop=_stop(stop_words, extra_stop_words), min_df=min_df, max_df=max_df,
                      max_features=max_features)
    X = _fit(vec, items, "topics")
    terms = vec.get_feature_names_out()
    if n_topics > len(terms):
        raise ValueError(f"n_topics={n_topics} is more than the {len(terms)} distinct terms in the texts")
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


def type_token_ratio(texts, n_tokens: int | None = None, *, draws: int = 20, seed: int = 0) -> float:
    """Distinct words / words, measured on samples of exactly ``n_tokens`` words drawn (without replacement)
    from all the texts' words, averaged over ``draws`` samples.

    The plain ratio falls as the amount of text grows (common words repeat), so two groups whose lengths
    differ can only be compared on samples of the same size: pass the same ``n_tokens`` for both (``compare``
    uses the smaller group's word count). ``None`` uses every word once (the plain ratio).
    """
    toks = np.array([w for t in as_texts(texts, "type_token_ratio: texts") for w in tokenize(t)], dtype=object)
    if n_tokens is None or n_tokens >= len(toks):
        if n_tokens is not None and n_tokens > len(toks):
            raise ValueError(f"n_tokens={n_tokens} is more than the {len(toks)} words in these texts")
        return len(set(toks.tolist())) / max(1, len(toks))
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be a positive integer, got {n_tokens!r}")
    rng = np.random.default_rng(seed)
    return float(np.mean([len(set(rng.choice(toks, n_tokens, replace=False).tolist())) / n_tokens for _ in range(draws)]))


# ---------------------------------------------------------------------------------------------
# Two groups side by side
# ---------------------------------------------------------------------------------------------
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
    stop = _stop(stop_words, extra_stop_words)
    kw = dict(ngram=ngram, stop_words=stop)
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
        tm = topics(both, k, method=topic_method, stop_words=stop, ngram=ngram, random_state=random_state)
    except ValueError as exc:  # tiny inputs: fewer distinct terms than topics
        found = re.search(r"the (\d+) distinct terms", str(exc))
        if not found:
            raise
        warnings.warn(f"compare: only {found.group(1)} distinct terms, so {found.group(1)} topic(s) instead of {k}",
                      stacklevel=2)
        tm = topics(both, int(found.group(1)), method=topic_method, stop_words=stop, ngram=ngram,
                    random_state=random_state)
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
    E = None
    if embeddings is not None:
        E = np.asarray(embeddings, dtype=np.float32)
        if E.ndim != 2 or E.shape[0] != len(both):
            raise ValueError(f"embeddings has shape {E.shape}; expected one row per text ({len(a)} + {len(b)})")
    elif embed:
        E = _embed(both, model, tokenizer, **embed_kwargs)
    if E is not None:
        U = _unit(E)
        S = U @ U.T
        ia, ib = np.arange(len(a)), np.arange(len(a), len(both))

        def mean_off_diag(idx):
            if len(idx) < 2:
                return float("nan")
            sub = S[np.ix_(idx, idx)]
            return float((sub.sum() - np.trace(sub)) / (len(idx) * (len(idx) - 1)))

        between = float(S[np.ix_(ia, ib)].mean())
        within = {na: mean_off_diag(ia), nb: mean_off_diag(ib)}
        np.fill_diagonal(S, -np.inf)
        nn = S.argmax(axis=1)
        same = (nn < len(a)) == (np.arange(len(both)) < len(a))
        for name, idx in ((na, ia), (nb, ib)):
            stats[name]["similarity within"] = round(within[name], 3)
            stats[name]["similarity to other group"] = round(between, 3)
            stats[name]["nearest neighbour in same group"] = round(float(same[idx].mean()), 3) if len(both) > 1 else float("nan")
    summary = pd.DataFrame({g: pd.Series(v, dtype=object) for g, v in stats.items()})  # counts stay integers
    return Comparison((na, nb), summary, freq, dist, tm, shares, E, groups, both)
