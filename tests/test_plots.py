"""Shared figure helpers: annotations readable on every cell colour."""
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from interplab import plots


@pytest.mark.parametrize("cmap", ["magma", "viridis", "RdBu_r"])
def test_heatmap_numbers_contrast_with_their_cell(cmap):
    scores = pd.DataFrame(np.linspace(0, 1, 24).reshape(4, 6))
    ax = plots.score_heatmap(scores, cmap=cmap, vmin=0, vmax=1)
    im = ax.images[0]
    texts = ax.texts
    assert len(texts) == 24
    for t in texts:
        r, g, b, _ = im.cmap(im.norm(float(t.get_text())))
        lum = 0.299 * r + 0.587 * g + 0.114 * b
        text_lum = 1.0 if t.get_color() == "white" else 0.0
        assert abs(text_lum - lum) >= 0.3, (cmap, t.get_text(), t.get_color(), lum)
    # magma's dark end gets white text, its bright end black (the old rule put black on dark cells above the mean)
    if cmap == "magma":
        assert texts[0].get_color() == "white" and texts[-1].get_color() == "black"
    matplotlib.pyplot.close("all")
