"""interplab.features: activation collection, probes with controls, the SAE, feature inspection."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interplab import features as F

TEXTS = [
    "The film was wonderful and I saw it 3 times in 1999.",
    "A dull, boring movie.",
    "I would give it 2 out of 10, sadly.",
    "Great acting <b>and</b> a moving story.",
]


# ----------------------------------------------------------------------------- collection


@pytest.fixture(scope="module")
def minilm_acts(minilm):
    model, tok = minilm
    return F.collect(model, tok, TEXTS, ["hidden.0", "hidden.-1"], batch_size=3, progress=False)


def test_collect_matches_a_direct_forward_in_the_original_order(minilm, minilm_acts):
    model, tok = minilm
    assert set(minilm_acts) == {"hidden.0", "hidden.6"}  # hidden.-1 resolves to the last layer
    acts = minilm_acts["hidden.6"]
    assert acts.values.dtype == np.float16 and isinstance(acts.values, np.memmap)
    assert acts.n_inputs == len(TEXTS) and acts.d == 384
    for t, text in enumerate(TEXTS):  # batches were length-sorted; rows must still follow TEXTS
        enc = tok(text, return_tensors="pt")
        with torch.no_grad():
            ref = model(**enc, output_hidden_states=True).hidden_states[6][0].numpy()
        lo, hi = acts.offsets[t], acts.offsets[t + 1]
        assert hi - lo == ref.shape[0]
        np.testing.assert_allclose(acts.values[lo:hi].astype(np.float32), ref, atol=2e-2, rtol=1e-2)
        assert acts.tokens[lo:hi] == tok.convert_ids_to_tokens(enc["input_ids"][0])
    assert acts.tokens[0] == "[CLS]" and acts.special[0] and not acts.special[1]
    assert acts.texts == TEXTS


def test_collect_reuses_the_cache_without_running_the_model(minilm, minilm_acts, monkeypatch):
    model, tok = minilm

    def boom(*a, **k):
        raise AssertionError("the model ran although the activations were cached")

    monkeypatch.setattr(model, "forward", boom)
    again = F.collect(model, tok, TEXTS, ["hidden.6"], batch_size=3, progress=False)
    assert again["hidden.6"].path == minilm_acts["hidden.6"].path
    with pytest.raises(AssertionError, match="model ran"):  # different inputs are a different key
        F.collect(model, tok, TEXTS[:2], ["hidden.6"], progress=False)
    reopened = F.load(minilm_acts["hidden.6"].path)
    np.testing.assert_array_equal(reopened.values, minilm_acts["hidden.6"].values)


def test_pooling_and_token_labels(minilm_acts):
    acts = minilm_acts["hidden.6"]
    pooled = acts.pooled()
    lo, hi = acts.offsets[1], acts.offsets[2]
    body = acts.values[lo:hi].astype(np.float32)[~acts.special[lo:hi]]
    np.testing.assert_allclose(pooled[1], body.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(acts.pooled("first")[0], acts.values[0].astype(np.float32))
    numbers = [tok for tok, y in zip(acts.tokens, acts.token_labels(F.is_number)) if y]
    assert numbers == ["3", "1999", "2", "10"]
    assert F.is_number("##5") and F.is_number("Ġ42") and not F.is_number("ten") and not F.is_number("##")


@pytest.mark.parametrize("texts, sites, err, msg", [
    ([], ["hidden.1"], ValueError, "texts is empty"),
    (["fine", "  "], ["hidden.1"], ValueError, "text 1 is empty"),
    ("just one string", ["hidden.1"], TypeError, "wrap it"),
    (["fine"], ["blocks.0.resid_pots"], ValueError, "unknown site.*nearest: blocks.0.hook_resid_post"),
    (["fine"], ["hidden.7"], ValueError, "out of range"),
    (["fine"], [], ValueError, "at least one site"),
])
def test_collect_bad_inputs_are_one_line_errors(minilm, texts, sites, err, msg):
    model, tok = minilm
    with pytest.raises(err, match=msg):
        F.collect(model, tok, texts, sites, progress=False)


@pytest.fixture(scope="module")
def toy_lm():
    from interplab.toy.model import ToyConfig, ToyTransformer

    cfg = ToyConfig(n_layers=1, d_model=32, n_heads=2, d_head=16, d_mlp=64, n_ctx=16, d_vocab=20, act_fn="gelu")
    return ToyTransformer(cfg).eval()


def test_collect_from_a_toy_model_by_hook_name(toy_lm):
    seqs = [[1, 2, 3, 4, 5], [6, 7, 8], [9, 1, 2, 3, 4, 5, 6]]
    acts = F.collect(toy_lm, None, seqs, ["blocks.0.resid_post"], progress=False)["blocks.0.resid_post"]
    for t, s in enumerate(seqs):
        _, cache = toy_lm.run_with_cache(torch.tensor([s]))
        np.testing.assert_allclose(acts.values[acts.offsets[t]:acts.offsets[t + 1]].astype(np.float32),
                                   cache["blocks.0.resid_post"][0].numpy(), atol=2e-2, rtol=1e-2)
    with pytest.raises(ValueError, match="unknown site 'blocks.9.nothing'"):
        F.collect(toy_lm, None, seqs, ["blocks.9.nothing"], progress=False)
    with pytest.raises(ValueError, match="out of range"):
        F.collect(toy_lm, None, seqs, ["blocks.9.resid_post"], progress=False)


def test_collect_any_site_on_hf_models_matches_hidden_states_and_the_site_layer(minilm, minilm_acts):
    from interplab import sites

    model, tok = minilm
    acts = F.collect(model, tok, TEXTS, ["blocks.2.hook_resid_post", "blocks.2.mlp.hook_post", "hidden.3"],
                     batch_size=3, progress=False)
    assert acts["blocks.2.hook_resid_post"].d == 384 and acts["blocks.2.mlp.hook_post"].d == 1536
    enc = tok(TEXTS[1], return_tensors="pt")
    with torch.no_grad():
        hs = model(**enc, output_hidden_states=True).hidden_states
    _, cache = sites.wrap(model, tok).run_with_cache(enc["input_ids"], names=["blocks.2.mlp.hook_post"])
    rows = slice(acts["hidden.3"].offsets[1], acts["hidden.3"].offsets[2])
    for name in ("blocks.2.hook_resid_post", "hidden.3"):  # the same site under two names: hidden_states[3]
        np.testing.assert_allclose(acts[name].values[rows].astype(np.float32), hs[3][0].numpy(), atol=2e-2, rtol=1e-2)
    np.testing.assert_allclose(acts["blocks.2.mlp.hook_post"].values[rows].astype(np.float32),
                               cache["blocks.2.mlp.hook_post"][0].numpy(), atol=2e-2, rtol=1e-2)
    np.testing.assert_allclose(minilm_acts["hidden.0"].values[rows].astype(np.float32), hs[0][0].numpy(), atol=2e-2)


# ----------------------------------------------------------------------------- probes


def _layered_data(n=300, d=20, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    direction = rng.normal(size=d)
    return y, {f"layer{i}": rng.normal(size=(n, d)) + strength * np.outer(2 * y - 1, direction)
               for i, strength in enumerate([0.0, 0.15, 1.0])}


def test_probe_layers_finds_the_informative_layer_and_controls_stay_at_chance():
    y, X = _layered_data()
    table = F.probe_layers(X, y, progress=False)
    assert list(table["site"]) == ["layer0", "layer1", "layer2"]
    assert table["score"].iloc[2] > 0.95
    assert 0.35 < table["score"].iloc[0] < 0.65  # no signal: chance
    assert (table["control_score"] < 0.65).all()
    assert int(table["selectivity"].idxmax()) == 2
    assert table.attrs["control"] == "shuffle"
    ax = F.plot_probe_accuracy(table)
    assert len(ax.lines) >= 2


def test_type_control_gives_each_token_type_one_label_with_matching_base_rate():
    rng = np.random.default_rng(0)
    types = rng.integers(0, 200, 5000)
    y = (rng.random(5000) < 0.3).astype(int)
    ctrl = F.control_labels(y, "type", types=types, seed=1)
    for t in np.unique(types)[:50]:
        assert len(set(ctrl[types == t])) == 1
    assert abs(ctrl.mean() - 0.3) < 0.1


def test_regression_probe_scores_r2():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    target = X @ np.array([1.0, -2.0, 0.0, 0.5, 0.0]) + 0.1 * rng.normal(size=200)
    assert F.probe(X, target, kind="linear").score > 0.95


@pytest.mark.parametrize("X, y, kw, msg", [
    (np.zeros((10, 3)), np.ones(10), {}, "single class"),
    (np.zeros((10, 3)), np.r_[np.zeros(5), np.ones(4)], {}, "10 examples but 9 labels"),
    (np.full((10, 3), np.nan), np.r_[np.zeros(5), np.ones(5)], {}, "NaN"),
    (np.zeros(10), np.r_[np.zeros(5), np.ones(5)], {}, "2-D"),
    (np.zeros((10, 3)), np.r_[np.zeros(5), np.ones(5)], {"kind": "svm"}, "kind must be"),
])
def test_probe_bad_inputs(X, y, kw, msg):
    with pytest.raises(ValueError, match=msg):
        F.probe(X, y, **kw)


def test_control_bad_inputs():
    with pytest.raises(ValueError, match="needs types="):
        F.control_labels([0, 1], "type")
    with pytest.raises(ValueError, match="control must be"):
        F.control_labels([0, 1], "random-ish")


# ----------------------------------------------------------------------------- SAE


@pytest.fixture(scope="module")
def toy_tms():
    toy = F.toy_superposition(n_features=32, d_hidden=16, p_active=0.04, steps=1500, batch_size=512, progress=False)
    h, x = toy.sample(20_000)
    return toy, h, x


def test_toy_model_activations_are_sparse_combinations_of_its_true_features(toy_tms):
    toy, h, x = toy_tms
    assert toy.dropped <= 2 and toy.true_features.shape[1] == 16
    np.testing.assert_allclose(np.linalg.norm(toy.true_features, axis=1), 1.0, atol=1e-5)
    cos = toy.true_features @ toy.true_features.T - np.eye(len(toy.true_features))
    assert np.abs(cos).max() > 0.2  # more features than dimensions: they cannot all be orthogonal
    np.testing.assert_allclose(h, x @ toy.W.T, atol=1e-5)


@pytest.mark.parametrize("kw", [dict(activation="topk", k=3, steps=1200), dict(activation="relu", l1_coeff=0.3, lr=3e-3, steps=1500)])
def test_sae_recovers_the_true_features(toy_tms, kw):
    toy, h, _ = toy_tms
    sae, log = F.train_sae(h, d_sae=64, progress=False, seed=0, **kw)
    best = F.match_features(toy.true_features, sae.decoder.detach().numpy())
    assert (best >= 0.9).mean() >= 0.8, np.sort(best)
    m = F.sae_metrics(sae, h)
    assert m["fve"] > 0.8 and m["l0"] <= 8
    assert list(log.columns[:5]) == ["step", "seconds", "loss", "fve", "l0"]
    np.testing.assert_allclose(sae.decoder.norm(dim=1).detach().numpy(), 1.0, atol=1e-4)


def test_sae_metrics_against_numpy(toy_tms):
    _, h, _ = toy_tms
    sae = F.SAE(16, 40, activation="relu", seed=3)
    m = F.sae_metrics(sae, h[:500])
    with torch.no_grad():
        x_hat, f = sae(torch.as_tensor(h[:500]))
    x_hat, f = x_hat.numpy(), f.numpy()
    fve = 1 - ((h[:500] - x_hat) ** 2).sum() / ((h[:500] - h[:500].mean(0)) ** 2).sum()
    assert m["fve"] == pytest.approx(fve, rel=1e-4, abs=1e-5)
    assert m["l0"] == pytest.approx((f > 0).sum(1).mean())
    assert m["dead_fraction"] == pytest.approx((~(f > 0).any(0)).mean())


def test_tied_decoder_and_save_load(toy_tms, tmp_path):
    _, h, _ = toy_tms
    sae, _ = F.train_sae(h, d_sae=32, tied=True, k=4, steps=200, progress=False)
    assert sae.W_dec is None
    torch.testing.assert_close(sae.decoder, sae.W_enc.T)
    sae.save(tmp_path / "sae.safetensors")
    again = F.SAE.load(tmp_path / "sae.safetensors")
    x = torch.as_tensor(h[:50])
    torch.testing.assert_close(again(x)[0], sae(x)[0])
    assert again.config() == sae.config()


def test_dead_features_are_resampled(toy_tms):
    _, h, _ = toy_tms
    sae = F.SAE(16, 48, activation="relu", l1_coeff=0.5)
    with torch.no_grad():
        sae.b_enc[:24] = -1e3  # half the features can never fire
    sae.scale.fill_(float(np.sqrt(16 / ((h - h.mean(0)) ** 2).sum(1).mean())))
    _, log = F.train_sae(h, sae=sae, steps=300, resample_every=100, dead_window=100, eval_every=100, progress=False)
    assert log["resampled"].iloc[-1] >= 24
    assert F.sae_metrics(sae, h)["dead_fraction"] < 0.25
    _, log_off = F.train_sae(h, sae=F.SAE(16, 48, activation="relu"), steps=100, resample_every=0, progress=False)
    assert log_off["resampled"].iloc[-1] == 0


@pytest.mark.parametrize("call, err, msg", [
    (lambda: F.SAE(8, 16, activation="gelu"), ValueError, "activation must be"),
    (lambda: F.SAE(8, 16, k=0), ValueError, "k must be"),
    (lambda: F.train_sae(np.zeros(10), steps=1, progress=False), ValueError, "2-D"),
    (lambda: F.train_sae(np.full((4, 3), np.nan), steps=1, progress=False), ValueError, "NaN"),
    (lambda: F.train_sae(np.zeros((4, 3)), sae=F.SAE(5, 8), steps=1, progress=False), ValueError, "d_in=5"),
    (lambda: F.match_features(np.zeros((2, 3)), np.zeros((2, 4))), ValueError, "same width"),
])
def test_sae_bad_inputs(call, err, msg):
    with pytest.raises(err, match=msg):
        call()


def test_spliced_loss_on_a_toy_lm(toy_lm):
    seqs = torch.randint(0, 20, (64, 12), generator=torch.Generator().manual_seed(0))
    acts = F.collect(toy_lm, None, seqs.tolist(), ["blocks.0.resid_post"], progress=False)["blocks.0.resid_post"]
    sae, _ = F.train_sae(acts, d_sae=128, k=16, steps=600, progress=False)
    out = F.spliced_loss(toy_lm, seqs, "blocks.0.resid_post", sae)
    logits = toy_lm(seqs)
    manual = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 20), seqs[:, 1:].reshape(-1)).item()
    assert out["clean"] == pytest.approx(manual, rel=1e-5)
    assert abs(out["spliced"] - out["clean"]) < abs(out["zero_ablated"] - out["clean"])
    with pytest.raises(TypeError, match="cannot read sites"):
        F.spliced_loss(torch.nn.Linear(2, 2), seqs, "x", sae)
    with pytest.raises(ValueError, match="unknown site"):
        F.spliced_loss(toy_lm, seqs, "blocks.0.resid_pots", sae)


def test_spliced_loss_on_smollm2(shared_data, minilm):
    """An SAE trained on smollm2's residual stream (real reviews) keeps more of the loss than zero-ablation."""
    import csv

    from interplab import sites

    sm = sites.wrap("smollm2")
    reviews = [r["text"] for r in csv.DictReader(open(shared_data / "imdb" / "reviews-real.csv", encoding="utf-8"))]
    site = "blocks.12.hook_resid_post"
    acts = F.collect(sm.model, sm.tokenizer, reviews[:60], [site], max_length=32, progress=False)[site]
    sae, _ = F.train_sae(acts.array(), d_sae=576, k=32, steps=300, progress=False)
    held_out = torch.tensor([ids[:16] for ids in sm.tokenizer(reviews[200:208])["input_ids"] if len(ids) >= 16])
    out = F.spliced_loss(sm.model, held_out, site, sae)
    out_alias = F.spliced_loss(sm.model, held_out, "hidden.13", sae)  # hidden_states[13] is the same site
    assert out_alias["spliced"] == pytest.approx(out["spliced"], rel=1e-4)
    assert out["clean"] < out["spliced"] < out["zero_ablated"]
    print("smollm2 spliced loss", {k: round(v, 3) for k, v in out.items()})
    assert out["loss_recovered"] > 0.5, out
    with pytest.raises(ValueError, match="encoder"):
        F.spliced_loss(minilm[0], held_out, site, sae)


# ----------------------------------------------------------------------------- inspection


def test_top_examples_and_feature_view(minilm_acts, tmp_path):
    acts = minilm_acts["hidden.6"]
    sae, _ = F.train_sae(acts, d_sae=64, k=4, steps=50, progress=False)
    fa = F.feature_activations(sae, acts, exclude_special=True)
    f = int(fa.max(0).argmax())
    top = F.top_examples(sae, acts, f, k=3, f_acts=fa)
    assert list(top["activation"]) == sorted(top["activation"], reverse=True)
    assert top["activation"].iloc[0] == pytest.approx(fa[:, f].max())
    assert f"[{top['token'].iloc[0]}]" in top["context"].iloc[0]
    view = F.feature_view(sae, acts, [f, 0], k=3, f_acts=fa)
    assert view.body.count("class='feature'") == 2
    in_html_text = slice(acts.offsets[3], acts.offsets[4])  # the text with "<b>and</b>" in it
    only = np.zeros_like(fa)
    only[in_html_text] = fa[in_html_text]
    g = int(only.max(0).argmax())
    whole = F.feature_view(sae, acts, [g], k=1, window=100, f_acts=only).body
    assert "&lt;" in whole and "<b>" not in whole.replace(f"<b>feature {g}</b>", "")  # data text is escaped
    assert "<script" not in view.body
    page = view.save(tmp_path / "features.html")
    assert page.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(IndexError, match="out of range"):
        F.feature_view(sae, acts, [64])
    ax = F.density_histogram(sae, acts, f_acts=fa)
    assert "64 features" in ax.get_title()


@pytest.mark.browser
def test_feature_view_renders_offline(minilm_acts, open_offline, tmp_path):
    acts = minilm_acts["hidden.6"]
    sae, _ = F.train_sae(acts, d_sae=32, k=4, steps=20, progress=False)
    page = open_offline(F.feature_view(sae, acts, [0, 1, 2]).save(tmp_path / "v.html"))
    assert page.page.locator(".feature").count() == 3
    assert not page.errors and not page.requests


def test_logit_effect_is_the_decoder_direction_through_the_unembedding(toy_lm, minilm):
    sae = F.SAE(toy_lm.cfg.d_model, 16, seed=1)

    class Tok:
        def convert_ids_to_tokens(self, i):
            return f"t{i}"

    table = F.logit_effect(sae, 5, toy_lm, Tok(), k=3)
    d = sae.decoder[5].detach()
    if toy_lm.ln_final is not None:
        d = d * toy_lm.ln_final.weight.detach()
    effect = (d @ toy_lm.W_U.detach()).numpy()
    assert table["promoted"].iloc[0] == f"t{effect.argmax()}"
    assert table["suppressed"].iloc[0] == f"t{effect.argmin()}"
    assert table["promoted_logit"].iloc[0] == pytest.approx(effect.max(), rel=1e-5)
    with pytest.raises(TypeError, match="no unembedding"):
        F.logit_effect(F.SAE(384, 8), 0, minilm[0], minilm[1])
    with pytest.raises(ValueError, match="dims"):
        F.logit_effect(F.SAE(7, 8), 0, toy_lm, Tok())


def test_an_interrupted_collection_leaves_no_cache(minilm, monkeypatch):
    model, tok = minilm
    calls = {"n": 0}
    forward = model.forward

    def fail_second_batch(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return forward(*a, **k)

    monkeypatch.setattr(model, "forward", fail_second_batch)
    texts = ["one short text", "and another one", "a third"]
    with pytest.raises(KeyboardInterrupt):
        F.collect(model, tok, texts, ["hidden.2"], batch_size=2, progress=False)
    monkeypatch.setattr(model, "forward", forward)
    root = F.collect(model, tok, texts, ["hidden.2"], batch_size=2, progress=False)["hidden.2"].path.parent
    assert not [p for p in root.iterdir() if ".tmp" in p.name]


def test_every_exported_name_is_the_function_or_class_not_a_submodule():
    import types

    for name in reversed(F.__all__):  # any access order
        assert not isinstance(getattr(F, name), types.ModuleType), name
