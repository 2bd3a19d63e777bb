"""Attention collection, head scores on known patterns, and offline rendering in headless Chromium."""
import math
import warnings

import numpy as np
import pytest
import torch

from interplab import attention as A
from interplab.attention import AttentionResult, NoAttentionError


def _result(pattern_fn, T=6, L=2, H=3):
    """An AttentionResult whose head (l, h) has the pattern pattern_fn(l, h, T) -> [T, T]."""
    a = np.stack([np.stack([pattern_fn(l, h, T) for h in range(H)]) for l in range(L)])
    tokens = ["[CLS]", "a", "b", "a", "c", "[SEP]"][:T]
    return AttentionResult(tokens, a, special_mask=np.array([t.startswith("[") for t in tokens]))


def _uniform(T):
    return np.full((T, T), 1.0 / T)


def _previous(T):
    m = np.zeros((T, T))
    m[0, 0] = 1
    for i in range(1, T):
        m[i, i - 1] = 1
    return m


def test_scores_on_hand_built_patterns():
    att = _result(lambda l, h, T: _previous(T) if (l, h) == (1, 2) else _uniform(T))
    prev = A.head_scores(att, "previous_token")
    assert prev.loc[1, 2] == pytest.approx(1.0)
    assert prev.loc[0, 0] == pytest.approx(1 / 6)
    top = A.find_heads(att, "previous_token", top=1)
    assert (top["layer"][0], top["head"][0]) == (1, 2)
    ent = A.entropy(att)
    assert ent.loc[0, 0] == pytest.approx(math.log(6))
    assert ent.loc[1, 2] == pytest.approx(0.0, abs=1e-9)
    assert A.head_scores(att, "sep").loc[0, 0] == pytest.approx(1 / 6)
    assert A.head_scores(att, "first").loc[1, 2] == pytest.approx(2 / 6)  # queries 0 and 1 look at token 0


def test_same_token_score():
    def same(l, h, T):
        m = np.zeros((T, T))
        m[:, 0] = 1  # everyone looks at [CLS]...
        m[1] = 0; m[1, 3] = 1  # ...except the two "a"s, which look at each other
        m[3] = 0; m[3, 1] = 1
        return m if h == 0 else _uniform(T)

    s = A.head_scores(_result(same), "same_token")
    assert s.loc[0, 0] == pytest.approx(1.0)
    assert s.loc[0, 1] == pytest.approx(1 / 6)


def test_bad_scores_and_shapes():
    att = _result(lambda l, h, T: _uniform(T))
    with pytest.raises(ValueError, match="unknown score 'nope'"):
        A.head_scores(att, "nope")
    broken = AttentionResult(["a", "b"], np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="T=2 tokens"):
        A.entropy(broken)
    no_repeat = AttentionResult(["[CLS]", "x", "y"], np.ones((1, 1, 3, 3)) / 3, special_mask=np.array([1, 0, 0], bool))
    with pytest.raises(ValueError, match="no token repeats"):
        A.head_scores(no_repeat, "same_token")


def test_real_attention_from_minilm(minilm):
    model, tok = minilm
    att = A.get_attention(model, tok, "The cat sat on the mat.", "It was tired.")
    assert att.attentions.shape == (6, 12, len(att.tokens), len(att.tokens))
    assert np.allclose(att.attentions.sum(-1), 1, atol=1e-4)
    assert att.tokens[0] == "[CLS]" and att.tokens[att.sentence_b_start - 1] == "[SEP]"
    # MiniLM-L6's layer-0 head 2 attends to the previous token almost always.
    assert A.head_scores(att, "previous_token").loc[0, 2] > 0.9


def test_empty_text_is_an_error(minilm):
    model, tok = minilm
    for bad in ("", "   "):
        with pytest.raises(ValueError, match="text is empty"):
            A.get_attention(model, tok, bad)
    with pytest.raises(ValueError, match="text is empty"):
        A.get_attention(model, tok, "fine", "")


def test_long_text_is_truncated_with_a_warning(minilm):
    model, tok = minilm
    text = "word " * 700
    with pytest.warns(UserWarning, match=r"more than the model's context of 512; truncated to 512"):
        att = A.get_attention(model, tok, text)
    assert len(att.tokens) == 512 and att.tokens[-1] == "[SEP]"


def test_model_without_attentions_is_a_clear_error(minilm):
    _, tok = minilm

    class NoAttention(torch.nn.Module):
        def forward(self, input_ids, **kwargs):
            from transformers.modeling_outputs import BaseModelOutput

            return BaseModelOutput(last_hidden_state=torch.zeros(1, input_ids.shape[1], 4), attentions=None)

    class Config:
        max_position_embeddings = 512

    m = NoAttention()
    m.config = Config()
    with pytest.raises(NoAttentionError, match="cannot read attention weights: cannot read sites of NoAttention"):
        A.get_attention(m, tok, "hello there")


def test_sdpa_model_gets_eager_weights_for_the_pass(minilm):
    """A model loaded without eager attention still gives its weights (the site layer switches for one pass)."""
    from interplab.models import load_encoder

    model, tok = minilm
    sdpa, _ = load_encoder(attentions=False)
    assert sdpa.config._attn_implementation != "eager"
    a, b = A.get_attention(model, tok, "The cat sat."), A.get_attention(sdpa, tok, "The cat sat.")
    np.testing.assert_allclose(a.attentions, b.attentions, atol=1e-5)
    assert sdpa.config._attn_implementation != "eager"


def test_offline_html_has_no_cdn(minilm):
    model, tok = minilm
    att = A.get_attention(model, tok, "The cat sat.")
    for view in (A.head_view(att), A.model_view(att)):
        html = view._repr_html_()
        assert "cdnjs" not in html and "googleapis" not in html and "require.min.js" not in html
        assert "__interplabVendor" in html


def test_offline_html_rejects_unknown_bertviz_html():
    with pytest.raises(RuntimeError, match="unexpected BertViz HTML"):
        A.offline_html("<div>not bertviz</div>")


@pytest.mark.browser
@pytest.mark.parametrize("view", ["head_view", "model_view"])
def test_views_render_in_chromium_with_network_off(minilm, open_offline, tmp_path, view):
    model, tok = minilm
    att = A.get_attention(model, tok, "The cat sat on the mat.", "It was tired.")
    path = getattr(A, view)(att).save(tmp_path / f"{view}.html")
    page = open_offline(path)
    page.page.wait_for_selector("svg line", state="attached", timeout=10_000)
    lines = page.page.locator("svg line").count()
    T = len(att.tokens)
    assert lines >= T * T  # one line per (query, key) pair at least
    assert page.errors == [], page.errors
    assert page.requests == [], f"the page tried the network: {page.requests}"


@pytest.mark.browser
def test_plain_bertviz_is_blank_offline(minilm, open_offline, tmp_path):
    """The reason the kit rewrites BertViz: its own HTML draws nothing without the CDN."""
    from bertviz import head_view

    model, tok = minilm
    att = A.get_attention(model, tok, "The cat sat.")
    html = head_view(attention=[torch.tensor(a)[None] for a in att.attentions], tokens=att.tokens, html_action="return").data
    path = tmp_path / "plain.html"
    path.write_text(f"<html><body>{html}</body></html>")
    page = open_offline(path)
    page.page.wait_for_timeout(500)
    assert page.page.locator("svg line").count() == 0
