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
