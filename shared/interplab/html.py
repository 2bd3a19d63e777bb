"""Self-contained HTML views that render with no network.

Jupyter front-ends (Notebook, JupyterLab, VS Code, Colab) all run ``<script>`` tags in an HTML
output, but a CDN script fails offline. Views built here carry everything they need inline:
``vendor_scripts("d3", "jquery")`` inlines the kit's copies of those libraries (see
``static/vendor/README.md``) without touching any ``d3``, ``$`` or AMD loader the page already has.
"""
from __future__ import annotations

import html as _html
from functools import lru_cache
from pathlib import Path

_STATIC = Path(__file__).resolve().parent / "static"
_VENDOR_FILES = {"d3": "vendor/d3.v5.min.js", "jquery": "vendor/jquery.min.js"}


@lru_cache(maxsize=None)
def static_text(relpath: str) -> str:
    """Text of a file shipped in ``interplab/static``."""
    return (_STATIC / relpath).read_text(encoding="utf-8")


def vendor_scripts(*libs: str) -> str:
    """A <script> that defines ``window.__interplabVendor.{d3,jquery}`` once per page.

    The libraries are evaluated with ``define``/``module``/``exports`` shadowed, so an AMD loader
    (require.js in classic Jupyter) does not capture them, and the page's own ``d3``/``$`` are restored.
    """
    parts = ["(function(){", "var V = window.__interplabVendor = window.__interplabVendor || {};"]
    for lib in libs:
        if lib not in _VENDOR_FILES:
            raise ValueError(f"unknown vendored library {lib!r}; have {sorted(_VENDOR_FILES)}")
        code = static_text(_VENDOR_FILES[lib]).replace("</script", "<\\/script")
        if lib == "d3":
            parts.append(
                "if (!V.d3) { var prev = window.d3; (function(){ var define, module, exports;\n"
                + code
                + "\n}).call(window); V.d3 = window.d3; window.d3 = prev; }"
            )
        else:
            parts.append(
                "if (!V.jquery) { (function(){ var define, module, exports;\n"
                + code
                + "\n}).call(window); V.jquery = window.jQuery.noConflict(true); }"
            )
    parts.append("})();")
    return '<script type="text/javascript">\n' + "\n".join(parts) + "\n</script>\n"


#: the kit's colour for an activation (orange); signed weights add a second colour for negative values
ORANGE = (255, 140, 0)


def shade(value: float, scale: float, pos=ORANGE, neg=None, alpha=(0.0, 1.0)) -> str:
    """CSS colour for ``value`` at ``scale`` (the value drawn at full strength): ``pos`` for positive values,
    ``neg`` for negative ones (None: one-sided, negatives get no colour), opacity from ``alpha[0]`` to
    ``alpha[1]`` as ``|value| / scale`` goes from 0 to 1 (clipped). A scale <= 0 shades nothing."""
    if neg is not None and value < 0:
        rgb, frac = neg, -value
    else:
        rgb, frac = pos, value
    frac = min(max(float(frac) / scale, 0.0), 1.0) if scale > 0 else 0.0
    lo, hi = alpha
    r, g, b = rgb
    return f"rgba({r},{g},{b},{lo + (hi - lo) * frac:.2f})"


def shaded_tokens(tokens, colours, titles, *, gaps=None, tail: str = "", sep: str = "", style: str = "",
                  styles=None) -> str:
    """HTML of ``tokens`` shaded one by one: the kit's one token-shading renderer (the atlas, SAE feature
    views, LM log-probs and text explanations all draw through it).

    Each token becomes ``<span title=TITLE style="background:COLOUR;STYLE">TOKEN</span>`` with its text and
    title escaped (a token that renders as nothing, e.g. an empty string, becomes a zero-width space so it
    can still be hovered); a colour of None leaves that token as plain escaped text, with no span.
    ``gaps[i]`` is unshaded text before token ``i`` (the source's own spacing), ``tail`` follows the last
    token, ``sep`` joins the pieces; ``style`` is extra CSS for every span, ``styles[i]`` for one.
    Whitespace is kept as given: put ``white-space:pre-wrap`` in ``style`` (or on the container) to show it.
    """
    out = []
    for i, (tok, colour, title) in enumerate(zip(tokens, colours, titles)):
        gap = _html.escape(gaps[i]) if gaps is not None else ""
        text = _html.escape(str(tok))
        if colour is None:
            out.append(gap + text)
            continue
        css = f"background:{colour};{style}{styles[i] if styles is not None else ''}".rstrip(";")
        out.append(f'{gap}<span title="{_html.escape(str(title))}" style="{css}">{text or "&#8203;"}</span>')
    return sep.join(out) + _html.escape(tail)


class HTMLView:
    """An HTML fragment that displays inline in notebooks and can be saved as a standalone page."""

    def __init__(self, body: str, title: str = "interplab view"):
        self.body = body
        self.title = title

    def _repr_html_(self) -> str:
        return self.body

    def page(self) -> str:
        """A complete HTML document (what ``save`` writes)."""
        return (
            "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>{_html.escape(self.title)}</title></head>\n<body>\n{self.body}\n</body></html>\n"
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.page(), encoding="utf-8")
        return path

    def __len__(self) -> int:
        return len(self.body)
