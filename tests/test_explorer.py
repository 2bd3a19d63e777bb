"""The model explorer: data it shows is the model's, and the page works offline in Chromium."""
import json
import re

import numpy as np
import pytest
import torch

import interplab
from interplab.explorer import trace


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
    assert [e["max"] for e in n["examples"]] == pytest.approx(sorted(maxima, reverse=True), abs=1e-3)
    assert "<script src=" not in view.body and "http" not in view.body.split("<script type='text/javascript'>", 1)[1]


def test_causal_lm_logit_lens(tiny_gpt2):
    model, tok = tiny_gpt2
    text = "the cat sat on the mat"
    tr = trace(model, tok, text, top_k=3)
    assert len(tr.lens) == model.config.n_layer + 1 and len(tr.lens[0]) == len(tr.tokens)
    logits = model(torch.tensor([tok(text)["input_ids"]])).logits[0]
    top = tok.convert_ids_to_tokens(logits.argmax(-1).tolist())
    assert [pos[0][0] for pos in tr.lens[-1]] == top  # the last lens row is the model's own prediction


def test_bad_inputs(minilm, tiny_gpt2):
    with pytest.raises(ValueError, match="text is empty"):
        interplab.explore(minilm, "  ")
    with pytest.raises(IndexError, match=r"neuron \(9, 0\) out of range: 6 layers"):
        interplab.explore(minilm, "hello", neuron=(9, 0))
    with pytest.raises(ValueError, match="pass a tokenizer"):
        interplab.explore(tiny_gpt2[0], "hello")
    with pytest.warns(UserWarning, match="truncated to 64"):
        trace(*tiny_gpt2, "word " * 100)


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
