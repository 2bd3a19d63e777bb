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


def test_shap_waterfall_labels_do_not_overlap():
    """SHAP's own waterfall writes a short bar's value over the feature names (row 0 of this split); the kit's does not."""
    import matplotlib.pyplot as plt
    import shap
    from sklearn import datasets
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.model_selection import train_test_split

    from interplab import explain

    X, y = datasets.load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.25, random_state=0)
    model = GradientBoostingRegressor(n_estimators=150, max_depth=2, learning_rate=0.05, random_state=0).fit(X_train, y_train)
    sv = explain.shap_values(model, X_train, X_test.iloc[:10], seed=0)
    shap.plots.waterfall(sv[0], max_display=8, show=False)
    assert explain.overlapping_texts(plt.gcf()), "the detector no longer sees SHAP's overlap: the test below would prove nothing"
    plt.close("all")
    for row in range(10):
        fig = explain.plot_waterfall(sv[row], max_display=8, title=f"row {row}")
        assert explain.overlapping_texts(fig) == [], row
        assert fig.axes[0].get_title() == f"row {row}"
        plt.close("all")


def test_axes_draws_on_the_given_axes_or_a_new_figure_of_that_size():
    import matplotlib.pyplot as plt

    fig, given = plt.subplots()
    assert plots.axes(given, (3, 2)) is given
    new = plots.axes(None, (3, 2))
    assert new is not given and tuple(new.figure.get_size_inches()) == (3.0, 2.0)
    plt.close("all")


def test_overlapping_texts_finds_labels_drawn_over_each_other_and_only_those():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.text(0.5, 0.5, "first label")
    ax.text(0.52, 0.5, "second label")   # a few pixels to the right: overlaps "first label"
    ax.text(0.1, 0.9, "far away")
    ax.set_xticks([0.02], ["tick"])
    ax.text(0.02, -0.06, "on the tick")  # drawn where the x tick label is
    pairs = plots.overlapping_texts(fig)
    assert ("first label", "second label") in pairs and ("on the tick", "tick") in pairs
    assert not [p for p in pairs if "far away" in p]
    ax.texts[1].set_position((0.5, 0.2))
    ax.texts[3].set_visible(False)
    assert plots.overlapping_texts(fig) == []
    plt.close("all")
