"""Toy transformer zoo: model shapes and hook names, hooks that ablate, safetensors round-trip, the
tokenizer, head scores on hand-built attention patterns, and the induction criteria on a trained model."""
from __future__ import annotations

import json

import pytest
import torch

from interplab import toy
from interplab.toy import diagnostics, neurons, tasks
from interplab.toy.model import ToyConfig, ToyTransformer


@pytest.fixture(scope="session")
def trained():
    """The 2-layer attention-only model from the zoo, trained once per session (or loaded from the cache)."""
    return toy.load("attn-only-2l", progress=False)


def tiny(act_fn=None, normalization=None, n_layers=2, n_heads=2):
    return ToyTransformer(ToyConfig(n_layers=n_layers, d_model=16, n_heads=n_heads, d_head=8, d_mlp=0 if act_fn is None else 32,
                                    n_ctx=12, d_vocab=len(toy.ToyTokenizer()), act_fn=act_fn, normalization=normalization, name="tiny"))


# --- model ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("act_fn", [None, "gelu", "solu"])
@pytest.mark.parametrize("normalization", [None, "LN"])
def test_cache_names_and_shapes(act_fn, normalization):
    model = tiny(act_fn, normalization)
    B, T, c = 3, 7, model.cfg
    tokens = torch.randint(0, c.d_vocab, (B, T))
    logits, cache = model.run_with_cache(tokens)
    assert logits.shape == (B, T, c.d_vocab)
    assert torch.allclose(cache["logits"], logits)
    assert list(cache) == model.hook_names()
    assert cache["embed"].shape == cache["pos_embed"].shape == (B, T, c.d_model)
    for i in range(c.n_layers):
        assert cache[f"blocks.{i}.resid_pre"].shape == (B, T, c.d_model)
        assert cache[f"blocks.{i}.attn.pattern"].shape == (B, c.n_heads, T, T)
        assert cache[f"blocks.{i}.attn.head_out"].shape == (B, T, c.n_heads, c.d_model)
        assert torch.allclose(cache[f"blocks.{i}.attn.head_out"].sum(2) + model.blocks[i].attn.b_O,
                              cache[f"blocks.{i}.attn.out"], atol=1e-5)
        pattern = cache[f"blocks.{i}.attn.pattern"]
        assert torch.allclose(pattern.sum(-1), torch.ones(B, c.n_heads, T), atol=1e-5)
        assert float(pattern.triu(1).abs().max()) == 0.0  # causal
        assert cache[f"blocks.{i}.resid_mid"].shape == cache[f"blocks.{i}.resid_post"].shape
        if act_fn is None:
            assert f"blocks.{i}.mlp.post" not in cache
            assert torch.allclose(cache[f"blocks.{i}.resid_post"], cache[f"blocks.{i}.resid_mid"])
        else:
            assert cache[f"blocks.{i}.mlp.pre"].shape == cache[f"blocks.{i}.mlp.post"].shape == (B, T, c.d_mlp)
    assert ("ln_final.out" in cache) == (normalization == "LN")
    assert torch.allclose(model(tokens), logits)


def test_hooks_ablate_and_patch():
    model = tiny()
    tokens = torch.randint(0, model.cfg.d_vocab, (2, 8))
    clean, cache = model.run_with_cache(tokens)

    def zero_head_1(x, name):
        x = x.clone()
        x[:, :, 1] = 0
        return x

    logits, ablated = model.run_with_cache(tokens, hooks={"blocks.1.attn.head_out": zero_head_1})
    assert float(ablated["blocks.1.attn.head_out"][:, :, 1].abs().max()) == 0.0
    assert torch.allclose(ablated["blocks.1.attn.out"], ablated["blocks.1.attn.head_out"][:, :, 0] + model.blocks[1].attn.b_O,
                          atol=1e-6)
    assert not torch.allclose(logits, clean)
    # a hook that returns None only reads; patching a clean activation back in restores the clean logits
    seen = []
    assert torch.allclose(model.run_with_hooks(tokens, hooks={"blocks.0.resid_post": lambda x, n: seen.append(n)}), clean)
    assert seen == ["blocks.0.resid_post"]
    patched = model.run_with_hooks(tokens, hooks={"blocks.1.resid_post": lambda x, n: cache["blocks.1.resid_post"]})
    assert torch.allclose(patched, clean, atol=1e-6)


def test_bad_inputs_are_clear_errors():
    model = tiny()
    with pytest.raises(KeyError, match="unknown hook name"):
        model.run_with_hooks(torch.zeros(1, 3, dtype=torch.long), hooks={"blocks.9.attn.pattern": lambda x, n: x})
    with pytest.raises(ValueError, match="longer than the model's context"):
        model(torch.zeros(1, model.cfg.n_ctx + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids must lie"):
        model(torch.full((1, 3), model.cfg.d_vocab))
    with pytest.raises(ValueError, match="returned shape"):
        model.run_with_hooks(torch.zeros(1, 3, dtype=torch.long), hooks={"embed": lambda x, n: x[:, :1]})
    with pytest.raises(ValueError, match="act_fn"):
        ToyConfig(act_fn="relu")
    with pytest.raises(ValueError, match="unknown toy model"):
        toy.load("attn-only-9l")


@pytest.mark.parametrize("task, kw, act_fn", [("induction", {"max_len": 5}, None), ("facts", {}, "solu")])
def test_training_loss_unembeds_only_the_masked_positions_and_changes_nothing(task, kw, act_fn):
    """loss_on (what train() minimises) equals cross-entropy over every position's logits averaged over
    the mask, value and gradients alike; it only skips unembedding the positions the mask leaves out."""
    import torch.nn.functional as F

    model = tiny(act_fn, "LN")
    tokens, mask = tasks.get_task(task, n_ctx=12, **kw).batch(6, torch.Generator().manual_seed(0))
    assert 0 < mask.float().mean() < 0.8  # some positions are really skipped
    new = model.loss_on(tokens, mask)
    g_new = torch.autograd.grad(new, list(model.parameters()))
    logits = model(tokens[:, :-1])
    old = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), reduction="none")[mask.reshape(-1)].mean()
    g_old = torch.autograd.grad(old, list(model.parameters()))
    assert new.item() == pytest.approx(old.item(), rel=1e-6)
    for a, b in zip(g_new, g_old):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="token ids"):
        model.loss_on(tokens + 10_000, mask)


def test_save_load_round_trip(tmp_path):
    model = tiny("solu", "LN")
    folder = model.save(tmp_path / "m")
    assert (folder / "model.safetensors").is_file()
    assert json.loads((folder / "config.json").read_text())["act_fn"] == "solu"
    again = ToyTransformer.load(folder)
    assert again.cfg == model.cfg
    tokens = torch.randint(0, model.cfg.d_vocab, (2, 9))
    assert torch.equal(again(tokens), model(tokens))


# --- tokenizer and tasks -----------------------------------------------------------------------------

def test_tokenizer_round_trip_and_errors():
    tok = toy.ToyTokenizer()
    ids = tok("t3 t9 t4 t3 t9")["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == 6 and ids[1] == ids[4]
    assert tok.decode(ids) == "<bos> t3 t9 t4 t3 t9"
    assert tok.decode(ids, skip_special_tokens=True) == "t3 t9 t4 t3 t9"
    assert tok.encode(tok.decode(ids)) == ids  # <bos> is not doubled
    assert tok.convert_ids_to_tokens(ids[1:3]) == ["t3", "t9"]
    assert tok.encode(" t4", add_special_tokens=False) == [tok.convert_tokens_to_ids("t4")]
    assert len(tok) == tok.vocab_size
    batch = tok(["t1 t2", "t1"], return_tensors="pt", padding=True)
    assert batch["input_ids"].shape == (2, 3) and batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    with pytest.raises(ValueError, match="unknown toy token"):
        tok("the cat")


def test_induction_task_varies_length_and_offset():
    task = tasks.InductionTask()
    tokens, mask = task.batch(256, torch.Generator().manual_seed(0))
    assert tokens.shape == (256, task.n_ctx) and mask.shape == (256, task.n_ctx - 1)
    assert (tokens[:, 0] == tasks.BOS).all()
    lengths, starts = set(), set()
    for b in range(256):
        pos = mask[b].nonzero().flatten()
        L = int(pos.numel()) + 1
        lengths.add(L)
        starts.add(int(pos[0]))
        # every masked position predicts the token one repeat length back
        assert torch.equal(tokens[b, pos + 1], tokens[b, pos + 1 - L])
    assert lengths.isdisjoint(task.eval_lengths)  # held-out lengths never appear in training
    assert len(lengths) > 15 and len(starts) > 30  # no fixed length or offset to memorise


@pytest.mark.parametrize("name", ["facts", "sort", "modadd"])
def test_other_tasks_are_well_formed(name):
    tok = toy.ToyTokenizer()
    task = tasks.get_task(name)
    tokens, mask = task.batch(4, torch.Generator().manual_seed(1))
    assert mask.shape == (4, tokens.shape[1] - 1) and mask.any()
    text = tok.decode(tokens[0], skip_special_tokens=True)
    if name == "sort":
        words = text.split()
        xs, ys = words[1:words.index(":")], words[words.index(":") + 1:]
        assert sorted(xs, key=lambda w: int(w[1:])) == ys
    if name == "modadd":
        a, _, b, _, c = text.split()
        assert (int(a[1:]) + int(b[1:])) % task.p == int(c[1:])


# --- diagnostics on hand-built patterns --------------------------------------------------------------

def test_scores_on_hand_built_patterns():
    L = 5
    tokens = torch.cat([torch.tensor([0]), torch.arange(10, 10 + L), torch.arange(10, 10 + L)])[None]
    T = tokens.shape[1]
    prev = torch.zeros(T, T)
    prev[0, 0] = 1
    prev[torch.arange(1, T), torch.arange(0, T - 1)] = 1
    induction = torch.eye(T)
    dup = torch.eye(T)
    for q in range(L + 1, T):
        induction[q] = 0
        induction[q, q - L + 1] = 1
        dup[q] = 0
        dup[q, q - L] = 1
    half = 0.5 * induction + 0.5 * dup
    patterns = torch.stack([prev, induction, dup, half])[None, :, None]  # [B=1, 4 "layers", 1 head, T, T]
    s = diagnostics.scores_from_patterns(patterns, tokens)
    assert s["previous_token"][:, 0] == pytest.approx([1.0, 0.0, 0.0, 0.0])
    assert s["induction"][:, 0] == pytest.approx([0.0, 1.0, 0.0, 0.5])
    assert s["duplicate_token"][:, 0] == pytest.approx([0.0, 0.0, 1.0, 0.5])
    # batched patterns with two heads give the same numbers per head
    two = torch.stack([prev, half])[None, None].expand(3, 1, 2, T, T)
    s2 = diagnostics.scores_from_patterns(two, tokens.expand(3, T))
    assert s2["induction"][0] == pytest.approx([0.0, 0.5]) and s2["previous_token"][0] == pytest.approx([1.0, 0.0])


def test_scores_need_matching_shapes():
    with pytest.raises(ValueError, match="do not match"):
        diagnostics.scores_from_patterns(torch.ones(1, 1, 1, 4, 4) / 4, torch.zeros(1, 5, dtype=torch.long))


# --- the trained model: criteria (a), (b), (c) -------------------------------------------------------

def test_trained_model_has_a_real_induction_head(trained):
    model, tok = trained
    check = toy.check_induction(model)
    assert check.a, check.summary()  # (a) a layer-1 head with induction score >= 0.8
    assert check.b, check.summary()  # (b) >= 0.9 accuracy at every held-out repeat length
    assert check.c, check.summary()  # (c) ablating that head breaks (b)
    assert max(check.ablated_accuracy.values()) < 0.5
    scores = toy.induction_scores(model)
    # a previous-token head in layer 0 for the induction head to compose with
    assert check.previous_token_head[0] == 0 and check.previous_token_score >= 0.5
    assert scores["previous_token"].loc[0].max() > max(scores["duplicate_token"].loc[0].max(), scores["induction"].loc[0].max())
    # the LM view works on text: "t3 t9 t4 t3 t9" continues with t4
    ids = tok("t3 t9 t4 t11 t3 t9", return_tensors="pt")["input_ids"]
    assert tok.convert_ids_to_tokens(int(model(ids)[0, -1].argmax())) == "t4"


def test_ablation_and_logit_attribution_find_the_induction_head(trained):
    model, _ = trained
    check = toy.check_induction(model, ablate=False)
    layer, head = check.head
    zero = toy.ablation_table(model, kind="zero")
    mean = toy.ablation_table(model, kind="mean")
    assert zero.stack().idxmax() == (layer, head) and zero.loc[layer, head] > 1.0
    assert mean.loc[layer, head] > 1.0
    dla = toy.direct_logit_attribution(model)
    assert dla.stack().idxmax() == (layer, head) and dla.loc[layer, head] > 0
    curve = toy.loss_by_position(model, length=20)
    ablated = toy.loss_by_position(model, length=20, ablate=[(layer, head)])
    assert curve[21:39].mean() < 0.5 < ablated[21:39].mean()  # in-context loss jumps back up


def test_cache_reload_and_models_resolver(trained):
    from interplab.models import load_causal_lm

    model, _ = trained
    again, tok = load_causal_lm("toy:attn-only-2l")  # from the cache, no training
    assert again.interplab_name == "toy:attn-only-2l" and again.history is not None
    tokens = torch.randint(7, 70, (2, 10))
    assert torch.equal(again(tokens), model(tokens))
    assert "attn-only-2l" in toy.list_models().query("built").index


def test_two_processes_needing_one_toy_model_train_it_once(cache_dir, monkeypatch):
    """Two kernels that need the same untrained zoo model at once (lm_experiments and toy_transformers
    side by side both use attn-only-1l): one trains it, the other waits for the cache lock and loads it."""
    import threading
    import time

    from interplab.toy import zoo

    trained_by, real = [], zoo.train_model

    def quick(name, seed=0, progress=True, position=0, **overrides):
        trained_by.append(threading.get_ident())
        time.sleep(1.0)  # both threads have seen the model missing by now
        return real(name, seed=seed, progress=False, steps=2, warmup=1)

    monkeypatch.setattr(zoo, "train_model", quick)
    got = []
    threads = [threading.Thread(target=lambda: got.append(toy.load("attn-only-1l", progress=False)[0])) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(got) == 2 and len(trained_by) == 1, f"trained {len(trained_by)} times"
    tokens = torch.randint(7, 70, (1, 8))
    assert torch.equal(got[0](tokens), got[1](tokens))  # the second loaded what the first saved
    assert [p.name for p in (cache_dir / "toy").iterdir() if p.name.startswith(".")] == []  # no temporary folder left


def test_neuron_stats_on_a_briefly_trained_solu_model():
    model, history = toy.train_model("solu-1l", progress=False, steps=150)
    assert history.loss["facts"][-1] < history.loss["facts"][0]
    stats = neurons.neuron_stats(model)
    assert stats["neurons"] == model.cfg.d_mlp and 0 < stats["active_fraction"] < 1
    with pytest.raises(ValueError, match="attention-only"):
        neurons.neuron_stats(tiny())


def test_cli_lists_the_zoo_and_rejects_unknown_names(capsys):
    from interplab.cli import main

    assert main(["toy", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in toy.NAMES)
    assert main(["toy", "build", "gelu-9l"]) == 2
    assert "unknown model" in capsys.readouterr().out
    assert len(toy.original_configs()) == 12 and {o["d_model"] for o in toy.original_configs()} == {512}


# --- path ablation (interplab.toy.circuits) ---------------------------------------------------------

def test_path_ablation_reroutes_only_the_chosen_input():
    from interplab.toy import circuits

    model = tiny(n_heads=2)
    tokens = torch.randint(1, model.cfg.d_vocab, (3, 9))
    _, clean = model.run_with_cache(tokens)
    _, cache = model.run_with_cache(tokens, hooks=circuits.path_hooks(model, (0, 1), (1, 0), "k"))
    attn = model.blocks[1].attn
    expected = (clean["blocks.1.resid_pre"] - clean["blocks.0.attn.head_out"][:, :, 1]) @ attn.W_K[0] + attn.b_K[0]
    assert torch.allclose(cache["blocks.1.attn.k"][:, :, 0], expected, atol=1e-5)
    assert torch.allclose(cache["blocks.1.attn.k"][:, :, 1], clean["blocks.1.attn.k"][:, :, 1])  # other head untouched
    assert torch.allclose(cache["blocks.1.attn.q"], clean["blocks.1.attn.q"])
    assert torch.allclose(cache["blocks.1.resid_pre"], clean["blocks.1.resid_pre"])  # the sender itself runs clean
    # the direct path alone changes the logits by exactly the sender's output read through W_U
    logits = model.run_with_hooks(tokens, circuits.path_hooks(model, (0, 1), path="direct"))
    assert torch.allclose(logits, clean["logits"] - clean["blocks.0.attn.head_out"][:, :, 1] @ model.W_U, atol=1e-4)


def test_path_ablation_bad_inputs():
    from interplab.toy import circuits

    model = tiny()
    with pytest.raises(ValueError, match="path must be one of"):
        circuits.path_hooks(model, (0, 0), (1, 0), "x")
    with pytest.raises(ValueError, match="later layer"):
        circuits.path_hooks(model, (1, 0), (0, 0), "k")
    with pytest.raises(ValueError, match="needs a receiver"):
        circuits.path_hooks(model, (0, 0), None, "q")
    with pytest.raises(IndexError, match="out of range"):
        circuits.path_hooks(model, (0, 5), (1, 0), "k")
    with pytest.raises(ValueError, match="reference tokens"):
        circuits.path_hooks(model, (0, 0), (1, 0), "k", kind="mean")


def test_induction_head_finds_its_target_through_k_composition(trained):
    from interplab.toy import circuits

    model, _ = trained
    check = toy.check_induction(model, ablate=False)
    table = circuits.path_ablation_table(model, check.previous_token_head, check.head, lengths=(9, 19), batch_size=32)
    assert table.loc["none", "accuracy"] >= 0.9
    assert table.loc["k", "accuracy"] < 0.3 and table.loc["all", "accuracy"] < 0.3
    for path in ("q", "v", "direct"):
        assert table.loc[path, "accuracy"] >= 0.9, table
