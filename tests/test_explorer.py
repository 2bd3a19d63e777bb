"""The model explorer: data it shows is the model's, and the page works offline in Chromium."""
import json
import re

import numpy as np
import pytest
import torch

import interplab
from interplab.explorer import induction_lens, logit_lens, neuron_selectivity, trace


def _payload(view):
    m = re.search(r"<script type='application/json' id='[^']+-data'>(.*?)</script>", view.body, re.S)
    return json.loads(m.group(1).replace("<\\/", "</"))


@pytest.fixture(scope="module")
def tiny_gpt2(minilm):
    from transformers import GPT2Config, GPT2LMHeadModel

    _, tok = minilm
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=tok.vocab_size, n_positions=64,
                     bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, attn_implementation="eager")
    return GPT2LMHeadModel(cfg).eval(), tok


def test_minilm_view_data_is_the_models(minilm):
    model, tok = minilm
    text = "The cat sat on the mat because the cat was tired."
    examples = ["A dog barked at the mailman.", "Stock markets fell sharply today.", "The kitten slept."]
    view = interplab.explore(minilm, text, neuron=(3, 7), examples=examples)
    data = _payload(view)
    assert data["tokens"][0] == "[CLS]" and len(data["attn"]) == 6 and len(data["attn"][0]) == 12
    assert data["lens"] is None  # an encoder has no next-token logit lens
    assert data["neuron_order"][0] == "3.7"
    tr = trace(model, tok, text)
    assert np.allclose(np.array(data["attn"]), tr.attentions, atol=1e-3)
    n = data["neurons"]["3.7"]
    assert np.allclose(n["acts"], tr.neurons[3][:, 7], atol=1e-3)
    maxima = [max(trace(model, tok, e).neurons[3][:, 7]) for e in examples]
    active = sorted((m for m in maxima if m > 0), reverse=True)  # texts that do not activate it are not its examples
    assert [e["max"] for e in n["examples"]] == pytest.approx(active, abs=1e-3)
    assert all(e["max"] > 0 for nd in data["neurons"].values() for e in nd["examples"])
    assert "<script src=" not in view.body and "http" not in view.body.split("<script type='text/javascript'>", 1)[1]


def test_causal_lm_logit_lens(tiny_gpt2):
    model, tok = tiny_gpt2
    text = "the cat sat on the mat"
    tr = trace(model, tok, text, top_k=3)
    assert len(tr.lens) == model.config.n_layer + 1 and len(tr.lens[0]) == len(tr.tokens)
    logits = model(torch.tensor([tok(text)["input_ids"]])).logits[0]
    top = tok.convert_ids_to_tokens(logits.argmax(-1).tolist())
    assert [pos[0][0] for pos in tr.lens[-1]] == top  # the last lens row is the model's own prediction


@pytest.fixture(scope="module")
def tiny_llama(minilm):
    from transformers import LlamaConfig, LlamaForCausalLM

    _, tok = minilm
    torch.manual_seed(0)
    cfg = LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=48, num_attention_heads=4, num_key_value_heads=2,
                      vocab_size=tok.vocab_size, max_position_embeddings=64, attn_implementation="eager")
    return LlamaForCausalLM(cfg).eval(), tok


def test_llama_neurons_are_the_gated_product_and_the_lens_ends_at_the_output(tiny_llama):
    model, tok = tiny_llama
    text = "the cat sat on the mat"
    tr = trace(model, tok, text, top_k=3)
    x = torch.tensor([tok(text)["input_ids"]])
    mlp_in = {}  # each MLP's input, caught independently of the explorer's hooks
    hooks = [l.mlp.register_forward_pre_hook(lambda m, inp, i=i: mlp_in.__setitem__(i, inp[0][0])) for i, l in enumerate(model.model.layers)]
    with torch.no_grad():
        out = model(x)
    for h in hooks:
        h.remove()
    assert tr.attentions.shape == (2, 4, x.shape[1], x.shape[1]) and len(tr.lens) == 3
    for i, layer in enumerate(model.model.layers):  # neuron = act(gate(h)) * up(h), the input of down_proj
        h = mlp_in[i]
        want = (layer.mlp.act_fn(layer.mlp.gate_proj(h)) * layer.mlp.up_proj(h)).detach().numpy()
        silu_only = layer.mlp.act_fn(layer.mlp.gate_proj(h)).detach().numpy()
        assert tr.neurons[i].shape == (x.shape[1], 48) and np.allclose(tr.neurons[i], want, atol=1e-5)
        assert not np.allclose(tr.neurons[i], silu_only, atol=1e-3)
    logits = out.logits[0]
    assert [pos[0][0] for pos in tr.lens[-1]] == tok.convert_ids_to_tokens(logits.argmax(-1).tolist())
    lens = logit_lens(model, tok, text, "dog")
    dog = tok.convert_tokens_to_ids("dog")
    assert list(lens["read after"]) == ["embed", "layer 0", "layer 1"]
    assert lens["rank"].iloc[-1] == int((logits[-1] > logits[-1, dog]).sum()) + 1
    assert lens["prob"].iloc[-1] == pytest.approx(float(torch.softmax(logits[-1], -1)[dog]), rel=1e-4)


def test_neuron_selectivity_ranks_a_neuron_that_fires_on_few_texts_first():
    rng = np.random.default_rng(0)
    traces = []
    for i in range(20):
        acts = rng.normal(0, 0.1, size=(6, 8))   # 6 tokens, 8 neurons, one layer
        acts[:, 2] = -0.2                          # neuron 2 never fires
        acts[:, 5] = 1.0                           # neuron 5 fires on everything
        if i in (3, 11):
            acts[4, 6] = 3.0                       # neuron 6 fires hard on two texts only
        traces.append([acts])
    table = neuron_selectivity(None, None, [], traces=traces)
    assert (table.loc[0, "layer"], table.loc[0, "index"]) == (0, 6)
    row = table.set_index("index")
    assert row.loc[2, "active"] == 0 and row.loc[5, "active"] == 20
    assert row.loc[6, "selectivity"] > 3 * max(row.loc[2, "selectivity"], row.loc[5, "selectivity"])


@pytest.fixture(scope="module")
def smollm2():
    return interplab.models.load_causal_lm("smollm2", attentions=True)


def test_smollm2_logit_lens_finds_paris_late(smollm2):
    lens = logit_lens(*smollm2, "The Eiffel Tower is in the city of", " Paris")
    assert len(lens) == 31  # embedding + 30 layers
    rank = dict(zip(lens["read after"], lens["rank"]))
    assert rank["layer 0"] > 1000 and rank["layer 29"] == 1 and lens["top"].iloc[-1] == " Paris"
    assert rank["layer 28"] <= 3 < rank["layer 20"]  # the answer surfaces only in the last layers
    tr = trace(*smollm2, "The Eiffel Tower is in the city of")
    assert len(tr.neurons) == 30 and tr.neurons[0].shape[-1] == 1536
    assert tr.lens[-1][-1][0][0] == " Paris"


def test_smollm2_induction_lens_predicts_the_second_copy_only(smollm2):
    model, tok = smollm2
    lens = induction_lens(model, tok, n_texts=3, length=12, seed=1)
    assert len(lens) == 3 * 31 * 2
    final = lens[lens["read after"] == "layer 29"].groupby("copy")["top1"].mean()
    assert final["second"] > 0.2 and final["second"] > final["first"] + 0.15
    for t, ids in enumerate(lens.attrs["ids"]):  # the last lens row is the model's own prediction
        assert ids[:12] == ids[12:] and len(set(ids[:12])) == 12
        with torch.no_grad():
            pred = model(torch.tensor([ids])).logits[0].argmax(-1)
        own = float((pred[12:-1] == torch.tensor(ids[13:])).float().mean())
        row = lens[(lens["text"] == t) & (lens["read after"] == "layer 29") & (lens["copy"] == "second")]
        assert row["top1"].item() == pytest.approx(own)


def test_bad_inputs(minilm, tiny_gpt2):
    with pytest.raises(ValueError, match="text is empty"):
        interplab.explore(minilm, "  ")
    with pytest.raises(IndexError, match=r"neuron \(9, 0\) out of range: 6 layers"):
        interplab.explore(minilm, "hello", neuron=(9, 0))
    with pytest.raises(ValueError, match="pass a tokenizer"):
        interplab.explore(tiny_gpt2[0], "hello")
    with pytest.warns(UserWarning, match="truncated to 64"):
        trace(*tiny_gpt2, "word " * 100)
    with pytest.raises(ValueError, match="not a causal LM"):
        logit_lens(*minilm, "the cat", "dog")
    with pytest.raises(ValueError, match="is 3 tokens; give one token"):
        logit_lens(*tiny_gpt2, "the cat", "dog cat mat")
    with pytest.raises(ValueError, match="not a causal LM"):
        induction_lens(*minilm)
    with pytest.raises(ValueError, match="need n_texts >= 1 and length >= 2"):
        induction_lens(*tiny_gpt2, n_texts=0)
    with pytest.raises(ValueError, match="no neurons to rank"):
        neuron_selectivity(*minilm, ["  "])


@pytest.mark.browser
def test_page_works_offline_and_a_click_changes_the_view(tiny_gpt2, open_offline, tmp_path):
    view = interplab.explore(tiny_gpt2, "the cat sat on the mat", examples=["a dog", "the end"])
    opened = open_offline(view.save(tmp_path / "explorer.html"))
    page = opened.page
    title = page.locator(".ipl-attn-title")
    first_cells = lambda: page.locator(".ipl-attn tr").nth(1).inner_text()
    before_title, before_cells, before_lens = title.inner_text(), first_cells(), page.locator(".ipl-lens").inner_text()
    page.locator(".ipl-tok").nth(2).click()
    assert "token 2" in title.inner_text() and title.inner_text() != before_title
    assert first_cells() != before_cells
    assert page.locator(".ipl-lens").inner_text() != before_lens
    assert page.locator(".ipl-tok.ipl-selected").count() == 1
    page.select_option(".ipl-layer", "1")
    assert "layer 1" in title.inner_text()
    assert page.locator(".ipl-examples .ipl-example").count() == 2
    assert opened.errors == [] and opened.requests == []
