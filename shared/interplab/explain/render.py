"""Explanations as pictures: plain HTML/CSS views and static matplotlib figures.

The HTML uses inline styles only (no scripts, no CDN, no ``<style>`` that leaks into the page), so it
displays the same in Jupyter Notebook, JupyterLab, VS Code and Colab, and in a saved page opened
with no network. lime's ``show_in_notebook`` pulls a large JavaScript bundle and fails in JupyterLab;
these views replace it. ELI5's own ``format_as_html`` is pure HTML and is wrapped as is.
"""
from __future__ import annotations

import html as _html

import numpy as np

from ..plots import axes, overlapping_texts

POS_RGB = (26, 133, 74)    # green: pushes towards the explained class
NEG_RGB = (214, 39, 40)    # red: pushes away from it


def _char_weights(att) -> np.ndarray:
    """Weight at each character of the text: the sum of the features whose spans cover it."""
    cw = np.zeros(len(att.text or ""))
    for spans, w in zip(att.spans, att.weights):
        for a, b in spans:
            cw[max(a, 0):max(b, 0)] += w
    return cw


def highlighted_text_html(att) -> str:
    """The explained text with each feature's characters shaded by its weight (hover shows the value)."""
    text = att.text or ""
    if not text:
        return ""
    from ..html import shade, shaded_tokens

    cw = _char_weights(att)
    scale = float(np.abs(cw).max()) if len(cw) else 0.0
    cuts = [0] + [i for i in range(1, len(text)) if cw[i] != cw[i - 1]] + [len(text)]  # runs of one weight
    chunks, weights = [text[a:b] for a, b in zip(cuts, cuts[1:])], [float(cw[a]) for a in cuts[:-1]]
    colours = [None if w == 0 else shade(w, scale, POS_RGB, NEG_RGB, alpha=(0.12, 0.80)) for w in weights]
    out = shaded_tokens(chunks, colours, [f"{w:+.4f}" for w in weights], style="border-radius:3px;padding:0 1px")
    return ('<div style="line-height:1.9;white-space:pre-wrap;font-size:14px;color:#111;background:#fff;'
            'padding:6px 8px;border:1px solid #ddd;border-radius:4px">' + out + "</div>")


def _header(att, name: str | None = None) -> str:
    bits = [f"<b>{_html.escape(name or att.method)}</b>", f"class <b>{_html.escape(att.label_name or str(att.label))}</b>"]
    if att.proba is not None:
        bits.append(f"p = {att.proba:.3f}")
    if att.score is not None:
        bits.append(f"fidelity score = {att.score:.3f}")
    if att.intercept is not None:
        bits.append(f"intercept = {att.intercept:+.3f}")
    n = att.meta.get("num_samples")
    if n:
        bits.append(f"{n} samples")
    return '<div style="font-size:13px;color:#333;margin:2px 0 4px">' + " &middot; ".join(bits) + "</div>"


def weights_table_html(att, k: int = 10) -> str:
    """Top-``k`` features as a table of CSS bars (green positive, red negative)."""
    top = att.top(k)
    if not top:
        return ""
    scale = max(abs(w) for _, w in top) or 1.0
    rows = []
    for f, w in top:
        width = 100 * abs(w) / scale
        colour = "rgb(%d,%d,%d)" % (POS_RGB if w > 0 else NEG_RGB)
        bar = (f'<div style="display:flex;align-items:center;width:220px">'
               f'<div style="width:110px;display:flex;justify-content:flex-end">'
               + (f'<div style="height:12px;width:{width:.1f}%;min-width:1px;background:{colour}"></div>' if w < 0 else "")
               + '</div><div style="width:1px;height:16px;background:#888"></div><div style="width:110px">'
               + (f'<div style="height:12px;width:{width:.1f}%;min-width:1px;background:{colour}"></div>' if w > 0 else "")
               + "</div></div>")
        rows.append(f'<tr><td style="text-align:right;padding:1px 6px;font-family:monospace">{_html.escape(f)}</td>'
                    f'<td style="padding:1px 4px">{bar}</td>'
                    f'<td style="text-align:right;padding:1px 6px;font-family:monospace">{w:+.4f}</td></tr>')
    return ('<table style="border-collapse:collapse;font-size:12px;margin-top:6px;color:#111;background:#fff">'
            + "".join(rows) + "</table>")


def attribution_html(att, k: int = 10):
    """An :class:`interplab.html.HTMLView` of one Attribution: header, highlighted text, top-``k`` bars."""
    from ..html import HTMLView

    parts = ['<div style="font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:900px;margin:6px 0">',
             _header(att)]
    if att.text:
        parts.append(highlighted_text_html(att))
    parts.append(weights_table_html(att, k=k))
    parts.append("</div>")
    return HTMLView("".join(parts), title=f"{att.method} explanation")


def compare_html(attributions, k: int = 6):
    """Several explanations of the same text (a list, or a dict {name: Attribution}), one highlighted copy each."""
    from ..html import HTMLView

    items = attributions.items() if isinstance(attributions, dict) else [(None, a) for a in attributions]
    parts = ['<div style="font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:900px">']
    for name, att in items:
        top = ", ".join(f"{_html.escape(f)} {w:+.3f}" for f, w in att.top(k))
        parts.append(_header(att, name) + highlighted_text_html(att)
                     + f'<div style="font-size:12px;color:#555;margin:2px 0 10px">top: {top}</div>')
    parts.append("</div>")
    return HTMLView("".join(parts), title="explanations side by side")


def eli5_html(explanation, **kwargs):
    """ELI5's own HTML for an ``explain_weights``/``explain_prediction`` result (pure HTML/CSS, offline)."""
    import eli5

    from ..html import HTMLView

    kwargs.setdefault("include_styles", True)
    return HTMLView(eli5.format_as_html(explanation, **kwargs), title="ELI5 explanation")


# ---------------------------------------------------------------- matplotlib

def plot_weights(att, k: int = 10, ax=None):
    """Horizontal bars of the top-``k`` weights (largest at the top)."""
    top = att.top(k)[::-1]
    ax = axes(ax, (6, 0.32 * max(len(top), 3) + 1.2))
    names = [f for f, _ in top]
    vals = [w for _, w in top]
    colours = [np.array(POS_RGB if w > 0 else NEG_RGB) / 255 for w in vals]
    ax.barh(range(len(vals)), vals, color=colours)
    ax.set_yticks(range(len(vals)), names, fontsize=9)
    ax.axvline(0, color="#555", lw=0.8)
    title = f"{att.method}: towards '{att.label_name or att.label}'"
    if att.score is not None:
        title += f" (score {att.score:.2f})"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("weight")
    return ax


def plot_text(att, ax=None, width: int = 90):
    """The text in a monospace font, each word on a background coloured by its weight."""
    import textwrap

    from matplotlib.patches import Rectangle

    text = att.text or ""
    cw = _char_weights(att)
    scale = float(np.abs(cw).max()) if len(cw) else 0.0
    lines, pos = [], 0
    for para in text.split("\n"):
        for line in textwrap.wrap(para, width=width, drop_whitespace=False, replace_whitespace=False) or [""]:
            lines.append((pos, line))
            pos += len(line)
        pos += 1
    ax = axes(ax, (0.095 * width + 0.5, 0.28 * len(lines) + 0.6))
    ax.set_xlim(0, width)
    ax.set_ylim(len(lines), -0.5)
    ax.axis("off")
    # measure the monospace character width in data units, so the shading sits under its letters
    probe = ax.text(0, 0, "x" * width, family="monospace", fontsize=9)
    box = probe.get_window_extent(renderer=ax.figure.canvas.get_renderer())
    inv = ax.transData.inverted()
    char_w = (inv.transform((box.x1, 0))[0] - inv.transform((box.x0, 0))[0]) / width
    probe.remove()
    for row, (start, line) in enumerate(lines):
        # one text artist per run of equal weight, placed at its own column: stays aligned at any dpi
        j = 0
        while j < len(line):
            w = cw[start + j] if start + j < len(cw) else 0
            k = j + 1
            while k < len(line) and (cw[start + k] if start + k < len(cw) else 0) == w:
                k += 1
            if w != 0 and scale > 0:
                r, g, b = POS_RGB if w > 0 else NEG_RGB
                ax.add_patch(Rectangle((j * char_w, row - 0.4), (k - j) * char_w, 0.8,
                                       color=(r / 255, g / 255, b / 255, 0.12 + 0.68 * min(abs(w) / scale, 1)), lw=0))
            ax.text(j * char_w, row, line[j:k], family="monospace", fontsize=9, va="center")
            j = k
    ax.set_title(f"{att.method}: green pushes towards '{att.label_name or att.label}', red away", fontsize=10)
    return ax


def plot_comparison(table, k: int = 12, ax=None):
    """Grouped bars: the ``k`` words with the largest mean normalised |weight|, one bar per method.

    Each method's column is divided by its largest |weight| first, so different scales line up.
    """
    cols = list(table.columns)
    norm = table / table.abs().max().replace(0, 1.0)
    words = norm.abs().mean(axis=1).sort_values(ascending=False).index[:k][::-1]
    ax = axes(ax, (7, 0.38 * len(words) + 1.5))
    h = 0.8 / max(len(cols), 1)
    for i, c in enumerate(cols):
        ax.barh(np.arange(len(words)) + (i - (len(cols) - 1) / 2) * h, norm.loc[words, c], height=h, label=c)
    ax.set_yticks(range(len(words)), list(words), fontsize=9)
    ax.axvline(0, color="#555", lw=0.8)
    ax.set_xlabel("weight / max |weight| of the method")
    ax.legend(fontsize=8, loc="best")
    ax.set_title("per-word attributions, methods side by side", fontsize=10)
    return ax


def plot_stability(stab, ax=None, k: int | None = None):
    """Each top word's weight in every run (dots coloured by sample count): spread = instability."""
    runs = stab.runs
    k = k or stab.top_k
    words = list(runs.loc[runs["rank"] <= k].groupby("word")["weight"].apply(lambda x: x.abs().mean())
                 .sort_values(ascending=True).index)
    ax = axes(ax, (7, 0.35 * len(words) + 1.5))
    import matplotlib.pyplot as plt

    ns = sorted(runs["num_samples"].unique())
    cmap = plt.get_cmap("viridis", max(len(ns), 2))
    for ci, n in enumerate(ns):
        sub = runs[(runs["num_samples"] == n) & runs["word"].isin(words)]
        y = [words.index(w) + (ci - (len(ns) - 1) / 2) * 0.15 for w in sub["word"]]
        ax.scatter(sub["weight"], y, s=18, color=cmap(ci), label=f"{n} samples", alpha=0.85)
    ax.set_yticks(range(len(words)), words, fontsize=9)
    ax.axvline(0, color="#555", lw=0.8)
    ax.set_xlabel("weight")
    ax.legend(fontsize=8)
    ax.set_title(f"{stab.method}: weights across seeds and sample counts", fontsize=10)
    return ax


def plot_waterfall(explanation, max_display: int = 8, title: str = ""):
    """SHAP's waterfall for one row, laid out so no label overlaps another; returns the figure.

    ``shap.plots.waterfall`` writes a short bar's value beside it, and next to the axis edge that text
    runs into the feature names; the x-range is widened until every value label clears them, and the
    title is lifted above the ``f(x)`` label that SHAP draws on a second axis at the top."""
    import matplotlib.pyplot as plt
    import shap

    shap.plots.waterfall(explanation, max_display=max_display, show=False)
    fig = plt.gcf()
    axes = fig.axes
    for _ in range(6):
        if not overlapping_texts(fig):
            break
        lo, hi = axes[0].get_xlim()
        for a in axes:  # SHAP's twin axes (E[f(X)], f(x) ticks) share the main axis' range
            a.set_xlim(lo - 0.12 * (hi - lo), hi)
    if title:
        axes[0].set_title(title, pad=24)
    fig.tight_layout()
    return fig
