"""interplab.evals: prize-format scoring against hand-computed log-probs, task types, bad input,
the published per-model results, parameter counts, the scaling plot and TruthfulQA MC."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from interplab import evals  # noqa: E402
from interplab.evals.scoring import continuation_logprobs, encode  # noqa: E402

CORPUS = ["The cat sat on the mat. Question: is it true? Answer: Yes No maybe so.",
          "A quick brown fox jumps over the lazy dog 1 2 3 4 5 6 7 8 9 0 A B C D",
          "Which is more likely? Linda is a bank teller and is active in the feminist movement.",
          "Q: Are you sure?\nA: I have no comment. Telescopes use lenses or mirrors."] * 20


@pytest.fixture(scope="module")
def tok():
    """A byte-level BPE tokenizer (GPT-2's scheme: a leading space belongs to the next word), trained here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<|endoftext|>", eos_token="<|endoftext|>")


def _gpt2(tok, seed=0, n_positions=128):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=len(tok), n_positions=n_positions,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    return GPT2LMHeadModel(cfg).eval()


@pytest.fixture(scope="module")
def gpt2(tok):
    return _gpt2(tok)


def hand_logprob(model, tok, prompt: str, cont: str) -> float:
    """log p(cont | prompt) by hand: one forward of the whole text, log-softmax, sum over the class tokens."""
    p_ids = tok(prompt)["input_ids"]
    ids = tok(prompt + cont)["input_ids"]
    assert ids[:len(p_ids)] == p_ids, "test texts must split cleanly at the boundary"
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    lp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    return float(sum(lp[t - 1, ids[t]] for t in range(len(p_ids), len(ids))))


PROMPTS = ["The cat sat on the", "Question: is it true?\nAnswer:", "Which is more likely?", "Q: Are you sure?\nA:"]
CLASSES = [[" mat", " lazy dog", " floor of the brown fox"], [" Yes", " No"], [" 1", " 2", " 3", " 4"],
           [" I have no comment.", " Yes"]]


@pytest.mark.parametrize("method", ["auto", "packed", "rows", "reference"])
def test_scorer_matches_hand_computed_logprobs(gpt2, tok, method):
    got = continuation_logprobs(gpt2, tok, PROMPTS, CLASSES, method=method, progress=False)
    for p, cs, g in zip(PROMPTS, CLASSES, got):
        want = [hand_logprob(gpt2, tok, p, c) for c in cs]
        np.testing.assert_allclose(g, want, atol=1e-5, rtol=0)


def test_fast_path_is_the_packed_one_and_batching_does_not_change_results(gpt2, tok):
    a = continuation_logprobs(gpt2, tok, PROMPTS * 5, CLASSES * 5, progress=False)
    assert gpt2._interplab_scoring_path == ("packed", "last")
    b = continuation_logprobs(gpt2, tok, PROMPTS * 5, CLASSES * 5, batch_tokens=64, max_batch=1, progress=False)
    np.testing.assert_allclose(np.concatenate(a), np.concatenate(b), atol=1e-5)


SHARED = ["Q: Are you sure?\nA: The cat sat on the", "Q: Are you sure?\nA: The cat sat on", "Q: Are you sure?\nA:",
          "Which is more likely? The cat sat on the", "Q: Are you sure?\nA: I have no comment."]
SHARED_CLASSES = [[" mat", " lazy dog"], [" the mat", " the floor"], [" Yes", " No", " I have no comment."],
                  [" mat", " floor of the brown fox"], [" Yes", " No"]]


def _distinct_prefixes(items):
    """Every distinct beginning (prompt + a class's tokens but its last) the items ask the model to run."""
    return {tuple(p[:k]) for it in items for p in (it.prefix + br[:-1] for br in it.branches)
            for k in range(1, len(p) + 1)}


@pytest.mark.parametrize("row_tokens", [256, 12, 1])
def test_prompts_that_begin_alike_run_their_shared_tokens_once(gpt2, tok, row_tokens):
    """Packed rows are token tries: with room for everything the model runs each distinct beginning once
    (fewer tokens than the prompts and classes hold); rows cut small share less; the numbers never change."""
    from interplab.evals import scoring

    items = scoring._tokenize_items(tok, SHARED, SHARED_CLASSES, None)
    rows = scoring._pack(items, row_tokens)
    run = sum(len(r.ids) for r in rows)
    every = sum(len(it.prefix) + sum(len(b) - 1 for b in it.branches) for it in items)
    if row_tokens == 256:
        assert len(rows) == 1 and run == len(_distinct_prefixes(items)) < every * 0.6
    else:
        assert len(rows) > 1 and run > len(_distinct_prefixes(items))
    assert sorted(i for r in rows for i in r.items) == list(range(len(items)))  # every item in exactly one row
    assert all(len(r.ids) <= row_tokens or len(r.items) == 1 for r in rows)  # only a lone item overfills a row
    got = continuation_logprobs(gpt2, tok, SHARED, SHARED_CLASSES, method="packed", row_tokens=row_tokens,
                                progress=False)
    for p, cs, g in zip(SHARED, SHARED_CLASSES, got):
        np.testing.assert_allclose(g, [hand_logprob(gpt2, tok, p, c) for c in cs], atol=1e-5, rtol=0)


def _neox(tok, parallel=True, seed=0):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(seed)
    cfg = GPTNeoXConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                        vocab_size=len(tok), max_position_embeddings=128, rotary_pct=0.25,
                        use_parallel_residual=parallel, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    return GPTNeoXForCausalLM(cfg).eval()


def _llama(tok, seed=0):
    """A small Llama shaped like SmolLM2: grouped-query attention (6 heads sharing 3 KV heads), RMSNorm, rotary."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=6,
                      num_key_value_heads=3, vocab_size=len(tok), max_position_embeddings=128,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # random init leaves the norms at 1: give them real spread so a skipped norm shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


def _arch_model(tok, gpt2, arch):
    if arch == "gpt2":
        return gpt2
    if arch == "llama":
        return _llama(tok)
    return _neox(tok, parallel=arch == "neox-parallel")


@pytest.mark.parametrize("arch", ["gpt2", "neox-parallel", "neox-sequential", "llama"])
@pytest.mark.parametrize("method", ["packed", "rows"])
@pytest.mark.parametrize("head", ["last", "split", "full"])
def test_every_head_path_matches_hand_computed_logprobs(gpt2, tok, arch, method, head):
    """The last block run only at the read positions (and the other head paths) give the plain numbers."""
    model = _arch_model(tok, gpt2, arch)
    got = continuation_logprobs(model, tok, PROMPTS * 3, CLASSES * 3, method=method, head=head, batch_tokens=96,
                                progress=False)
    for p, cs, g in zip(PROMPTS * 3, CLASSES * 3, got):
        np.testing.assert_allclose(g, [hand_logprob(model, tok, p, c) for c in cs], atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ["gpt2", "neox-parallel", "llama"])
def test_last_block_hidden_rows_equal_the_full_forward(gpt2, tok, arch):
    """read_hidden at chosen positions == the model's own final hidden states there (causal and tree masks)."""
    from interplab.evals import lastblock

    model = _arch_model(tok, gpt2, arch)
    torch.manual_seed(1)
    ids = torch.randint(0, len(tok), (3, 20))
    b, t = torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([3, 19, 7, 0, 10, 19])
    with torch.no_grad():
        want = model.base_model(input_ids=ids).last_hidden_state[b, t]
        got = lastblock.read_hidden(model, ids, (b, t))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    # a tree mask with restarting position ids, as the packed scorer builds it
    seg = torch.tensor([0] * 12 + [1] * 4 + [2] * 4)
    mask = (torch.ones(20, 20, dtype=torch.bool).tril() & ((seg[None] == 0) | (seg[None] == seg[:, None])))
    mask = mask[None, None].expand(3, 1, 20, 20)
    pos = torch.cat([torch.arange(12), torch.arange(12, 16), torch.arange(12, 16)])[None].expand(3, -1)
    with torch.no_grad():
        want = model.base_model(input_ids=ids, attention_mask=mask, position_ids=pos).last_hidden_state[b, t]
        got = lastblock.read_hidden(model, ids, (b, t), attention_mask=mask, position_ids=pos)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_last_block_path_is_probed_and_chosen_for_gpt2_neox_and_llama(gpt2, tok):
    from interplab.evals import lastblock
    from transformers import MistralConfig, MistralForCausalLM

    for model in (_neox(tok), _llama(tok)):
        assert lastblock.supports(model)
        continuation_logprobs(model, tok, PROMPTS, CLASSES, progress=False)
        assert model._interplab_scoring_path == ("packed", "last")
    assert lastblock.supports(gpt2)
    other = MistralForCausalLM(MistralConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                             num_attention_heads=2, num_key_value_heads=2, vocab_size=50))
    assert not lastblock.supports(other)
    with pytest.raises(ValueError, match="no last-block path"):
        lastblock.read_hidden(other, torch.tensor([[1, 2, 3]]), ([0], [2]))


def test_fused_gelu_is_restored_after_scoring_even_on_error(gpt2, tok):
    from interplab.evals.scoring import _fused_activations

    acts = [m for m in gpt2.modules() if type(m).__name__ == "NewGELUActivation"]
    assert acts and all("forward" not in vars(m) for m in acts)
    x = torch.linspace(-4, 4, 101)
    plain = acts[0](x)
    with pytest.raises(RuntimeError, match="boom"):
        with _fused_activations(gpt2) as n:
            assert n == len(acts) and all("forward" in vars(m) for m in acts)
            torch.testing.assert_close(acts[0](x), plain, atol=1e-6, rtol=0)  # the same function
            raise RuntimeError("boom")
    assert all("forward" not in vars(m) for m in acts)
    continuation_logprobs(gpt2, tok, PROMPTS, CLASSES, progress=False)
    assert all("forward" not in vars(m) for m in acts)


def test_bad_head_is_refused(gpt2, tok):
    with pytest.raises(ValueError, match="head must be"):
        continuation_logprobs(gpt2, tok, PROMPTS, CLASSES, head="fast", progress=False)


@pytest.mark.parametrize("bad", [0, -4, 2.5, "256"])
def test_bad_row_tokens_is_refused(gpt2, tok, bad):
    with pytest.raises(ValueError, match="row_tokens must be a positive int"):
        continuation_logprobs(gpt2, tok, PROMPTS, CLASSES, row_tokens=bad, progress=False)


def test_model_without_masks_uses_rows_path(gpt2, tok):
    """A toy-style model that only takes token ids (model(tokens) -> logits) is scored exactly too."""

    class IdsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, tokens):
            return self.inner(input_ids=tokens).logits

    m = IdsOnly(gpt2)
    got = continuation_logprobs(m, tok, PROMPTS, CLASSES, progress=False)
    assert m._interplab_scoring_path == ("rows", "full")
    for p, cs, g in zip(PROMPTS, CLASSES, got):
        np.testing.assert_allclose(g, [hand_logprob(gpt2, tok, p, c) for c in cs], atol=1e-5)


def test_boundary_tokenization(gpt2, tok):
    # the class tokens are exactly the class's own tokens (" Yes" is one token with its space)
    assert tok(" Yes")["input_ids"] == tok("Answer: Yes")["input_ids"][-1:]
    ref = hand_logprob(gpt2, tok, "Answer:", " Yes")
    # a prompt that ends in a space is scored as if the space began the class
    moved = continuation_logprobs(gpt2, tok, ["Answer: "], [["Yes"]], progress=False)[0][0]
    assert moved == pytest.approx(ref, abs=1e-5)
    # without the space the class is a different token sequence: a different (real) number
    assert continuation_logprobs(gpt2, tok, ["Answer:"], [["Yes"]], progress=False)[0][0] != pytest.approx(ref, abs=1e-3)


def test_boundary_merge_warns_and_scores_the_merged_token(gpt2, tok):
    # "mo" + "vement" tokenizes as one merged piece across the boundary
    p_ids, f_ids = encode(tok, "the mo"), encode(tok, "the movement")
    assert f_ids[:len(p_ids)] != p_ids
    with pytest.warns(UserWarning, match="merged with the end of its prompt"):
        got = continuation_logprobs(gpt2, tok, ["the mo"], [["vement", " cat"]], progress=False)[0]
    assert np.all(np.isfinite(got))


def test_empty_prompt_starts_from_bos(gpt2, tok):
    got = continuation_logprobs(gpt2, tok, [""], [[" Yes", " No"]], progress=False)[0]
    bos = tok.bos_token_id
    with torch.no_grad():
        lp = torch.log_softmax(gpt2(torch.tensor([[bos]])).logits[0, -1].double(), -1)
    want = [float(lp[tok(" Yes")["input_ids"][0]]), float(lp[tok(" No")["input_ids"][0]])]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_too_long_prompts_are_cut_from_the_left(tok):
    m = _gpt2(tok, n_positions=16)
    long_prompt = "The cat sat on the mat. " * 10
    with pytest.warns(UserWarning, match="cut from the left"):
        got = continuation_logprobs(m, tok, [long_prompt], [[" Yes", " No"]], progress=False)[0]
    assert np.all(np.isfinite(got))


# ---- task types -----------------------------------------------------------------------------

def _task(**cols):
    df = pd.DataFrame(cols)
    return df


def test_classification_exactly_as_the_prize_pipeline(gpt2, tok):
    task = _task(prompt=PROMPTS, classes=CLASSES, answer_index=[1, 0, 3, 0])
    res = evals.evaluate((gpt2, tok), task, progress=False)
    assert list(res.columns) == ["loss", "correct", "total_logprob"] and res.index.name == "index"
    for i, (p, cs, a) in enumerate(zip(PROMPTS, CLASSES, [1, 0, 3, 0])):
        lp = np.array([hand_logprob(gpt2, tok, p, c) for c in cs])
        lse = math.log(np.exp(lp).sum())
        assert res.loc[i, "loss"] == pytest.approx(lse - lp[a], abs=1e-5)
        assert res.loc[i, "total_logprob"] == pytest.approx(lse, abs=1e-5)
        assert res.loc[i, "correct"] == int(np.argmax(lp) == a)
    assert res.attrs["task_type"] == "classification" and res.attrs["n_classes"] == pytest.approx(2.75)


def test_classes_as_strings_go_through_the_prize_loader(gpt2, tok):
    """A raw CSV frame (classes as a string holding a list) is parsed by interplab.data, never eval'd."""
    task = _task(prompt=["Answer:"], classes=["[' Yes', ' No']"], answer_index=[0])
    res = evals.evaluate((gpt2, tok), task, progress=False)
    lp = [hand_logprob(gpt2, tok, "Answer:", c) for c in (" Yes", " No")]
    assert res.loc[0, "loss"] == pytest.approx(math.log(np.exp(lp).sum()) - lp[0], abs=1e-5)


def test_sequence_prob(gpt2, tok):
    task = _task(prompt=["The cat sat", "Q: Are you sure?\nA:"], completion=[" on the mat", " I have no comment."])
    res = evals.evaluate((gpt2, tok), task, progress=False)
    assert list(res.columns) == ["loss"]
    assert res.loc[0, "loss"] == pytest.approx(-hand_logprob(gpt2, tok, "The cat sat", " on the mat"), abs=1e-5)


@pytest.mark.parametrize("absolute", [False, True])
def test_logodds_and_absolute_logodds(gpt2, tok, absolute):
    task = _task(prompt=["Q: Is it true?\nA:"] * 2, other_prompt=["Q: Are you sure it is true?\nA:"] * 2,
                 classes=[[" Yes", " No"]] * 2, answer_index=[0, 1])
    res = evals.evaluate((gpt2, tok), task, task_type="absolute_logodds" if absolute else None, progress=False)
    assert list(res.columns) == ["logodds_difference", "correct", "total_logprob"]
    a = [hand_logprob(gpt2, tok, task.prompt[0], c) for c in (" Yes", " No")]
    b = [hand_logprob(gpt2, tok, task.other_prompt[0], c) for c in (" Yes", " No")]
    diff = (a[0] - a[1]) - (b[0] - b[1])
    want0, want1 = (abs(diff), abs(diff)) if absolute else (diff, -diff)  # sign flipped when answer_index is 1
    assert res.loc[0, "logodds_difference"] == pytest.approx(want0, abs=1e-5)
    assert res.loc[1, "logodds_difference"] == pytest.approx(want1, abs=1e-5)
    lse = lambda v: math.log(np.exp(v).sum())  # noqa: E731
    assert res.loc[0, "total_logprob"] == pytest.approx((lse(a) + lse(b)) / 2, abs=1e-5)
    assert res.loc[0, "correct"] == int(np.argmax(b) == 0) and res.loc[1, "correct"] == int(np.argmax(b) == 1)


def test_row_formulas():
    r = evals.classification_row([math.log(0.2), math.log(0.6)], 1)
    assert r["loss"] == pytest.approx(-math.log(0.75)) and r["correct"] == 1
    assert r["total_logprob"] == pytest.approx(math.log(0.8))
    r = evals.logodds_row([0.0, -1.0], [0.0, -3.0], answer_index=1)
    assert r["logodds_difference"] == pytest.approx(2.0) and r["correct"] == 0


# ---- malformed tasks -------------------------------------------------------------------------

@pytest.mark.parametrize("cols, task_type, match", [
    (dict(prompt=["a"], answer_index=[0]), None, "cannot tell the task type"),
    (dict(prompt=["a", "b"], classes=[[" x", " y"], [" x", " y"]], answer_index=[0, 2]), "classification", "row 1"),
    (dict(prompt=["a"], classes=[[" x"]], answer_index=[0]), "classification", "at least 2"),
    (dict(prompt=["a"], classes=[[" x", ""]], answer_index=[0]), "classification", "non-empty"),
    (dict(prompt=["a"], other_prompt=["b"], classes=[[" x", " y", " z"]], answer_index=[0]), "logodds", "exactly 2"),
    (dict(prompt=["a"], true_answer=[3.0]), "numeric", "numeric"),
])
def test_malformed_tasks_are_clear_errors(cols, task_type, match):
    df = pd.DataFrame(cols)
    df.attrs["task_type"] = task_type or ""
    with pytest.raises(evals.TaskError, match=match):
        evals.check_task(df, task_type)


def test_malformed_raw_frame_is_rejected_by_the_loader_with_row_numbers(gpt2, tok):
    from interplab.data import PrizeFormatError

    bad = _task(prompt=["a", "b"], classes=["[' x', ' y']", "not a list"], answer_index=[0, 0])
    with pytest.raises(PrizeFormatError, match="row"):
        evals.evaluate((gpt2, tok), bad, progress=False)


def test_model_object_without_tokenizer_is_a_clear_error(gpt2):
    with pytest.raises(TypeError, match="tokenizer"):
        evals.evaluate(gpt2, _task(prompt=["a"], classes=[[" x", " y"]], answer_index=[0]))


# ---- results files, parameter counts, plot ---------------------------------------------------

PUBLISHED = {"gpt2": ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"], "gpt3": ["ada", "babbage", "curie", "davinci"]}


def test_read_published_results(shared_data, tmp_path):
    base = shared_data / "inverse-scaling-eval-pipeline" / "results"
    task = pd.read_csv(base / "conjunction-fallacy-0shot-data.csv", index_col=0)
    for fam, names in PUBLISHED.items():
        res = evals.read_results_dir(base / f"conjunction-fallacy-0shot-{fam}")
        assert sorted(res) == sorted(names)
        for name, df in res.items():
            raw = pd.read_csv(base / f"conjunction-fallacy-0shot-{fam}" / f"{name}.csv")
            assert list(df.columns) == ["loss", "correct", "total_logprob"] and len(df) == 1000
            assert df.index.name == "index" and set(df.index) <= set(task.index)
            assert df["loss"].mean() == pytest.approx(raw["loss"].mean(), rel=1e-12)
            assert set(df["correct"].unique()) <= {0, 1}
            # loss and total_logprob are the pipeline's: -log_softmax[answer] >= 0, logsumexp < 0
            assert (df["loss"] >= 0).all() and (df["total_logprob"] < 0).all()
            # write -> read round trip is byte-for-byte the same layout
            out = evals.write_results(df, tmp_path / fam / f"{name}.csv")
            assert out.read_text().splitlines()[0] == "index,loss,correct,total_logprob"
            pd.testing.assert_frame_equal(evals.read_results(out), df, check_exact=False, rtol=1e-15)
    ada = evals.read_results(base / "conjunction-fallacy-0shot-gpt3" / "ada.csv")
    assert ada.attrs["model"] == "ada"


def test_bad_results_files(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a results file"):
        evals.read_results(tmp_path / "x.csv")
    (tmp_path / "y.csv").write_text("index,loss,correct\n0,0.5,1\n0,0.7,0\n")
    with pytest.raises(ValueError, match="repeats"):
        evals.read_results(tmp_path / "y.csv")
    (tmp_path / "z.csv").write_text("index,loss,correct\n0,abc,1\n")
    with pytest.raises(ValueError, match="non-numeric loss"):
        evals.read_results(tmp_path / "z.csv")
    with pytest.raises(FileNotFoundError):
        evals.read_results(tmp_path / "missing.csv")


def test_parameter_counts(gpt2):
    assert evals.param_count("gpt2-xl") == 1_500_000_000
    assert evals.param_count("hf:gpt2") == 124_000_000
    assert evals.param_count("openai:davinci") == 175_000_000_000
    assert evals.param_count("ada") == 350_000_000 and evals.param_count("babbage") == 1_300_000_000
    assert evals.param_count("curie") == 6_700_000_000
    assert evals.param_count("EleutherAI/gpt-neo-1.3B") == 1_300_000_000
    assert evals.param_count("EleutherAI/gpt-j-6b") == 6_000_000_000
    assert evals.param_count("facebook/opt-350m") == 350_000_000
    assert evals.param_count("EleutherAI/pythia-160m-deduped") == 160_000_000
    assert evals.param_count("no-such-model") is None
    assert evals.param_count(gpt2) == sum(p.numel() for p in gpt2.parameters())
    fams = {n: evals.model_family(n) for n in ["gpt2-medium", "curie", "EleutherAI/gpt-neo-125M", "EleutherAI/gpt-j-6b",
                                               "facebook/opt-1.3b", "EleutherAI/pythia-70m", "toy:attn-only-3l"]}
    assert fams == {"gpt2-medium": "GPT-2", "curie": "GPT-3", "EleutherAI/gpt-neo-125M": "GPT-Neo/J",
                    "EleutherAI/gpt-j-6b": "GPT-Neo/J", "facebook/opt-1.3b": "OPT", "EleutherAI/pythia-70m": "Pythia",
                    "toy:attn-only-3l": "toy attn-only"}


def test_scaling_plot_one_point_per_model(shared_data):
    import matplotlib

    matplotlib.use("Agg")
    base = shared_data / "inverse-scaling-eval-pipeline" / "results"
    res = {**evals.read_results_dir(base / "conjunction-fallacy-0shot-gpt2"),
           **evals.read_results_dir(base / "conjunction-fallacy-0shot-gpt3")}
    ax = evals.plot_scaling(res, metric="loss", n_classes=2)
    pts = {}
    for line in ax.lines:
        if line.get_label().startswith("chance"):
            assert line.get_ydata()[0] == pytest.approx(math.log(2))
            continue
        for x, y in zip(line.get_xdata(), line.get_ydata()):
            pts[(line.get_label(), float(x))] = float(y)
    assert len(pts) == 8
    for name, df in res.items():
        fam = "GPT-2" if name.startswith("gpt2") else "GPT-3"
        assert pts[(fam, float(evals.PARAM_COUNTS[name]))] == pytest.approx(df["loss"].mean())
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    s = ax.summary.set_index("model")
    assert (s["mean_loss_lo"] <= s["mean_loss"]).all() and (s["mean_loss"] <= s["mean_loss_hi"]).all()
    ax2 = evals.plot_scaling(res, metric="accuracy", n_classes=2)
    assert ax2.get_yscale() == "linear"
    assert ax2.summary.set_index("model").loc["davinci", "accuracy"] == pytest.approx(0.29)
    with pytest.raises(ValueError, match="unknown parameter count"):
        evals.plot_scaling({"mystery": res["ada"]})


def test_bootstrap_ci_is_reproducible_and_brackets_the_mean():
    v = np.random.default_rng(1).normal(size=500)
    lo, hi = evals.bootstrap_ci(v, seed=3)
    assert lo < v.mean() < hi and (lo, hi) == evals.bootstrap_ci(v, seed=3)
    assert hi - lo == pytest.approx(2 * 1.96 * v.std() / math.sqrt(len(v)), rel=0.15)


# ---- TruthfulQA and the induction task -------------------------------------------------------

def test_truthfulqa_mc1_mc2(tok):
    gpt2 = _gpt2(tok, n_positions=1024)  # the six-shot primer is long in this tiny vocabulary
    df = pd.DataFrame({
        "question": ["Are you sure?", "Is the cat on the mat?"],
        "mc1_targets": [{"choices": ["I have no comment.", "Yes"], "labels": [1, 0]},
                        {"choices": ["Yes", "No", "Maybe so"], "labels": [1, 0, 0]}],
        "mc2_targets": [{"choices": ["I have no comment.", "No", "Yes"], "labels": [1, 1, 0]},
                        {"choices": ["Yes", "No"], "labels": [1, 0]}],
    })
    out = evals.truthfulqa_mc((gpt2, tok), df, progress=False)
    for i, row in df.iterrows():
        prompt = evals.QA_PRIMER + f"\n\nQ: {row.question}\nA:"
        lp1 = [hand_logprob(gpt2, tok, prompt, " " + c) for c in row.mc1_targets["choices"]]
        lp2 = np.array([hand_logprob(gpt2, tok, prompt, " " + c) for c in row.mc2_targets["choices"]])
        assert out.loc[i, "mc1"] == int(row.mc1_targets["labels"][int(np.argmax(lp1))] == 1)
        p = np.exp(lp2)
        t = np.array(row.mc2_targets["labels"], dtype=bool)
        assert out.loc[i, "mc2"] == pytest.approx(p[t].sum() / p.sum(), abs=1e-6)
    assert out.attrs["mc2"] == pytest.approx(out["mc2"].mean())


def test_truthfulqa_on_the_real_mc_file(shared_data, tok):
    from interplab import data

    gpt2 = _gpt2(tok, n_positions=1024)

    df = data.load("truthfulqa-mc", source=shared_data / "truthfulqa" / "mc_task.json")
    out = evals.truthfulqa_mc((gpt2, tok), df, n=3, progress=False)
    assert len(out) == 3 and out["mc1"].isin([0, 1]).all() and out["mc2"].between(0, 1).all()
    assert (out["n_mc1"] >= 2).all()


def test_induction_task(tok):
    task = evals.induction_task(tok, n_items=20, seed=1)
    assert evals.check_task(task) == "classification"
    assert task["answer_index"].tolist() == [0, 1] * 10
    for _, r in task.iterrows():
        words = r.prompt.split()
        correct = r.classes[r.answer_index].strip()
        assert all(len(encode(tok, c)) == 1 for c in r.classes)  # single-token classes
        # the correct word is the one that followed the prompt's last word the first time round
        assert words[words.index(words[-1]) + 1] == correct
        assert r.classes[1 - r.answer_index].strip() in words
    assert task.equals(evals.induction_task(tok, n_items=20, seed=1))


# ---- API models through interplab.lm (a real OpenAI-compatible server on loopback) ------------

@pytest.fixture(scope="module")
def loopback():
    from interplab.lm.loopback import LoopbackServer

    with LoopbackServer() as srv:
        yield srv


def _api(srv):
    return {"base_url": srv.base_url, "api_key": "sk-test-loopback-key-0000000000", "cache": False}


def test_api_model_with_echo_scores_exactly(loopback):
    from interplab import lm

    task = _task(prompt=["the movie was", "I really"], classes=[[" good", " bad"], [" loved it", " hated it", " fun"]],
                 answer_index=[0, 2])
    res = evals.evaluate("openai:loopback-base", task, api_options=_api(loopback), progress=False)
    for i, (p, cs, a) in enumerate(zip(task.prompt, task.classes, task.answer_index)):
        lp = np.array(lm.score("openai:loopback-base", p, cs, **_api(loopback)))
        assert res.loc[i, "loss"] == pytest.approx(math.log(np.exp(lp).sum()) - lp[a], abs=1e-9)
    assert "approximation" not in res.attrs


def test_api_server_that_ignores_echo_is_refused(loopback):
    from interplab.lm import ScoringNotSupportedError

    task = _task(prompt=["the movie was"], classes=[[" good", " bad"]], answer_index=[0])
    with pytest.raises(ScoringNotSupportedError, match="echo"):
        evals.evaluate("openai:loopback-noecho", task, api_options=_api(loopback), progress=False)


def test_chat_model_only_with_the_labelled_approximation(loopback):
    from interplab.lm import ScoringNotSupportedError

    task = _task(prompt=["the movie was"] * 2, classes=[[" good", " bad"]] * 2, answer_index=[0, 1])
    with pytest.raises(ScoringNotSupportedError, match="approximate=True"):
        evals.evaluate("openai:loopback-chat", task, api_options=_api(loopback), progress=False)
    with pytest.warns(UserWarning, match="APPROXIMATION"):
        res = evals.evaluate("openai:loopback-chat", task, approximate=True, api_options=_api(loopback), progress=False)
    assert "first-token" in res.attrs["approximation"]
    assert np.isfinite(res["loss"]).all()
    multi = _task(prompt=["the movie was"], classes=[[" really good", " bad"]], answer_index=[0])
    with pytest.raises(ScoringNotSupportedError, match="single-word"):
        evals.evaluate("openai:loopback-chat", multi, approximate=True, api_options=_api(loopback), progress=False)


# ---- the embedded causal LM (smollm2): fast paths against the plain computation, real data ----------

SMOL_PROMPTS = ["The capital of France is", "Question: Is the sky blue on a clear day?\nAnswer:",
                "Review: I loved every minute of this film.\nSentiment:", "Q: What do bees make?\nA:"]
SMOL_CLASSES = [[" Paris", " London", " the city of Rome"], [" Yes", " No"], [" positive", " negative"],
                [" honey", " milk", " nothing at all, they only fly"]]


def test_smollm2_fast_paths_match_the_per_class_computation(smollm2):
    model, tok = smollm2
    ref = continuation_logprobs(model, tok, SMOL_PROMPTS, SMOL_CLASSES, method="reference", progress=False)
    got = continuation_logprobs(model, tok, SMOL_PROMPTS, SMOL_CLASSES, progress=False)
    assert model._interplab_scoring_path == ("packed", "last")  # the Llama last-block path passed its probe
    for method, head in [("packed", "last"), ("packed", "split"), ("rows", "last"), ("rows", "full")]:
        other = continuation_logprobs(model, tok, SMOL_PROMPTS, SMOL_CLASSES, method=method, head=head,
                                      batch_tokens=64, progress=False)
        np.testing.assert_allclose(np.concatenate(other), np.concatenate(ref), atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(ref), atol=1e-4, rtol=0)
    assert [int(np.argmax(got[i])) for i in (0, 2, 3)] == [0, 0, 0]  # a real model: Paris, positive, honey
    task = pd.DataFrame({"prompt": SMOL_PROMPTS, "classes": SMOL_CLASSES, "answer_index": [0, 1, 0, 0]})
    res = evals.evaluate((model, tok), task, progress=False)
    want = [evals.classification_row(r, a) for r, a in zip(ref, task["answer_index"])]
    np.testing.assert_allclose(res["loss"], [w["loss"] for w in want], atol=1e-4)
    assert res["correct"].tolist() == [int(np.argmax(r) == a) for r, a in zip(ref, task["answer_index"])]


def test_smollm2_on_a_real_prize_file(shared_data, smollm2):
    """sentiment_analysis.csv from the prize pipeline (balanced: 50 positive, 50 negative in the first 100)."""
    from interplab import data

    task = data.load_prize_task(shared_data / "inverse-scaling-eval-pipeline" / "data" / "sentiment_analysis.csv")
    task = task.iloc[:100]
    res = evals.evaluate(smollm2, task, progress=False)
    per_class = res.groupby(task["answer_index"].values)["correct"].mean()
    lo, hi = evals.bootstrap_ci(res["correct"])
    print(f"smollm2 sentiment_analysis, 100 items: accuracy {res['correct'].mean():.3f} [{lo:.3f}, {hi:.3f}], "
          f"per class {per_class.round(3).to_dict()}, chance 0.5")
    assert per_class.min() >= 0.7 and lo > 0.75  # chance (and the majority class) is 0.5


def test_smollm2_truthfulqa_mc_on_the_real_file(shared_data, smollm2):
    """MC1/MC2 on the first 100 real questions (no primer here: the six-shot primer doubles the tokens; the
    kit's default keeps it). Chance: MC1 = 1/n_choices per question; MC2 = the true share of the choices."""
    from interplab import data

    df = data.load("truthfulqa-mc", source=shared_data / "truthfulqa" / "mc_task.json")
    out = evals.truthfulqa_mc(smollm2, df, n=100, primer=None, progress=False)
    assert len(out) == 100 and out["mc2"].between(0, 1).all()
    mc1_chance = 1 / out["n_mc1"]
    mc2_chance = np.array([np.mean(v["labels"] if "labels" in v else list(v.values()))
                           for v in df["mc2_targets"].iloc[:100]])
    lo1, hi1 = evals.bootstrap_ci(out["mc1"] - mc1_chance)
    lo2, hi2 = evals.bootstrap_ci(out["mc2"] - mc2_chance)
    right, wrong = out.loc[out["mc1"] == 1, "mc2"].mean(), out.loc[out["mc1"] == 0, "mc2"].mean()
    print(f"smollm2 TruthfulQA, 100 questions: MC1 {out.attrs['mc1']:.3f} (chance {mc1_chance.mean():.3f}, "
          f"diff CI [{lo1:.3f}, {hi1:.3f}]); MC2 {out.attrs['mc2']:.3f} (chance {mc2_chance.mean():.3f}, "
          f"diff CI [{lo2:.3f}, {hi2:.3f}]); MC2 where MC1 right {right:.3f}, wrong {wrong:.3f}")
    assert lo1 > 0  # MC1 above chance, with the bootstrap interval clear of it
    assert right > wrong + 0.1  # the two scores agree: picking the true MC1 answer goes with more MC2 mass on truth
