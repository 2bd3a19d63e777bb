"""interplab.interventions: activation / attribution patching, steering and the logit lens, on the
kit's toy transformers (exact properties) and on the embedded smollm2 (measured behaviour)."""
import numpy as np
import pytest
import torch

from interplab import interventions as iv
from interplab import sites
from interplab.toy.model import ToyConfig, ToyTransformer


def _toy(**kw):
    cfg = dict(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, act_fn="gelu", n_ctx=16, d_vocab=50, seed=0)
    cfg.update(kw)
    return sites.wrap(ToyTransformer(ToyConfig(**cfg)).eval())


def _toy_pairs(sm, n=3, T=7, at=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, 50, (n, T), generator=g)
    corrupt = clean.clone()
    corrupt[:, at] = (clean[:, at] + 1 + torch.randint(0, 48, (n,), generator=g)) % 50
    return iv.prompt_pairs(sm, clean, corrupt, list(range(1, n + 1)), list(range(10, 10 + n)))


def _one_patch(sm, pairs, name, pos, head):
    """Reference: one plain forward per pair with one replacement, written independently of the module."""
    _, cache = sm.run_with_cache(pairs.clean, names=[name])
    out = []
    for p in range(pairs.n):
        def hook(act, hook):
            act = act.clone()
            src = cache[name][p]
            if head is None:
                act[0, pos] = src[pos]
            elif pos is None:
                act[0, :, head] = src[:, head]
            else:
                act[0, pos, head] = src[pos, head]
            return act

        with torch.no_grad():
            last = sm.run_with_hooks(pairs.corrupt[p:p + 1], fwd_hooks=[(name, hook)])[0, -1]
        d = float(last[pairs.answers[p]] - last[pairs.wrongs[p]])
        out.append((d - pairs.corrupt_diff[p]) / (pairs.clean_diff[p] - pairs.corrupt_diff[p]))
    return np.array(out)


# --- toys: exact properties ----------------------------------------------------------------------
@pytest.mark.parametrize("site", ["resid_pre", "attn_out", "mlp_out"])
def test_batched_patching_equals_one_forward_per_patch(site):
    sm = _toy()
    pairs = _toy_pairs(sm)
    res = iv.patch(sm, pairs, site, batch_size=5, progress=False)  # chunks that split layers and pairs
    assert res.values.shape == (3, 2, 7) and res.dims == ("layer", "position")
    for layer, pos in [(0, 2), (0, 6), (1, 3), (1, 6)]:
        ref = _one_patch(sm, pairs, sites.name(site, layer), pos, None)
        np.testing.assert_allclose(res.values[:, layer, pos], ref, atol=1e-5)


def test_head_patching_all_positions_and_per_position():
    sm = _toy()
    pairs = _toy_pairs(sm)
    allpos = iv.patch_heads(sm, pairs, progress=False)
    perpos = iv.patch_heads(sm, pairs, per_position=True, batch_size=7, progress=False)
    assert allpos.values.shape == (3, 2, 4) and perpos.values.shape == (3, 2, 4, 7)
    for layer, head in [(0, 1), (1, 3)]:
        ref = _one_patch(sm, pairs, f"blocks.{layer}.attn.hook_z", None, head)
        np.testing.assert_allclose(allpos.values[:, layer, head], ref, atol=1e-5)
        ref = _one_patch(sm, pairs, f"blocks.{layer}.attn.hook_z", 4, head)
        np.testing.assert_allclose(perpos.values[:, layer, head, 4], ref, atol=1e-5)


def test_patching_scores_are_anchored_at_clean_one_and_corrupt_zero():
    sm = _toy()
    pairs = _toy_pairs(sm, at=3)
    res = iv.patch_residual(sm, pairs, progress=False)
    # before the corrupted token the two runs are identical: nothing to restore
    assert np.all(res.values[:, :, :3] == 0)
    # the whole residual stream at the first block input is the clean run itself
    whole = iv.patch_residual(sm, pairs, per_position=False, progress=False)
    np.testing.assert_allclose(whole.values[:, 0], 1.0, atol=1e-5)
    # the last block's output at the last position is all the logits read
    post = iv.patch(sm, pairs, "resid_post", layers=[1], positions=[-1], progress=False)
    np.testing.assert_allclose(post.values[:, 0, 0], 1.0, atol=1e-5)
    # and somewhere in between, the map is not trivially 0/1
    assert np.abs(res.values[:, 1, 3:6]).max() > 0.02


def test_attribution_is_exact_where_the_metric_is_linear():
    """Without LayerNorm the logits are linear in the last block's output, so the first-order estimate
    must equal exact patching there; deeper in the network it is only an estimate."""
    sm = _toy(normalization=None, n_layers=2)
    pairs = _toy_pairs(sm)
    exact = iv.patch(sm, pairs, "resid_post", progress=False)
    attr = iv.attribution_patch(sm, pairs, "resid_post")
    assert attr.values.shape == exact.values.shape
    np.testing.assert_allclose(attr.values[:, 1], exact.values[:, 1], atol=1e-4)
    assert not np.allclose(attr.values[:, 0], exact.values[:, 0], atol=1e-3)
    heads = iv.attribution_patch(sm, pairs, "z", heads=True)
    assert heads.values.shape == (3, 2, 4, 7)
    assert iv.correlation(iv.patch_heads(sm, pairs, per_position=True, progress=False), heads) > 0.5


def test_steering_adds_the_vector_and_comes_off():
    sm = _toy()
    x = torch.randint(0, 50, (1, 6))
    site = "blocks.1.hook_resid_pre"
    v = iv.steering_vector(sm, [x[:, :3], x[:, 2:5]], [x[:, 1:4]], site)
    assert v.vector.shape == (32,) and v.norm > 0
    added = sm.run_with_hooks(x, fwd_hooks=[(site, lambda act, hook: act + 3.0 * v.vector)])
    plain = sm(x)
    with iv.steer(sm, v, 3.0):
        steered = sm(x)
    torch.testing.assert_close(steered, added)
    assert not torch.allclose(steered, plain)
    torch.testing.assert_close(sm(x), plain)  # the hook came off
    r = v.random_like(1)
    assert abs(r.norm - v.norm) < 1e-4 and abs(float(torch.cosine_similarity(r.vector, v.vector, 0))) < 0.5


def test_logit_lens_last_row_is_the_models_own_prediction():
    sm = _toy()
    x = torch.randint(0, 50, (1, 6))
    lens = iv.logit_lens(sm, x, 7)
    assert list(lens["read after"]) == ["embed", "layer 0", "layer 1"]
    last = sm(x)[0, -1].detach()
    assert lens["rank"].iloc[-1] == int((last > last[7]).sum()) + 1
    assert abs(lens["prob"].iloc[-1] - float(last.softmax(-1)[7])) < 1e-5


# --- bad input: one clear line, and the model is left as it was --------------------------------
def _unchanged(sm, x, ref):
    torch.testing.assert_close(sm(x), ref)


def test_unknown_site_lists_the_nearest_names():
    sm = _toy()
    pairs = _toy_pairs(sm)
    ref = sm(pairs.corrupt)
    with pytest.raises(sites.UnknownSiteError) as err:
        iv.patch(sm, pairs, "resid_pree", progress=False)
    msg = str(err.value)
    assert "\n" not in msg and "resid_pree" in msg and "hook_resid_pre" in msg
    with pytest.raises(sites.UnknownSiteError, match="blocks.1.hook_resid_pre"):
        iv.steering_vector(sm, [pairs.clean[:1]], [pairs.corrupt[:1]], "blocks.1.hook_resid_pr")
    _unchanged(sm, pairs.corrupt, ref)


def test_position_and_layer_out_of_range():
    sm = _toy()
    pairs = _toy_pairs(sm)
    for kw, text in [({"positions": [7]}, "position 7 is out of range for prompts of 7 tokens"),
                     ({"positions": [-8]}, "position -8 is out of range"),
                     ({"layers": [2]}, "layer 2 is out of range for a model of 2 layers")]:
        with pytest.raises(ValueError, match=text) as err:
            iv.patch_residual(sm, pairs, progress=False, **kw)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="position 9 is out of range"):
        iv.logit_lens(sm, pairs.clean[:1], 3, position=9)


def test_clean_and_corrupt_of_different_lengths():
    sm = _toy()
    with pytest.raises(ValueError, match=r"different token lengths \(7 vs 6\)") as err:
        iv.prompt_pairs(sm, torch.zeros(1, 7, dtype=torch.long), torch.ones(1, 6, dtype=torch.long), [1], [2])
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="same logit difference"):
        iv.prompt_pairs(sm, torch.ones(1, 5, dtype=torch.long), torch.ones(1, 5, dtype=torch.long), [1], [2])


def test_a_hook_that_raises_names_the_site_and_leaves_no_hook_behind():
    sm = _toy()
    x = torch.randint(0, 50, (1, 5))
    ref = sm(x)
    too_long = iv.SteeringVector(torch.ones(9, 32), "blocks.1.hook_resid_pre")  # per-position, 9 > 5 tokens
    with pytest.raises(Exception) as err:
        with iv.steer(sm, too_long):
            sm(x)
    assert "blocks.1.hook_resid_pre" in str(err.value) and "covers 9 positions" in str(err.value).replace("\n", " ")
    assert "\n" not in str(err.value)
    _unchanged(sm, x, ref)
    with pytest.raises(KeyboardInterrupt):  # the user's own code failing inside the block
        with iv.steer(sm, iv.SteeringVector(torch.ones(32), "blocks.0.hook_resid_pre"), 5.0):
            raise KeyboardInterrupt
    _unchanged(sm, x, ref)


# --- smollm2: measured behaviour -----------------------------------------------------------------
@pytest.fixture(scope="module")
def smollm2():
    return sites.wrap("smollm2")


@pytest.fixture(scope="module")
def eiffel(smollm2):
    return iv.prompt_pairs(smollm2, ["The Eiffel Tower is in the city of"], ["The Colosseum is in the city of"],
                           [" Paris"], [" Rome"])


def test_smollm2_pair_and_residual_patching(smollm2, eiffel):
    sm = smollm2
    assert eiffel.labels[2] == "iffel" and eiffel.n_pos == 9
    assert eiffel.clean_diff[0] > 1.5 and eiffel.corrupt_diff[0] < -5  # measured: 2.86 and -8.70
    res = iv.patch_residual(sm, eiffel, layers=[4, 12, 27], positions=[2, 5, 8], progress=False)
    t = res.table()
    assert t.iloc[0, 0] > 0.6 and t.iloc[1, 0] > 0.6      # the subject token, early/middle layers
    assert abs(t.iloc[1, 1]) < 0.15                        # " in": same context, little to restore
    assert t.iloc[2, 2] > 0.6                              # the last position, late layers
    assert abs(t.iloc[0, 2]) < 0.15                        # the last position before the answer is read
    ref = _one_patch(sm, eiffel, "blocks.12.hook_resid_pre", 2, None)
    np.testing.assert_allclose(res.values[:, 1, 0], ref, atol=1e-3)


def test_patched_runs_start_at_the_patched_block_only_where_that_is_exact(smollm2, eiffel):
    """A patch at block l leaves blocks < l as in the corrupt run, so smollm2's patched runs start at
    block l (sites.Adapter.run_from): the maps equal whole forwards; GPT-2, which adds its position
    embeddings to inputs_embeds, fails the kit's one-time check and keeps whole forwards, still exact."""
    from transformers import GPT2Config, GPT2LMHeadModel

    a = smollm2.adapter
    fast = [iv.patch_residual(smollm2, eiffel, layers=[1, 9, 17, 29], positions=[2, 8], progress=False),
            iv.patch_mlp(smollm2, eiffel, layers=[3, 20], per_position=False, progress=False),
            iv.patch_heads(smollm2, eiffel, layers=[0, 23], batch_size=5, progress=False)]
    assert a._restart_exact is True
    calls = []
    run_from = a.run_from
    a.run_from = lambda *args, **kw: calls.append(args[0]) or run_from(*args, **kw)
    try:
        iv.patch_residual(smollm2, eiffel, layers=[0, 7], positions=[8], batch_size=1, progress=False)
    finally:
        del a.run_from
    assert calls == [7]  # one run per batch here; block 0 has nothing before it to skip
    a._restart_exact = False  # whole forwards, as before
    try:
        slow = [iv.patch_residual(smollm2, eiffel, layers=[1, 9, 17, 29], positions=[2, 8], progress=False),
                iv.patch_mlp(smollm2, eiffel, layers=[3, 20], per_position=False, progress=False),
                iv.patch_heads(smollm2, eiffel, layers=[0, 23], batch_size=5, progress=False)]
    finally:
        a._restart_exact = True
    for f, s in zip(fast, slow):
        np.testing.assert_allclose(f.values, s.values, atol=1e-4)
    assert np.abs(fast[0].values).max() > 0.5  # a map with something in it

    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=3, n_embd=32, n_head=4, vocab_size=50, n_positions=16, initializer_range=0.5)).eval()
    sm = sites.wrap(gpt2)
    pairs = _toy_pairs(sm)
    res = iv.patch_residual(sm, pairs, progress=False)
    assert sm.adapter._restart_exact is False
    for layer, pos in [(1, 2), (2, 2), (2, 6)]:
        np.testing.assert_allclose(res.values[:, layer, pos], _one_patch(sm, pairs, f"blocks.{layer}.hook_resid_pre", pos, None),
                                   rtol=1e-4, atol=1e-4)
    with pytest.raises(sites.SiteRangeError, match="out of range"):
        a.run_from(30, torch.zeros(1, 2, 576))


def test_smollm2_attribution_and_heads(smollm2, eiffel):
    attr = iv.attribution_patch(smollm2, eiffel, layers=[4, 12, 27])
    late = attr.table().iloc[2, 8]
    assert late > 0.5  # the late last-position patch is nearly linear: estimated well
    heads = iv.attribution_patch(smollm2, eiffel, "z", heads=True, per_position=False)
    assert heads.values.shape == (1, 30, 9)
    top = heads.top(3)
    exact = iv.patch_heads(smollm2, eiffel, layers=sorted(set(top["layer"])), progress=False)
    assert np.isfinite(exact.values).all()


def test_smollm2_logit_lens(smollm2):
    lens = iv.logit_lens(smollm2, "The Eiffel Tower is in the city of", " Paris")
    assert len(lens) == 31
    assert lens["rank"].iloc[1] > 1000           # measured: 13,672 after layer 0
    assert lens["rank"].iloc[-1] == 1 and lens["top"].iloc[-1] == " Paris"


def test_smollm2_steering_beats_a_random_vector(smollm2):
    pos = ["I love this. It is wonderful", "What a great and happy day", "I feel joyful and grateful",
           "Everything went perfectly today"]
    neg = ["I hate this. It is awful", "What a terrible and sad day", "I feel miserable and angry",
           "Everything went wrong today"]
    v = iv.steering_vector(smollm2, pos, neg, "blocks.6.hook_resid_pre")
    eff = iv.steering_effect(smollm2, v, ["The movie was", "My new job is", "The service at the hotel was"],
                             [" great", " good", " wonderful", " amazing"], [" terrible", " bad", " awful", " boring"],
                             strengths=[2], n_random=3, progress=False)  # held-out: none of these built the vector
    steer = eff.query("vector == 'steering'")["effect"].iloc[0]
    rand = eff.query("vector == 'random'")["effect"].iloc[0]
    assert steer > 1.0 and steer > abs(rand) + 1.0


def test_generate_with_a_list_of_strengths_gives_each_lone_run(smollm2):
    """Strengths side by side in one batch: the same greedy text as one run per strength, in order."""
    v = iv.steering_vector(smollm2, ["I love this. It is wonderful"], ["I hate this. It is awful"],
                           "blocks.6.hook_resid_pre")
    alone = [iv.generate(smollm2, "The movie was", vector=v, strength=s, max_new_tokens=6) for s in (0, 8, -8)]
    assert len(set(alone)) == 3  # the strengths really change the text
    assert iv.generate(smollm2, "The movie was", vector=v, strength=[0, 8, -8], max_new_tokens=6) == alone
    assert iv.generate(smollm2, "The movie was", strength=[0, 8], max_new_tokens=6) == [alone[0]] * 2  # no vector
    for bad, match in (("x", "a number or a list"), ([], "non-empty"), ([1, "y"], "a number or a list")):
        with pytest.raises(ValueError, match=match):
            iv.generate(smollm2, "The movie was", vector=v, strength=bad)


# --- remote execution on NDIF (nnsight remote=True): what can be checked offline -----------------
def test_remote_without_key_or_network_is_one_clear_line(monkeypatch):
    from interplab import config

    monkeypatch.setattr(config, "load_dotenv", lambda *a, **k: False)
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    with pytest.raises(iv.RemoteUnavailableError, match="needs NDIF_API_KEY") as err:
        iv.remote_logit_lens("meta-llama/Llama-3.1-8B", "The Eiffel Tower is in the city of", " Paris")
    assert "\n" not in str(err.value)
    monkeypatch.setenv("NDIF_API_KEY", "test-key-not-real")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(iv.RemoteUnavailableError, match="needs the network") as err:
        iv.remote_logit_lens("meta-llama/Llama-3.1-8B", "The Eiffel Tower is in the city of", " Paris")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="Hugging Face model id"):
        iv.remote_logit_lens("toy:attn-only-2l", "t1 t2", "t3")


def test_remote_parameter_reaches_nnsight(monkeypatch):
    """With a key and the network allowed, the trace is asked for remote=True and the key is set for the session."""
    import contextlib
    import types

    import nnsight

    from interplab import config

    seen = {}

    class Saved:
        def __init__(self, t):
            self.value = t

        def save(self):
            return self

    class FakeTokenizer:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [7]}

        def decode(self, ids):
            return f"<{ids[0]}>"

    class FakeLM:
        def __init__(self, model_id):
            seen["id"] = model_id
            g = torch.Generator().manual_seed(0)
            self.W = torch.randn(8, 20, generator=g)
            self.model = types.SimpleNamespace(
                layers=[types.SimpleNamespace(output=(torch.randn(1, 4, 8, generator=g),)) for _ in range(3)],
                norm=lambda h: h)
            self.tokenizer = FakeTokenizer()

        def lm_head(self, h):
            return Saved(h @ self.W)

        @contextlib.contextmanager
        def trace(self, text, remote=False):
            seen["remote"], seen["text"] = remote, text
            yield

    monkeypatch.setattr(config, "load_dotenv", lambda *a, **k: False)
    monkeypatch.setattr(config, "network_allowed", lambda: True)
    monkeypatch.setenv("NDIF_API_KEY", "test-key-not-real")
    monkeypatch.setattr(nnsight, "LanguageModel", FakeLM)
    old_key = nnsight.CONFIG.API.APIKEY
    try:
        lens = iv.remote_logit_lens("meta-llama/Llama-3.1-8B", "The Eiffel Tower is in the city of", " Paris")
        assert seen == {"id": "meta-llama/Llama-3.1-8B", "remote": True, "text": "The Eiffel Tower is in the city of"}
        assert nnsight.CONFIG.API.APIKEY == "test-key-not-real"
    finally:
        nnsight.CONFIG.API.APIKEY = old_key
    assert list(lens["read after"]) == ["layer 0", "layer 1", "layer 2"] and lens["rank"].between(1, 20).all()
