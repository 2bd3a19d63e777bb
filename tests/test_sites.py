"""interplab.sites: one site vocabulary and hook-and-cache layer on toy, smollm2, MiniLM, GPT-2 and GPT-NeoX."""
from __future__ import annotations

import pytest
import torch

from interplab import sites
from interplab.sites import HookError, SiteRangeError, UnknownSiteError

PROMPTS = ["The Eiffel Tower is in the city of", "When Mary and John went to the store, John gave"]


@pytest.fixture(scope="module")
def smol():
    return sites.wrap("smollm2")


@pytest.fixture(scope="module")
def mini(minilm):
    return sites.wrap(*minilm)


@pytest.fixture(scope="module")
def toy_sm():
    from interplab.toy import ToyConfig, ToyTokenizer, ToyTransformer

    tok = ToyTokenizer()
    cfg = ToyConfig(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, act_fn="gelu", d_vocab=len(tok), n_ctx=32)
    return sites.wrap(ToyTransformer(cfg).eval(), tok)


def _tiny_hf(family: str):
    """A randomly initialised GPT-2 / GPT-NeoX causal LM (real HF classes, no download)."""
    import transformers as tf

    torch.manual_seed(0)
    if family == "gpt2":
        cfg = tf.GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=100, n_positions=64)
        model = tf.GPT2LMHeadModel(cfg)
    else:
        cfg = tf.GPTNeoXConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                               vocab_size=100, max_position_embeddings=64)
        model = tf.GPTNeoXForCausalLM(cfg)
    return sites.wrap(model.eval())


def _tokens(sm):
    if sm.adapter.is_toy:
        return sm.to_tokens(["t3 t9 t4 t3 t9 t4", "e5 a17 t1 t2"])
    if sm.tokenizer is None:
        return torch.randint(0, sm.adapter.d_vocab, (2, 7))
    return sm.to_tokens(PROMPTS)


def _expected_shape(sm, site, B, T):
    a = sm.adapter
    kind = site.split(".", 2)[-1] if site.startswith("blocks.") else site
    return {"attn.hook_pattern": (B, a.n_heads, T, T), "attn.hook_z": (B, T, a.n_heads, a.d_head),
            "mlp.hook_post": (B, T, a.d_mlp)}.get(kind, (B, T, a.d_model))


@pytest.mark.parametrize("which", ["toy", "smollm2", "minilm", "gpt2", "gpt_neox"])
def test_cache_shapes_every_site(which, request):
    sm = {"toy": "toy_sm", "smollm2": "smol", "minilm": "mini"}.get(which)
    sm = request.getfixturevalue(sm) if sm else _tiny_hf(which)
    tokens = _tokens(sm)
    B, T = tokens.shape
    before = _hook_ids(sm.model)
    logits, cache = sm.run_with_cache(tokens)
    assert set(sm.site_names()) <= set(cache)
    core = ["hook_resid_pre", "attn.hook_z", "attn.hook_pattern", "hook_attn_out", "mlp.hook_post", "hook_mlp_out",
            "hook_resid_post"]
    for i in range(sm.adapter.n_layers):
        for s in core:
            assert tuple(cache[f"blocks.{i}.{s}"].shape) == _expected_shape(sm, f"blocks.{i}.{s}", B, T), s
        rows = cache[f"blocks.{i}.attn.hook_pattern"].sum(-1)
        assert torch.allclose(rows, torch.ones_like(rows), atol=1e-4)
        if sm.adapter.kind != "encoder":  # causal: nothing attends ahead
            p = cache[f"blocks.{i}.attn.hook_pattern"]
            assert float(p.triu(1).abs().max()) == 0.0
    if sm.adapter.kind == "encoder":
        assert logits.shape == (B, T, sm.adapter.d_model) and sm.adapter.unembed(logits) is None
    else:
        assert logits.shape == (B, T, sm.adapter.d_vocab)
        # the logit lens of the last block's output is the model's own logits
        last = cache[f"blocks.{sm.adapter.n_layers - 1}.hook_resid_post"]
        assert torch.allclose(sm.adapter.logit_lens(last), logits, atol=1e-3)
    assert _hook_ids(sm.model) == before


@pytest.mark.parametrize("which", ["smollm2", "minilm", "gpt2", "gpt_neox"])
def test_resid_post_is_hf_hidden_states(which, request):
    sm = {"smollm2": "smol", "minilm": "mini"}.get(which)
    sm = request.getfixturevalue(sm) if sm else _tiny_hf(which)
    tokens = _tokens(sm)
    n = sm.adapter.n_layers
    _, cache = sm.run_with_cache(tokens, names=[f"blocks.{i}.hook_resid_post" for i in range(n)]
                                 + ["blocks.0.hook_resid_pre"] + (["ln_final.hook_normalized"] if sm.adapter.final_norm else []))
    with torch.no_grad():
        hs = sm.model(tokens, output_hidden_states=True).hidden_states
    assert len(hs) == n + 1
    assert torch.allclose(cache["blocks.0.hook_resid_pre"], hs[0], atol=1e-5)
    last = n - 1 if sm.adapter.final_norm is not None else n  # HF's last hidden state is after the final norm
    for i in range(last):
        assert torch.allclose(cache[f"blocks.{i}.hook_resid_post"], hs[i + 1], atol=1e-4, rtol=1e-4), i
        assert torch.equal(cache[f"hidden.{i + 1}"], cache[f"blocks.{i}.hook_resid_post"])  # the features alias
    if sm.adapter.final_norm is not None:
        assert torch.allclose(cache["ln_final.hook_normalized"], hs[n], atol=1e-4)
        assert torch.equal(cache[f"hidden.{n}"], cache["ln_final.hook_normalized"])


@pytest.mark.parametrize("which", ["toy", "smollm2", "minilm"])
def test_replace_with_own_value_keeps_logits_and_zeros_change_them(which, request):
    sm = request.getfixturevalue({"toy": "toy_sm", "smollm2": "smol", "minilm": "mini"}[which])
    tokens = _tokens(sm)
    mid = sm.adapter.n_layers // 2
    names = [f"blocks.{mid}.{s}" for s in ("hook_resid_pre", "attn.hook_z", "hook_attn_out", "mlp.hook_post",
                                           "hook_mlp_out", "hook_resid_post")]
    with torch.no_grad():
        clean, cache = sm.run_with_cache(tokens, names=names)
        for name in names:
            same = sm.run_with_hooks(tokens, fwd_hooks=[(name, lambda a, hook: cache[hook.name].clone())])
            assert torch.allclose(same, clean, atol=1e-4), name
            zero = sm.run_with_hooks(tokens, fwd_hooks=[(name, lambda a, hook: torch.zeros_like(a))])
            assert float((zero - clean).abs().max()) > 1e-2, name


def test_toy_pattern_replacement_and_aliases(toy_sm):
    tokens = _tokens(toy_sm)
    with torch.no_grad():
        clean, cache = toy_sm.run_with_cache(tokens, names=["blocks.1.attn.pattern", "blocks.0.resid_post"])
        assert "blocks.1.attn.hook_pattern" in cache and torch.equal(cache["blocks.1.attn.pattern"],
                                                                      cache["blocks.1.attn.hook_pattern"])
        _, old = toy_sm.model.run_with_cache(tokens)  # the toy's own API still works, same values
        assert torch.equal(old["blocks.0.resid_post"], cache["blocks.0.hook_resid_post"])
        uniform = lambda p, hook: torch.tril(torch.ones_like(p)) / torch.tril(torch.ones_like(p)).sum(-1, keepdim=True)
        changed = toy_sm.run_with_hooks(tokens, fwd_hooks=[("blocks.1.attn.hook_pattern", uniform)])
    assert float((changed - clean).abs().max()) > 1e-3


def test_z_through_output_projection_is_attn_out(toy_sm, smol, mini):
    for sm in (toy_sm, smol, mini, _tiny_hf("gpt2"), _tiny_hf("gpt_neox")):
        i = sm.adapter.n_layers - 1
        _, cache = sm.run_with_cache(_tokens(sm), names=[f"blocks.{i}.attn.hook_z", f"blocks.{i}.hook_attn_out"])
        z = cache[f"blocks.{i}.attn.hook_z"]
        if sm.adapter.is_toy:
            attn = sm.model.blocks[i].attn
            out = torch.einsum("bthd,hdm->btm", z, attn.W_O) + attn.b_O
        else:
            with torch.no_grad():
                out = sm.adapter.block_module(i, "o_proj")(z.flatten(-2))
        assert torch.allclose(out, cache[f"blocks.{i}.hook_attn_out"], atol=1e-4), sm


@pytest.mark.parametrize("which", ["toy", "smollm2"])
def test_gradients_at_sites_match_autograd(which, request):
    sm = request.getfixturevalue({"toy": "toy_sm", "smollm2": "smol"}[which])
    tokens = _tokens(sm)[:1]
    names = [f"blocks.1.hook_resid_post", "blocks.1.attn.hook_z", "blocks.0.mlp.hook_post"]
    target = 5

    def metric(logits):
        return logits[0, -1].log_softmax(-1)[target]

    logits, cache = sm.run_with_cache(tokens, names=names, grad=True)
    metric(logits).backward()
    for name in names:
        g = cache[name].grad
        assert g is not None and float(g.abs().max()) > 0, name
        # independent check: feed the same value in as a leaf tensor and ask autograd
        leaf = cache[name].detach().clone().requires_grad_(True)
        out = sm.run_with_hooks(tokens, fwd_hooks=[(name, lambda a, hook: leaf)])
        (ref,) = torch.autograd.grad(metric(out), leaf)
        assert torch.allclose(g, ref, atol=1e-5, rtol=1e-4), name
    sm.model.zero_grad(set_to_none=True)


def test_pattern_is_read_only_on_hf_and_eager_is_restored(smol):
    tokens = _tokens(smol)
    before = smol.model.config._attn_implementation
    with pytest.raises(HookError, match="read-only"):
        smol.run_with_hooks(tokens, fwd_hooks=[("blocks.3.attn.hook_pattern", lambda p, hook: p * 0)])
    assert smol.model.config._attn_implementation == before
    smol.run_with_cache(tokens, names=["blocks.3.attn.hook_pattern"])
    assert smol.model.config._attn_implementation == before


def _hook_ids(model):
    """Every forward (pre-)hook on the model's modules (transformers keeps some of its own)."""
    return {(id(m), k) for m in model.modules() for d in (m._forward_hooks, m._forward_pre_hooks) for k in d}


def _clean_after(sm, tokens, reference, hooks_before):
    """The model runs cleanly after an error: same logits as before, none of our hooks left on any module."""
    assert _hook_ids(sm.model) == hooks_before
    if sm.adapter.is_toy:
        assert not sm.model._hooks
    with torch.no_grad():
        assert torch.equal(sm(tokens), reference)


@pytest.mark.parametrize("which", ["toy", "smollm2", "minilm"])
def test_bad_input_one_line_errors_and_clean_model_afterwards(which, request):
    sm = request.getfixturevalue({"toy": "toy_sm", "smollm2": "smol", "minilm": "mini"}[which])
    tokens = _tokens(sm)
    with torch.no_grad():
        reference = sm(tokens)
    before = _hook_ids(sm.model)
    n = sm.adapter.n_layers

    with pytest.raises(UnknownSiteError) as e:
        sm.run_with_cache(tokens, names=["blocks.1.hook_resid_pots"])
    assert "\n" not in str(e.value) and "blocks.1.hook_resid_post" in str(e.value)
    assert isinstance(e.value, ValueError) and isinstance(e.value, KeyError)
    _clean_after(sm, tokens, reference, before)

    def boom(act, hook):
        raise ZeroDivisionError("bad hook")

    with pytest.raises(HookError, match=r"blocks\.1\.hook_mlp_out.*ZeroDivisionError: bad hook") as e:
        sm.run_with_hooks(tokens, fwd_hooks=[("blocks.0.hook_resid_post", lambda a, h: a),
                                             ("blocks.1.hook_mlp_out", boom)])
    assert isinstance(e.value.__cause__, ZeroDivisionError) and "\n" not in str(e.value)
    _clean_after(sm, tokens, reference, before)

    with pytest.raises(HookError, match="expected shape"):
        sm.run_with_hooks(tokens, fwd_hooks=[("blocks.0.hook_attn_out", lambda a, h: a[:, :1])])
    _clean_after(sm, tokens, reference, before)

    with pytest.raises(SiteRangeError, match=rf"layer {n} .* 0 \.\.\. {n - 1}"):
        sm.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{n}.hook_resid_post", lambda a, h: a)])
    with pytest.raises(SiteRangeError):
        sm.site_names(layer=-1)
    T = tokens.shape[1]
    with pytest.raises(SiteRangeError, match=rf"position {T} .* {T} tokens"):
        sm.run_with_hooks(tokens, fwd_hooks=[sm.replace_hook("blocks.0.hook_resid_post", torch.zeros(1), pos=T)])
    _clean_after(sm, tokens, reference, before)
    with pytest.raises(ValueError, match="pairs"):
        sm.run_with_hooks(tokens, fwd_hooks=["blocks.0.hook_resid_post"])


def test_replace_hook_at_a_position_patches_only_later_positions(smol):
    clean, corrupt = smol.to_tokens("The Eiffel Tower is in the city of"), smol.to_tokens("The Colosseum is in the city of")
    assert clean.shape == corrupt.shape
    with torch.no_grad():
        base, cache = smol.run_with_cache(clean, names=["blocks.4.hook_resid_pre"])
        cor = smol(corrupt)
        patched = smol.run_with_hooks(corrupt, fwd_hooks=[smol.replace_hook("blocks.4.hook_resid_pre",
                                                                            cache["blocks.4.hook_resid_pre"], pos=2)])
    assert torch.equal(patched[:, :2], cor[:, :2])  # causal: earlier positions are untouched
    assert float((patched[:, 2:] - cor[:, 2:]).abs().max()) > 1e-2


def test_hooks_around_generate(smol):
    tokens = smol.to_tokens("The capital of France is")
    kw = dict(max_new_tokens=4, do_sample=False, pad_token_id=smol.tokenizer.eos_token_id)
    with torch.no_grad():
        plain = smol.model.generate(tokens, **kw)
        direction = torch.randn(smol.adapter.d_model, generator=torch.Generator().manual_seed(0))
        with smol.hooks(fwd_hooks=[("blocks.10.hook_resid_post", lambda a, h: a + 40 * direction)]):
            steered = smol.model.generate(tokens, **kw)
        again = smol.model.generate(tokens, **kw)
    assert not torch.equal(plain, steered)
    assert torch.equal(plain, again)


def test_adapter_facts(smol, mini, toy_sm):
    a = smol.adapter
    assert (a.kind, a.n_layers, a.n_heads, a.n_kv_heads, a.d_model, a.d_head, a.d_mlp, a.d_vocab) == \
        ("causal", 30, 9, 3, 576, 64, 1536, 49152)
    assert a.n_ctx == smol.model.config.max_position_embeddings and a.final_norm is smol.model.model.norm
    assert a.module_path("blocks.3.attn.hook_z") == "model.layers.3.self_attn.o_proj"
    b = mini.adapter
    assert (b.kind, b.n_layers, b.n_heads, b.d_model, b.final_norm) == ("encoder", 6, 12, 384, None)
    t = toy_sm.adapter
    assert (t.kind, t.n_ctx, t.n_layers) == ("toy", 32, 2)
    assert smol.str_tokens("The Eiffel")[0] == "The"  # no BOS for smollm2
    assert sites.name("resid_post", 3) == "blocks.3.hook_resid_post" and sites.name("z", 0) == "blocks.0.attn.hook_z"
    with pytest.raises(TypeError, match="cannot read sites"):
        sites.wrap(torch.nn.Linear(2, 2))


def test_induction_scores_find_smollm2_induction_heads(smol):
    """The kit's head-score functions work on smollm2: on repeated random tokens some heads attend to the
    induction target far above chance (the mean over all heads is the baseline)."""
    from interplab.toy import induction_scores

    scores = induction_scores(smol.model, length=12, batch_size=4, seed=0)
    ind = scores["induction"]
    layer, head = divmod(int(ind.values.argmax()), ind.shape[1])
    print(f"smollm2 best induction head L{layer}H{head}: {ind.values.max():.2f} (mean over heads {ind.values.mean():.3f})")
    assert ind.shape == (30, 9) and ind.values.max() > 0.5 and ind.values.mean() < 0.2
    assert 10 <= layer <= 29


def test_nested_hooks_on_one_toy_site_both_run():
    """An inner hooks(...) on a site an outer hooks(...) already holds chains after it on toys (it used to drop it)."""
    import torch

    from interplab import sites, toy

    model, tok = toy.load("attn-only-1l")
    sm = sites.wrap(model, tok)
    tokens = torch.randint(0, model.cfg.d_vocab, (1, 6))
    seen = []
    site = "blocks.0.hook_resid_post"
    with sm.hooks(fwd_hooks=[(site, lambda a, hook: seen.append("outer") or a * 0)]):
        logits, cache = sm.run_with_cache(tokens, names=[site])
    assert seen == ["outer"] and torch.count_nonzero(cache[site]) == 0
