"""A DataFrame that says it is a sample wherever it is shown (repr, notebook HTML, derived frames)."""
from __future__ import annotations

import html as _html

import pandas as pd

_DEFAULT = "SAMPLE: project-written rows in the real schema, not the real dataset"


class SampleFrame(pd.DataFrame):
    """``pandas.DataFrame`` whose text and HTML views start with a one-line SAMPLE banner.

    Frames derived from it (``head``, filters, ``groupby``...) keep the banner, because anything
    computed from a sample is still a sample. ``pd.DataFrame(df)`` gives a plain frame back.
    """

    @property
    def _constructor(self):
        return SampleFrame

    def _banner(self) -> str:
        return str(self.attrs.get("banner") or _DEFAULT)

    def __repr__(self) -> str:
        return f"[{self._banner()}]\n" + super().__repr__()

    def _repr_html_(self):
        body = super()._repr_html_()
        if body is None:
            return None
        banner = _html.escape(self._banner())
        return (f'<div style="color:#8a4b00;font-weight:bold;margin-bottom:4px">&#9888; {banner}</div>' + body)
