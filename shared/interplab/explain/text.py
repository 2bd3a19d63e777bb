"""Explain one text classification with LIME, ELI5 or SHAP, compare the methods, and test their stability.

``explain_text(text, clf, method=...)`` runs one method and returns an :class:`Attribution`:

* ``"lime"``: ``lime.lime_text.LimeTextExplainer`` (words removed at random; local ridge model; R² score).
* ``"textexplainer"``: ELI5's ``TextExplainer`` (LIME-style sampling, a white-box text model
  fitted to the black box; its ``metrics_``: ``score`` and ``mean_KL_divergence``).
* ``"eli5"``: ELI5's exact ``explain_prediction`` of a scikit-learn vectorizer + linear model
  (white box: weight = coefficient x feature value).
* ``"shap"``: SHAP's partition explainer with a ``shap.maskers.Text`` masker over the classifier's
  tokenizer (or over words when it has none).

``word_weights`` lines their per-word weights up side by side, ``rank_correlation``/``top_overlap`` say
how much they agree, and ``stability`` re-runs one method with several seeds and sample counts.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..errors import EmptyTextError
from .attribution import Attribution
from .classifier import BatchedClassifier, wrap_classifier

METHODS = ("lime", "textexplainer", "eli5", "shap")


def _resolve(text: str, classifier, label):
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise EmptyTextError("text is empty: there is nothing to explain")
    clf = classifier if isinstance(classifier, BatchedClassifier) else wrap_classifier(classifier)
    proba = clf.predict_proba([text])[0]
    names = clf.class_names or [str(i) for i in range(len(proba))]
    if label is None:
        label = int(np.argmax(proba))
    elif isinstance(label, str):
        if label not in names:
            raise ValueError(f"unknown label {label!r}; the classes are {names}")
        label = names.index(label)
    if not 0 <= int(label) < len(proba):
        raise ValueError(f"label {label} out of range: the classifier has {len(proba)} classes {names}")
    return clf, int(label), names, proba


def explain_text(text: str, classifier, method: str = "lime", *, label=None, num_samples: int = 1000, seed: int = 0,
                 tokenizer=None, **kwargs) -> Attribution:
    """Explain ``classifier``'s prediction of class ``label`` (default: the predicted class) on ``text``.

    ``num_samples`` is the number of perturbed texts (LIME, TextExplainer) or SHAP's ``max_evals``.
    ``classifier`` is anything :func:`wrap_classifier` takes (a :class:`BatchedClassifier` is used as is).
    """
    method = str(method).lower()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not isinstance(num_samples, (int, np.integer)) or num_samples < 10:
        raise ValueError(f"num_samples must be an integer >= 10, got {num_samples!r}")
    clf, label, names, proba = _resolve(text, classifier, label)
    fn = {"lime": _lime, "textexplainer": _textexplainer, "eli5": _eli5, "shap": _shap}[method]
    att = fn(text, clf, label, names, num_samples=int(num_samples), seed=seed, tokenizer=tokenizer, **kwargs)
    att.proba = float(proba[label])
    att.meta.setdefault("num_samples", int(num_samples))
    att.meta.setdefault("seed", seed)
    att.meta["classifier"] = clf.name
    return att


def _lime(text, clf, label, names, *, num_samples, seed, tokenizer=None, num_features=None, **kwargs):
    from lime.lime_text import LimeTextExplainer

    explainer = LimeTextExplainer(class_names=names, random_state=seed, bow=kwargs.pop("bow", True), **kwargs)
    # num_features larger than the number of words means "all of them"
    exp = explainer.explain_instance(text, clf.predict_proba, labels=(label,), num_features=num_features or 100_000,
                                     num_samples=num_samples)
    idx = exp.domain_mapper.indexed_string
    features, weights, spans = [], [], []
    for fid, w in exp.as_map()[label]:
        word = idx.word(fid)
        starts = idx.string_position(fid)
        starts = [int(s) for s in np.atleast_1d(starts)]
        features.append(word)
        weights.append(w)
        spans.append([(s, s + len(word)) for s in starts])
    return Attribution("lime", features, np.array(weights), label, names[label], text=text, spans=spans,
                       intercept=float(exp.intercept[label]), score=float(exp.score),
                       meta={"local_pred": float(np.ravel(exp.local_pred)[0]) if exp.local_pred is not None else None,
                             "lime": exp})


def _from_eli5(method, expl, text, label, names, score=None, meta=None):
    """An Attribution from an ELI5 text explanation (its weighted spans give features and positions)."""
    target = expl.targets[0]
    negate = False
    if len(names) == 2 and target.target is not None and str(target.target) != names[label]:
        negate = True  # binary classifiers: ELI5 explains class 1; class 0 is its mirror image
    features, weights, spans = [], [], []
    slot = {}
    ws = target.weighted_spans
    if ws is not None:
        for feature, fspans, w in ws.docs_weighted_spans[0].spans:
            feature = str(feature)
            if feature not in slot:
                slot[feature] = len(features)
                features.append(feature)
                weights.append(float(w))
                spans.append([])
            spans[slot[feature]].extend((int(a), int(b)) for a, b in fspans)
    bias = 0.0
    fw = target.feature_weights
    for f in itertools.chain(fw.pos if fw else [], fw.neg if fw else []):
        if str(f.feature) == "<BIAS>":
            bias = float(f.weight)
    sign = -1.0 if negate else 1.0
    meta = dict(meta or {})
    meta["eli5"] = expl
    return Attribution(method, features, sign * np.array(weights, dtype=float), label, names[label], text=text,
                       spans=[sorted(set(s)) for s in spans], intercept=sign * bias, score=score, meta=meta)


def _textexplainer(text, clf, label, names, *, num_samples, seed, tokenizer=None, **kwargs):
    from eli5.lime import TextExplainer

    te = TextExplainer(n_samples=num_samples, random_state=seed, **kwargs)
    te.fit(text, clf.predict_proba)
    expl = te.explain_prediction(target_names=names, targets=[label], top=None)
    metrics = {k: float(v) for k, v in te.metrics_.items()}
    return _from_eli5("textexplainer", expl, text, label, names, score=metrics.get("score"),
                      meta={"metrics": metrics, "explainer": te})


def _eli5(text, clf, label, names, *, num_samples, seed, tokenizer=None, **kwargs):
    import eli5
    from sklearn.pipeline import Pipeline

    est = clf.estimator
    if not isinstance(est, Pipeline) or len(est.steps) != 2:
        raise TypeError("method='eli5' explains a scikit-learn Pipeline(vectorizer, linear model) exactly; "
                        f"got {type(est).__name__}. For any other classifier use method='textexplainer'")
    vec, model = est.steps[0][1], est.steps[-1][1]
    expl = eli5.explain_prediction(model, text, vec=vec, target_names=names, targets=[label], top=None, **kwargs)
    if expl.error:
        raise TypeError(f"ELI5 cannot explain {type(model).__name__}: {expl.error}")
    return _from_eli5("eli5", expl, text, label, names, meta={"num_samples": 0})


def _shap(text, clf, label, names, *, num_samples, seed, tokenizer=None, batch_size: int = 128, **kwargs):
    import shap

    tokenizer = tokenizer if tokenizer is not None else clf.tokenizer
    masker = shap.maskers.Text(tokenizer)
    explainer = shap.Explainer(clf.predict_proba, masker, output_names=names, algorithm="partition", **kwargs)
    sv = explainer([text], max_evals=num_samples, batch_size=batch_size, silent=True)
    tokens = [str(t) for t in sv.data[0]]
    values = np.asarray(sv.values[0])[:, label]
    features, weights, spans = [], [], []
    pos = 0
    for i, (tok, v) in enumerate(zip(tokens, values)):
        start = text.find(tok, pos) if tok else pos
        if start < 0:  # the masker changed the token text; fall back to running position
            start = pos
        end = start + len(tok)
        pos = end
        if not tok.strip():  # special tokens ([CLS], [SEP]) carry SHAP value too: keep it, with no span
            special = {0: getattr(tokenizer, "cls_token", None), len(tokens) - 1: getattr(tokenizer, "sep_token", None)}
            features.append(special.get(i) or f"[token {i}]")
            weights.append(float(v))
            spans.append([])
            continue
        lead = len(tok) - len(tok.lstrip())
        features.append(tok.strip())
        weights.append(float(v))
        spans.append([(start + lead, start + lead + len(tok.strip()))])
    return Attribution("shap", features, np.array(weights), label, names[label], text=text, spans=spans,
                       intercept=float(np.asarray(sv.base_values[0])[label]), meta={"shap": sv})


# ---------------------------------------------------------------- agreement

def word_weights(attributions, *, normalize: bool = False):
    """Words x methods table of weights (0 where a method gave a word no weight).

    ``attributions``: a list (columns named by method) or a dict {column name: Attribution}.
    ``normalize=True`` divides each column by its largest |weight| so methods on different scales
    (probabilities, log-odds, TF-IDF contributions) fit one plot.
    """
    import pandas as pd

    if isinstance(attributions, dict):
        cols, attributions = [str(k) for k in attributions], list(attributions.values())
    else:
        attributions = list(attributions)
        cols, seen = [], {}
        for a in attributions:
            seen[a.method] = seen.get(a.method, 0) + 1
            cols.append(a.method if seen[a.method] == 1 else f"{a.method}#{seen[a.method]}")
    if not attributions:
        raise ValueError("word_weights needs at least one Attribution")
    texts = {a.text for a in attributions}
    if len(texts) > 1:
        raise ValueError("word_weights: the attributions explain different texts")
    series = [a.by_word().rename(c) for a, c in zip(attributions, cols)]
    table = pd.concat(series, axis=1).fillna(0.0)
    if normalize:
        scale = table.abs().max().replace(0, 1.0)
        table = table / scale
    table.index.name = "word"
    return table


def rank_correlation(table, method: str = "spearman"):
    """Methods x methods rank correlation of the per-word weights (``spearman`` or ``kendall``)."""
    if method not in ("spearman", "kendall"):
        raise ValueError(f"method must be 'spearman' or 'kendall', got {method!r}")
    return table.corr(method=method)


def top_overlap(table, k: int = 5):
    """Methods x methods overlap (Jaccard) of the ``k`` words each method weights most (by |weight|)."""
    import pandas as pd

    tops = {c: set(table[c].abs().sort_values(ascending=False, kind="stable").index[:k]) for c in table.columns}
    return pd.DataFrame({a: {b: len(tops[a] & tops[b]) / len(tops[a] | tops[b]) for b in tops} for a in tops})


# ---------------------------------------------------------------- stability

@dataclass
class Stability:
    """Re-runs of one explanation method: how much the top words and their signs move.

    ``runs``: long table (num_samples, seed, word, weight, rank). ``summary``: per sample count, the
    mean pairwise Jaccard overlap of the top-k words across seeds, the share of runs that agree on
    the top word, the number of words whose sign flips between seeds, and the mean fidelity score.
    ``sign_flips``: the words whose sign differs between any two runs, with their weight range.
    """

    method: str
    top_k: int
    runs: object
    summary: object
    sign_flips: object
    attributions: list

    def plot(self, ax=None, k: int | None = None):
        from .render import plot_stability

        return plot_stability(self, ax=ax, k=k)

    def _repr_html_(self) -> str:
        return self.summary.to_html()


def stability(text: str, classifier, *, method: str = "lime", seeds=(0, 1, 2), num_samples=(250, 500, 1000),
              top_k: int = 5, label=None, **kwargs) -> Stability:
    """Explain ``text`` with every seed x sample count and report how stable the top-``top_k`` words are."""
    import pandas as pd
    from tqdm.auto import tqdm

    seeds, num_samples = list(seeds), list(num_samples)
    if len(seeds) < 2:
        raise ValueError("stability needs at least two seeds to compare")
    if not num_samples:
        raise ValueError("stability needs at least one sample count")
    clf, label, names, _ = _resolve(text, classifier, label)
    rows, atts = [], []
    quiet = BatchedClassifier(clf.predict_batch, batch_size=clf.batch_size, class_names=clf.class_names,
                              tokenizer=clf.tokenizer, estimator=clf.estimator, progress=False, name=clf.name)
    quiet.stats = clf.stats  # one bar (runs), not one per run; the caller's counters still count
    for n, s in tqdm(list(itertools.product(num_samples, seeds)), desc=f"{method} stability", leave=False):
        att = explain_text(text, quiet, method, label=label, num_samples=n, seed=s, **kwargs)
        atts.append(att)
        w = att.by_word()
        rank = w.abs().rank(ascending=False, method="first").astype(int)
        for word in w.index:
            rows.append({"num_samples": n, "seed": s, "word": word, "weight": float(w[word]), "rank": int(rank[word]),
                         "score": att.score})
    runs = pd.DataFrame(rows)
    summary, flips = [], []
    for n, grp in runs.groupby("num_samples", sort=True):
        tops = [set(g.nsmallest(top_k, "rank")["word"]) for _, g in grp.groupby("seed")]
        jacc = [len(a & b) / len(a | b) for a, b in itertools.combinations(tops, 2)]
        first = [g.nsmallest(1, "rank")["word"].iloc[0] for _, g in grp.groupby("seed")]
        modal = max(set(first), key=first.count)
        union = set().union(*tops)
        signs = grp[grp["word"].isin(union)].groupby("word")["weight"].agg(lambda x: (np.sign(x[x != 0]).nunique()))
        flipped = sorted(signs[signs > 1].index)
        summary.append({"num_samples": n, "runs": len(tops), f"top{top_k}_jaccard": float(np.mean(jacc)),
                        "top1_agreement": first.count(modal) / len(first), "top1_word": modal,
                        "sign_flips": len(flipped), "flipped_words": ", ".join(flipped),
                        "mean_score": float(grp.groupby("seed")["score"].first().mean()) if grp["score"].notna().any() else np.nan})
    union_all = set(runs.loc[runs["rank"] <= top_k, "word"])
    g = runs[runs["word"].isin(union_all)].groupby("word")["weight"]
    rng = pd.DataFrame({"min_weight": g.min(), "max_weight": g.max()})
    flips = rng[(rng["min_weight"] < 0) & (rng["max_weight"] > 0)].sort_values("max_weight", ascending=False)
    return Stability(method, top_k, runs, pd.DataFrame(summary).set_index("num_samples"), flips, atts)


# ---------------------------------------------------------------- over many texts

def first_words(text: str, n: int | None) -> str:
    """``text`` up to the end of its ``n``-th word (as LIME splits words; the punctuation right after it
    is kept), or whole when it is shorter or ``n`` is None.

    Why: LIME, TextExplainer and SHAP treat every word as a feature, so their cost (and the samples
    they need for the same accuracy) grows with the length of the text. Explaining the first ``n``
    words of long reviews keeps a run over many reviews short; what is explained is then the
    classifier on that shorter text, which a notebook says where it does this.
    """
    import re

    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if n is None:
        return text
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int or None, got {n!r}")
    words = list(itertools.islice(re.finditer(r"\w+", text), int(n) + 1))
    if len(words) <= n:
        return text
    end = words[int(n) - 1].end()
    return text[:end] + re.match(r"[^\w\s]*", text[end:]).group()


def _random_jaccard(n_words: int, k: int, draws: int = 200, seed: int = 0) -> float:
    """Expected top-k overlap (Jaccard) of two methods that rank ``n_words`` words at random: the chance baseline."""
    if n_words <= 0:
        return float("nan")
    k = min(k, n_words)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(draws):
        a, b = set(rng.choice(n_words, k, replace=False)), set(rng.choice(n_words, k, replace=False))
        out.append(len(a & b) / len(a | b))
    return float(np.mean(out))


def agreement_over(texts, explainers: dict, *, top_k: int = 5, seed: int = 0):
    """Do two or more explanation methods agree, over many texts rather than one?

    ``explainers``: {name: function(text) -> Attribution}. For every text and every pair of methods:
    the Spearman correlation of their per-word weights and the Jaccard overlap of their top-``top_k``
    words, beside ``jaccard_random`` (what two random rankings of that text's words would overlap).
    Returns ``(per_text, summary)``: the long table, and per pair the number of texts, mean, std,
    10th / 50th / 90th percentile of each, and the mean random baseline. Pick the texts at random
    (not by a model's confidence) so the summary says something about the data.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from ..inputs import as_texts

    items = as_texts(texts, "agreement_over: texts")
    if len(explainers) < 2:
        raise ValueError("agreement_over needs at least two explainers to compare")
    rows = []
    for i, text in enumerate(tqdm(items, desc="explaining texts", unit="text", leave=False)):
        table = word_weights({name: fn(text) for name, fn in explainers.items()})
        corr, jac = rank_correlation(table), top_overlap(table, k=top_k)
        base = _random_jaccard(len(table), top_k, seed=seed + i)
        for a, b in itertools.combinations(list(explainers), 2):
            rows.append({"text": i, "pair": f"{a} vs {b}", "words": len(table), "spearman": float(corr.loc[a, b]),
                         f"top{top_k}_jaccard": float(jac.loc[a, b]), "jaccard_random": base})
    per_text = pd.DataFrame(rows)
    jcol = f"top{top_k}_jaccard"

    def stats(g):
        out = {"texts": len(g)}
        for c in ("spearman", jcol):
            v = g[c].dropna()
            out.update({f"{c} mean": v.mean(), f"{c} std": v.std(), f"{c} p10": v.quantile(0.1),
                        f"{c} median": v.median(), f"{c} p90": v.quantile(0.9)})
        out["jaccard_random mean"] = g["jaccard_random"].mean()
        return pd.Series(out)

    summary = pd.DataFrame({pair: stats(g) for pair, g in per_text.groupby("pair", sort=False)}).T
    summary.index.name = "pair"
    return per_text, summary


def stability_over(texts, classifier, *, method: str = "lime", seeds=(0, 1, 2), num_samples=(200, 500),
                   top_k: int = 5, label=None, **kwargs):
    """:func:`stability` on every text: one row per (text, sample count) with the top-k overlap across seeds,
    top-1 agreement, sign flips and mean fidelity score. Summarise with ``.groupby("num_samples").agg(...)``."""
    import pandas as pd
    from tqdm.auto import tqdm

    from ..inputs import as_texts

    items = as_texts(texts, "stability_over: texts")
    frames = []
    for i, text in enumerate(tqdm(items, desc=f"{method} stability over texts", unit="text", leave=False)):
        st = stability(text, classifier, method=method, seeds=seeds, num_samples=num_samples, top_k=top_k,
                       label=label, **kwargs)
        frames.append(st.summary.drop(columns=["top1_word", "flipped_words"]).reset_index().assign(text=i))
    return pd.concat(frames, ignore_index=True)
