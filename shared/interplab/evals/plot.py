"""The scaling plot: how a task's loss or accuracy changes with parameter count, one line per family."""
from __future__ import annotations

import math

import numpy as np

_LABELS = {"loss": ("mean_loss", "mean loss (lower is better)"),
           "accuracy": ("accuracy", "accuracy"),
           "logodds_difference": ("mean_logodds", "mean log-odds difference")}


def plot_scaling(results, metric: str = "loss", *, n_classes: float | None = None, params: dict | None = None,
                 families: dict | None = None, ax=None, title: str | None = None, n_boot: int = 1000,
                 ci: float = 0.95, annotate: bool = True):
    """Mean loss (log-log) or accuracy (log x) against parameter count, with bootstrap CI bands.

    ``results``: {model name: results DataFrame} (from ``evaluate`` or ``read_results_dir``), or a
    ``summarize`` table. ``n_classes`` draws the chance baseline: loss ``-log(1/n)``, accuracy ``1/n``
    (defaults to the results' ``attrs["n_classes"]`` when they carry it). Returns the Axes; the
    plotted numbers are ``ax.summary`` (the ``summarize`` table), one point per model.
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    from .results import summarize

    if metric not in _LABELS:
        raise ValueError(f"metric must be one of {list(_LABELS)}, got {metric!r}")
    if isinstance(results, pd.DataFrame):
        table = results
    else:
        if not results:
            raise ValueError("no results to plot")
        table = summarize(results, params=params, families=families, n_boot=n_boot, ci=ci)
        if n_classes is None:
            ns = [df.attrs.get("n_classes") for df in results.values() if df.attrs.get("n_classes")]
            n_classes = float(np.mean(ns)) if ns else None
    col, ylabel = _LABELS[metric]
    if col not in table:
        raise ValueError(f"the results have no {metric!r} (columns: {list(table.columns)})")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    for fam, g in table.groupby("family", sort=True):
        g = g.sort_values("n_params")
        (line,) = ax.plot(g["n_params"], g[col], marker="o", label=fam)
        ax.fill_between(g["n_params"], g[f"{col}_lo"], g[f"{col}_hi"], color=line.get_color(), alpha=0.2, lw=0)
        if annotate:
            for _, r in g.iterrows():
                ax.annotate(str(r["model"]).replace("toy:", ""), (r["n_params"], r[col]), textcoords="offset points",
                            xytext=(3, 4), fontsize=7, color=line.get_color())
    if n_classes and metric in ("loss", "accuracy"):
        chance = math.log(n_classes) if metric == "loss" else 1.0 / n_classes
        ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance ({'-log(1/n)' if metric == 'loss' else '1/n'}, n={n_classes:g})")
    if metric == "logodds_difference":
        ax.axhline(0.0, color="grey", ls="--", lw=1)
    ax.set_xscale("log")
    if metric == "loss" and (table[f"{col}_lo"] > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{ylabel.split(' (')[0]} vs model size ({int(ci * 100)}% bootstrap CI)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.2)
    ax.summary = table
    return ax
