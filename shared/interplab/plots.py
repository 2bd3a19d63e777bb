"""Matplotlib figures the notebooks share, and the figure helpers the kit's modules share: static pictures
that survive GitHub preview and PDF export.

Each function draws on ``ax`` when given (so notebooks can compose panels) and returns the Axes; ``axes``
is that rule, ``text_color`` picks readable annotation colours and ``overlapping_texts`` finds labels
drawn over each other.
"""
from __future__ import annotations

import numpy as np


def axes(ax=None, figsize=(6, 5)):
    """``ax``, or the Axes of a new ``figsize`` figure when it is None: how every kit figure takes ``ax=``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def text_color(image, value) -> str:
    """"white" or "black": whichever reads on the cell colour ``image`` (an AxesImage) gives ``value``,
    judged by the cell's luminance (Rec. 601 weights), not by where the value sits in the data."""
    if not np.isfinite(value):
        return "black"
    r, g, b, _ = image.cmap(image.norm(value))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def overlapping_texts(fig) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose boxes overlap: a free label (value labels, titles) against another free
    label or a tick label. Tick labels are not compared with each other: SHAP overlays a grey
    "value = name" tick with a black "name" tick on purpose."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()

    def shown(ts):
        return [(t.get_text(), t.get_window_extent(renderer)) for t in ts if t.get_visible() and t.get_text().strip()]

    free = shown([t for a in fig.axes for t in [*a.texts, a.title]])
    ticks = shown([t for a in fig.axes for t in [*a.get_yticklabels(), *a.get_xticklabels()]])
    pairs = [(s, u) for i, (s, b) in enumerate(free) for u, c in free[i + 1:] if b.overlaps(c)]
    return pairs + [(s, u) for s, b in free for u, c in ticks if b.overlaps(c)]


def attention_heatmap(att, layer: int, head: int, ax=None, cmap: str = "viridis"):
    """Attention of one head as a query x key heatmap with the tokens on both axes."""
    a = np.asarray(att.attentions)
    if not (0 <= layer < a.shape[0] and 0 <= head < a.shape[1]):
        raise IndexError(f"layer {layer}, head {head} out of range for {a.shape[0]} layers x {a.shape[1]} heads")
    ax = axes(ax, figsize=(0.35 * len(att.tokens) + 2, 0.35 * len(att.tokens) + 1.5))
    im = ax.imshow(a[layer, head], cmap=cmap, vmin=0, vmax=1)
    ax.set_xticks(range(len(att.tokens)), att.tokens, rotation=90, fontsize=8)
    ax.set_yticks(range(len(att.tokens)), att.tokens, fontsize=8)
    ax.set_xlabel("attends to (key)")
    ax.set_ylabel("token (query)")
    ax.set_title(f"layer {layer}, head {head}")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax


def score_heatmap(scores, title: str = "", ax=None, cmap: str = "magma", vmin=None, vmax=None, fmt: str = ".2f"):
    """A layers x heads table of scores (a DataFrame from ``head_scores``/``entropy``) as an annotated heatmap."""
    values = np.asarray(scores, dtype=float)
    ax = axes(ax, figsize=(0.55 * values.shape[1] + 2, 0.45 * values.shape[0] + 1.5))
    im = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(values.shape[1]))
    ax.set_yticks(range(values.shape[0]))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title)
    if values.size <= 400:
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=7, color=text_color(im, v))
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax
