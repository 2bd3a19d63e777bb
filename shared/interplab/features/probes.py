"""Linear probes, layer by layer, with a control task so probe accuracy is not mistaken for knowledge.

    X = {site: acts[site].pooled() for site in acts}            # or token rows for a token property
    table = probe_layers(X, labels)                             # one row per layer
    plot_probe_accuracy(table)

A probe that reaches 90% tells you the property is *linearly decodable* from the layer, not that
the model uses it: a big enough probe can learn almost anything. So every probe is paired with a
**control task** trained and scored the same way (Hewitt & Liang, 2019, "Designing and Interpreting
Probes with Control Tasks"):

* ``control="shuffle"``: the labels randomly permuted across examples. Nothing real is left to
  learn, so held-out control accuracy is the chance level a probe reaches on this data.
* ``control="type"``: each *token type* (``types=`` token ids) gets one random label, with the same
  label frequency as the real task. A probe can score well on it only by memorising token identity,
  so it measures how much of the real accuracy lexical identity alone could explain.

``selectivity = accuracy - control_accuracy`` is the number to report. Scores are k-fold
cross-validated (folds grouped by ``groups``, e.g. the text a token came from, so a probe is never
tested on a text it was trained on).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ProbeResult:
    """A probe's held-out score (mean over folds), its spread, and the fitted probe (on all data)."""

    score: float
    std: float
    fold_scores: list[float]
    model: object
    metric: str


def control_labels(labels, control: str = "shuffle", types=None, seed: int = 0) -> np.ndarray:
    """Labels for a control task: ``"shuffle"`` (permuted) or ``"type"`` (one random label per token type)."""
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    if control == "shuffle":
        return rng.permutation(y)
    if control == "type":
        if types is None:
            raise ValueError("control='type' needs types= (e.g. the token id of each example)")
        types = np.asarray(types)
        if len(types) != len(y):
            raise ValueError(f"types has {len(types)} entries but labels has {len(y)}")
        uniq, inverse = np.unique(types, return_inverse=True)
        # Draw each type's label from the real label distribution (over types), so base rates match.
        values, counts = np.unique(y, return_counts=True)
        per_type = rng.choice(values, size=len(uniq), p=counts / counts.sum())
        return per_type[inverse]
    raise ValueError(f"control must be 'shuffle' or 'type', got {control!r}")


def _check(X, y):
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"probe features must be 2-D (examples x dims), got shape {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"{len(X)} examples but {len(y)} labels")
    if not np.isfinite(X).all():
        raise ValueError("probe features contain NaN or inf")
    return X, y


def probe(X, y, *, kind: str = "logistic", folds: int = 5, groups=None, C: float = 1.0, seed: int = 0,
          metric: str | None = None) -> ProbeResult:
    """Cross-validated linear probe on ``X`` (examples x dims) for labels ``y``.

    ``kind="logistic"`` (classification; score = accuracy, or ``metric="balanced_accuracy"``) or
    ``kind="linear"`` (ridge regression for a continuous variable; score = R^2). Features are
    standardised inside each fold. ``C`` is the inverse L2 strength (``alpha = 1/C`` for ridge).
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import balanced_accuracy_score, accuracy_score, r2_score
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _check(X, y)
    if kind == "logistic":
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise ValueError(f"labels have a single class ({classes[0]!r}); a probe needs at least two")
        metric = metric or "accuracy"
        make = lambda: make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500))  # noqa: E731
        folds = max(2, min(folds, int(counts.min()))) if groups is None else folds
    elif kind == "linear":
        metric = metric or "r2"
        y = y.astype(np.float64)
        make = lambda: make_pipeline(StandardScaler(), Ridge(alpha=1.0 / C))  # noqa: E731
    else:
        raise ValueError(f"kind must be 'logistic' or 'linear', got {kind!r}")
    scorer = {"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score, "r2": r2_score}[metric]
    if groups is not None:
        groups = np.asarray(groups)
        folds = min(folds, len(np.unique(groups)))
        splits = GroupKFold(n_splits=folds).split(X, y, groups)
    elif kind == "logistic":
        splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y)
    else:
        splits = KFold(n_splits=folds, shuffle=True, random_state=seed).split(X)
    # One BLAS thread: these fits are small, and a second thread mostly spin-waits (40x slower on a busy CPU).
    from threadpoolctl import threadpool_limits

    scores = []
    with threadpool_limits(1):
        for train, test in splits:
            if kind == "logistic" and len(np.unique(y[train])) < 2:
                continue
            m = make().fit(X[train], y[train])
            scores.append(float(scorer(y[test], m.predict(X[test]))))
        final = make().fit(X, y) if scores else None
    if not scores:
        raise ValueError("no fold had two classes to train on; give more examples of each class")
    return ProbeResult(float(np.mean(scores)), float(np.std(scores)), scores, final, metric)


def probe_layers(features: dict, labels, *, control: str | None = None, types=None, groups=None,
                 kind: str = "logistic", folds: int = 5, C: float = 1.0, seed: int = 0,
                 metric: str | None = None, progress: bool = True):
    """Probe every layer for ``labels`` and for a control task; one row per layer.

    ``features`` maps a layer/site name to its (examples x dims) array, in layer order. ``control``
    defaults to ``"type"`` when ``types`` is given, else ``"shuffle"``. Returns a DataFrame with
    columns ``site, layer, score, std, control_score, control_std, selectivity, majority`` (and
    keeps the fitted probes in ``.attrs["probes"]``).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if not features:
        raise ValueError("features is empty: give {site: array} for at least one layer")
    control = control or ("type" if types is not None else "shuffle")
    y = np.asarray(labels)
    y_control = control_labels(y, control, types=types, seed=seed)
    majority = float(np.max(np.unique(y, return_counts=True)[1]) / len(y)) if kind == "logistic" else 0.0
    if metric == "balanced_accuracy":
        majority = 1.0 / len(np.unique(y))
    rows, probes = [], {}
    for i, (site, X) in enumerate(tqdm(features.items(), desc=f"probing {len(features)} layers",
                                       disable=not progress)):
        real = probe(X, y, kind=kind, folds=folds, groups=groups, C=C, seed=seed, metric=metric)
        ctrl = probe(X, y_control, kind=kind, folds=folds, groups=groups, C=C, seed=seed, metric=metric)
        probes[site] = real.model
        rows.append({"site": site, "layer": i, "score": real.score, "std": real.std,
                     "control_score": ctrl.score, "control_std": ctrl.std,
                     "selectivity": real.score - ctrl.score, "majority": majority})
    table = pd.DataFrame(rows)
    table.attrs.update(probes=probes, control=control, metric=real.metric)
    return table


def token_probe_data(acts: dict, predicate, *, balance: bool = True, max_rows: int = 4000, seed: int = 0):
    """Token-level probing data from ``{site: Activations}`` (same inputs) and a token predicate.

    Special tokens are dropped. ``balance=True`` keeps every positive token and as many random
    negatives (a rare property such as "is a number" would otherwise score 99% by always saying no).
    Returns ``(X, y, types, groups)``: ``{site: rows x d}``, 0/1 labels, token ids (for the type
    control) and input indices (so folds never split a text).
    """
    first = next(iter(acts.values()))
    y_all = first.token_labels(predicate)
    rows = first.rows(exclude_special=True)
    rng = np.random.default_rng(seed)
    pos, neg = rows[y_all[rows] == 1], rows[y_all[rows] == 0]
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"the property holds for {len(pos)} of {len(rows)} tokens; a probe needs both kinds")
    if balance:
        n = min(len(pos), len(neg), max_rows // 2)
        rows = np.sort(np.concatenate([rng.choice(pos, n, replace=False), rng.choice(neg, n, replace=False)]))
    elif len(rows) > max_rows:
        rows = np.sort(rng.choice(rows, max_rows, replace=False))
    X = {site: np.asarray(a.values[rows], dtype=np.float32) for site, a in acts.items()}
    return X, y_all[rows], first.token_ids[rows], first.input_index[rows]


def plot_probe_accuracy(table, title: str = "", ax=None):
    """Probe score by layer, with the control task and the majority-class baseline."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(len(table))
    metric = table.attrs.get("metric", "accuracy")
    ax.errorbar(x, table["score"], yerr=table["std"], marker="o", capsize=3, label=f"probe ({metric})")
    ax.errorbar(x, table["control_score"], yerr=table["control_std"], marker="s", capsize=3, ls="--",
                label=f"control task ({table.attrs.get('control', 'control')})")
    if metric != "r2":
        ax.axhline(table["majority"].iloc[0], color="grey", lw=1, ls=":", label="majority class")
    best = int(np.argmax(table["selectivity"].to_numpy()))
    ax.annotate(f"best selectivity {table['selectivity'].iloc[best]:+.2f}", (x[best], table["score"].iloc[best]),
                textcoords="offset points", xytext=(0, -16), ha="center", fontsize=8)
    ax.set_xticks(x, table["site"], rotation=30, fontsize=8)
    ax.set_xlabel("layer (site)")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    return ax
