"""interplab.atlas: activations, layout, grid atlas and its separation check, neuron top-k, feature
visualization, MiniLM token activations and the offline HTML views."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interplab import atlas, graph


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    m = graph.build_mlp(64, 50, 10)
    m.input_scale = 16.0
    return m


def _blobs(n_per=40, centres=4, dim=20, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(0, 6, size=(centres, dim))
    acts = np.concatenate([c[i] + rng.normal(0, 1, size=(n_per, dim)) for i in range(centres)])
    return acts, np.repeat(np.arange(centres), n_per)


def test_mlp_activations_are_the_hidden_relu_outputs(mlp):
    imgs = np.random.default_rng(0).integers(0, 17, size=(7, 8, 8)).astype(np.float32)
    acts = atlas.mlp_activations(mlp, imgs)
    x = torch.from_numpy(imgs.reshape(7, 64) / 16.0)
    with torch.no_grad():
        expected = torch.relu(mlp.fc1(x)).numpy()
    np.testing.assert_allclose(acts, expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(IndexError, match="hidden layer"):
        atlas.mlp_activations(mlp, imgs, layer=2)
    with pytest.raises(graph.InputShapeError, match="takes 8x8"):
        atlas.mlp_activations(mlp, np.zeros((3, 28, 28)))


def test_grid_atlas_assigns_every_example_to_the_cell_containing_it():
    xy = np.random.default_rng(1).uniform(-3, 5, size=(200, 2))
    a = atlas.grid_atlas(xy, grid=5)
    assert a.cells["count"].sum() == 200 and (a.cells["count"] > 0).all()
    lo, hi = xy.min(0), xy.max(0)
    for c, members in zip(a.cells["cell"], a.cells["members"]):
        row, col = divmod(int(c), 5)
        x0, x1 = lo[0] + (hi[0] - lo[0]) * np.array([col, col + 1]) / 5
        y1, y0 = hi[1] - (hi[1] - lo[1]) * np.array([row, row + 1]) / 5
        p = xy[members]
        assert ((p[:, 0] >= x0 - 1e-9) & (p[:, 0] <= x1 + 1e-9) & (p[:, 1] >= y0 - 1e-9) & (p[:, 1] <= y1 + 1e-9)).all()
    with pytest.raises(ValueError, match="grid"):
        atlas.grid_atlas(xy, grid=0)


def test_cell_separation_holds_for_a_faithful_layout_and_fails_for_a_random_one():
    acts, _ = _blobs()
    good = atlas.grid_atlas(atlas.layout(acts, method="tsne", seed=0), grid=6)
    sep = atlas.cell_separation(good, acts)
    assert sep["nearer_own"].all()
    rng = np.random.default_rng(0)
    bad = atlas.grid_atlas(rng.uniform(size=(len(acts), 2)), grid=6)  # positions unrelated to activations
    bad_sep = atlas.cell_separation(bad, acts)
    assert bad_sep["nearer_own"].mean() < 0.75  # leave-one-out: a random grouping passes only by chance
    # the most typical member is the one nearest its cell's mean
    typ = atlas.typical_members(good, acts)
    c, m = int(good.cells["cell"].iloc[0]), good.cells["members"].iloc[0]
    d = np.linalg.norm(acts[m] - acts[m].mean(0), axis=1)
    assert typ[c] == m[np.argmin(d)]


def test_layout_methods_and_errors():
    acts, labels = _blobs(n_per=15, centres=3)
    for method in ("pca", "tsne"):
        xy = atlas.layout(acts, method=method)
        assert xy.shape == (45, 2) and np.isfinite(xy).all()
    with pytest.raises(ValueError, match="unknown layout method"):
        atlas.layout(acts, method="mds")
    with pytest.raises(ValueError, match="N >= 3"):
        atlas.layout(acts[:2])


def test_top_k_and_selective_units():
    rng = np.random.default_rng(2)
    acts = rng.uniform(0, 1, size=(300, 6))
    acts[rng.choice(300, 10, replace=False), 4] += 5.0  # unit 4 fires hard on ten examples
    acts[17, 2] += 20.0  # unit 2 on a single one
    top = atlas.top_k(acts, 4, 10)
    assert set(top) == set(np.argsort(acts[:, 4])[-10:])
    assert (np.diff(acts[top, 4]) <= 0).all()
    assert atlas.selective_units(acts, k=1)[0] == 4
    with pytest.raises(IndexError, match="out of range"):
        atlas.top_k(acts, 6)


def test_feature_visualization_beats_real_inputs_and_leaves_the_model_alone(mlp):
    before = [p.detach().clone() for p in mlp.parameters()]
    imgs = np.random.default_rng(3).integers(0, 17, size=(500, 8, 8)).astype(np.float32)
    acts = atlas.mlp_activations(mlp, imgs)
    unit = int(np.argmax(acts.max(0)))
    fv = atlas.visualize_neuron(mlp, unit, steps=150)
    assert fv.activation > acts[:, unit].max()
    assert fv.image.shape == (8, 8) and fv.image.min() >= 0 and fv.image.max() <= 16
    assert fv.history[-1] > fv.history[0]
    # the reported activation is the model's, on the returned image
    assert atlas.mlp_activations(mlp, [fv.image])[0, unit] == pytest.approx(fv.activation, rel=1e-4, abs=1e-4)
    out = atlas.visualize_neuron(mlp, 3, layer="output", steps=100, l2=0, tv=0)
    assert out.activation > graph.predict(mlp, imgs)[:, 3].max()
    for a, b in zip(before, mlp.parameters()):
        assert torch.equal(a, b) and b.requires_grad
    with pytest.raises(IndexError, match="50 units"):
        atlas.visualize_neuron(mlp, 50)
    with pytest.raises(ValueError, match="hidden"):
        atlas.visualize_neuron(mlp, 0, layer="conv")


def test_split_sentences():
    texts = ["The film was long. Too long!<br /><br />But fine?", "The film was long. Short."]
    assert atlas.split_sentences(texts, min_chars=5) == ["The film was long.", "Too long!", "But fine?", "Short."]


SENTENCES = ["The cat sat on the mat.", "I told my mother a lie about the money.",
             "A wonderful, moving film with great acting.", "<b>Bold</b> claims & no evidence."]


@pytest.fixture(scope="module")
def text_acts(minilm):
    model, tok = minilm
    return atlas.text_activations(model, tok, SENTENCES, layer=3, progress=False)


def test_text_activations_shapes_tokens_and_batch_invariance(minilm, text_acts):
    model, tok = minilm
    ta = text_acts
    assert ta.pooled.shape == (4, model.config.hidden_size)
    for s, toks, a, offs in zip(SENTENCES, ta.tokens, ta.neurons, ta.offsets):
        assert toks == tok.tokenize(s)  # word pieces, no [CLS]/[SEP]/[PAD]
        assert a.shape == (len(toks), model.config.intermediate_size)
        # each token's character span in the sentence holds that token (what the highlight view shows)
        assert [s[i:j].lower() for i, j in offs] == [t.removeprefix("##") for t in toks]
    # a sentence's activations do not depend on what it was batched (and padded) with
    alone = atlas.text_activations(model, tok, [SENTENCES[1]], layer=3, progress=False)
    np.testing.assert_allclose(alone.neurons[0], ta.neurons[1], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(alone.pooled[0], ta.pooled[1], rtol=1e-4, atol=1e-4)
    # and match the layer's hidden states directly (pooled = mean over the sentence's word pieces)
    enc = tok(SENTENCES[0], return_tensors="pt")
    with torch.no_grad():
        hs = model(**enc, output_hidden_states=True).hidden_states[4][0, 1:-1]
    np.testing.assert_allclose(ta.pooled[0], hs.mean(0).numpy(), rtol=1e-4, atol=1e-5)
    assert not model.encoder.layer[3].intermediate._forward_hooks
    with pytest.raises(IndexError, match="6 layers"):
        atlas.text_activations(model, tok, SENTENCES, layer=6, progress=False)


def test_text_views_are_escaped_and_need_no_scripts(text_acts):
    ta = text_acts
    n = int(atlas.selective_units(ta.max_per_sentence(), k=1)[0])
    top = atlas.top_tokens(ta, n, k=3)
    assert top["activation"].iloc[0] == pytest.approx(ta.max_per_sentence()[:, n].max())
    view = atlas.neuron_view(ta, n, k=4)
    body = view._repr_html_()
    assert "<script" not in body and "&lt;" in body and "<b>Bold" not in body
    grid = atlas.grid_atlas(atlas.layout(ta.pooled, method="pca"), grid=2)
    page = atlas.text_atlas_view(grid, ta)._repr_html_()
    typical = atlas.typical_members(grid, ta.pooled)
    assert "<script" not in page
    import html

    for i in typical.values():
        assert html.escape(ta.sentences[i][:40]) in page


@pytest.mark.browser
def test_highlight_view_renders_offline(text_acts, open_offline, tmp_path):
    n = int(atlas.selective_units(text_acts.max_per_sentence(), k=1)[0])
    path = atlas.neuron_view(text_acts, n, k=4).save(tmp_path / "neuron.html")
    page = open_offline(path)
    assert not page.errors and not page.requests
    top = atlas.top_k(text_acts.max_per_sentence(), n, 4)
    spans = page.page.locator(".interplab-neuron span")
    assert spans.count() == sum(len(text_acts.tokens[i]) for i in top)
    shown = page.page.locator(".interplab-neuron").inner_text()
    for i in top:  # the sentences appear as written (case, spacing, markup-like text escaped)
        assert text_acts.sentences[i] in shown


def test_nearest_centre_and_layout_check_separate_a_faithful_layout_from_random_ones():
    acts, _ = _blobs()
    xy = atlas.layout(acts, method="pca", seed=0)
    good = atlas.nearest_centre(atlas.grid_atlas(xy, grid=6), acts)
    check = atlas.layout_check(xy, acts, grid=6, n_random=3, seed=0)
    assert list(check["layout"]) == ["this layout", "random 1", "random 2", "random 3"]
    assert check["nearest_centre"][0] == pytest.approx(good)
    assert good > 0.8 and check["nearest_centre"][1:].max() < 0.3  # every other cell competes: random ~ 1/cells
    # the weak criterion does not separate them as clearly: random layouts still pass it for many cells
    assert check["nearer_own"][1:].mean() > 0.3
    with pytest.raises(ValueError, match="2\\+ examples"):
        atlas.nearest_centre(atlas.grid_atlas(xy[:3], grid=50), acts[:3])
