"""One result type for every explanation method: features, weights, and where they sit in the text.

LIME, ELI5 and SHAP each return their own objects, with their own notion of a feature (a word
type, a vectorizer n-gram, a sub-word token). :class:`Attribution` holds any of them as
``features`` + ``weights`` (+ character ``spans`` for text), and :meth:`Attribution.by_word` maps
all of them onto the same unit (lower-cased words) so methods can be compared.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class Attribution:
    """Per-feature weights for one prediction, as one explanation method sees it.

    ``weights[i]`` is feature ``features[i]``'s push towards class ``label`` (positive = more
    ``label``). ``spans[i]`` lists the (start, end) character ranges of the feature in ``text``
    (empty for tabular data). ``score`` is the method's own local-fidelity measure where it has one
    (LIME: R² of its local linear model; ELI5 TextExplainer: its ``metrics_['score']``).
    """

    method: str
    features: list[str]
    weights: np.ndarray
    label: int
    label_name: str = ""
    text: str | None = None
    spans: list[list[tuple[int, int]]] = field(default_factory=list)
    proba: float | None = None
    intercept: float | None = None
    score: float | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=float).reshape(-1)
        self.features = [str(f) for f in self.features]
        if len(self.features) != len(self.weights):
            raise ValueError(f"{len(self.features)} features but {len(self.weights)} weights")
        if self.spans and len(self.spans) != len(self.features):
            raise ValueError(f"{len(self.features)} features but {len(self.spans)} span lists")

    def __len__(self) -> int:
        return len(self.features)

    def to_frame(self):
        """DataFrame with one row per feature: feature, weight, |weight| rank (1 = strongest)."""
        import pandas as pd

        df = pd.DataFrame({"feature": self.features, "weight": self.weights})
        df["rank"] = df["weight"].abs().rank(ascending=False, method="first").astype(int)
        return df.sort_values("rank").reset_index(drop=True)

    def top(self, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` features with the largest |weight|, as (feature, weight) pairs."""
        order = np.argsort(-np.abs(self.weights), kind="stable")[:k]
        return [(self.features[i], float(self.weights[i])) for i in order]

    def by_word(self):
        """Weights per lower-cased word of the text (a pandas Series in order of first appearance).

        A feature's weight goes to the words its spans cover, split evenly when it covers several
        (an ELI5 bigram, a SHAP token group); a word that occurs twice gets the sum of its features.
        For tabular attributions this is just ``features`` -> ``weights``.
        """
        import pandas as pd

        if self.text is None or not self.spans:
            return pd.Series(self.weights, index=self.features, name=self.method, dtype=float).groupby(level=0, sort=False).sum()
        words = [(m.start(), m.end(), m.group().lower()) for m in WORD.finditer(self.text)]
        starts = np.array([w[0] for w in words])
        ends = np.array([w[1] for w in words])
        order = list(dict.fromkeys(w[2] for w in words))
        total = dict.fromkeys(order, 0.0)
        for spans, w in zip(self.spans, self.weights):
            covered = []
            for a, b in spans:
                hit = np.nonzero((starts < b) & (ends > a))[0]
                covered.extend(words[i][2] for i in hit)
            covered = list(dict.fromkeys(covered))
            for word in covered:
                total[word] += w / len(covered)
        return pd.Series(total, name=self.method, dtype=float)

    # rendering lives in render.py; these are the notebook-facing shortcuts
    def html(self, k: int = 10):
        """An :class:`interplab.html.HTMLView`: highlighted text plus the top-``k`` weights as bars."""
        from .render import attribution_html

        return attribution_html(self, k=k)

    def _repr_html_(self) -> str:
        return self.html()._repr_html_()

    def plot(self, k: int = 10, ax=None):
        """Static matplotlib bar chart of the top-``k`` weights."""
        from .render import plot_weights

        return plot_weights(self, k=k, ax=ax)

    def plot_text(self, ax=None, width: int = 90):
        """Static matplotlib figure of the text with each word coloured by its weight."""
        from .render import plot_text

        return plot_text(self, ax=ax, width=width)

    def __repr__(self) -> str:
        top = ", ".join(f"{f}={w:+.3f}" for f, w in self.top(3))
        extra = f", score={self.score:.3f}" if self.score is not None else ""
        return f"Attribution({self.method!r}, label={self.label_name or self.label!r}, {len(self)} features: {top}{extra})"
