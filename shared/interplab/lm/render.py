"""Token log-prob highlighting that renders with no network (HTML with inline styles)."""
from __future__ import annotations

import html
import math


def _colour(p: float) -> str:
    # red (unlikely) -> yellow -> green (likely), light enough to read black text on
    p = max(0.0, min(1.0, p))
    r = int(255 if p < 0.5 else 255 - (p - 0.5) * 2 * 120)
    g = int(140 + p * 115 if p < 0.5 else 255)
    return f"rgb({r},{g},140)"


def highlight_tokens(tokens, logprobs, top_logprobs=None, title: str | None = None):
    """An ``HTMLView`` of tokens coloured by their probability; hovering a token shows its top alternatives."""
    from ..html import HTMLView, shaded_tokens

    tips, colours = [], []
    for i, lp in enumerate(logprobs):
        p = math.exp(lp) if lp is not None else 0.0
        tip = f"p={p:.3f} (log-prob {lp:.2f})" if lp is not None else "no log-prob"
        if top_logprobs and i < len(top_logprobs) and top_logprobs[i]:
            alts = sorted(top_logprobs[i].items(), key=lambda kv: -kv[1])[:5]
            tip += " | " + ", ".join(f"{t!r}: {math.exp(v):.3f}" for t, v in alts)
        tips.append(tip)
        colours.append(_colour(p))
    shown = [tok.replace("\n", "\u21b5\n") for tok in tokens]  # a newline shows as an arrow, then breaks the line
    spans = shaded_tokens(shown, colours, tips, style="border-radius:3px;padding:1px 0;white-space:pre-wrap")
    head = f"<div style='font-weight:bold;margin-bottom:4px'>{html.escape(title)}</div>" if title else ""
    legend = ("<div style='font-size:11px;color:#555;margin-top:4px'>colour = probability of each generated token "
              "(red unlikely, green likely); hover for alternatives</div>")
    body = (f"<div style='font-family:monospace;font-size:13px;line-height:1.8;color:#000'>{head}"
            + spans + legend + "</div>")
    return HTMLView(body, title=title or "token log-probs")
