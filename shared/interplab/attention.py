"""Attention weights of an encoder, the BertViz views (offline), and head diagnostics.

    model, tok = interplab.models.load_encoder()            # embedded MiniLM-L6, 6 layers x 12 heads
    att = get_attention(model, tok, "The cat sat.", "It was tired.")
    head_view(att)                                          # BertViz, renders with no network
    find_heads(att, "previous_token")                       # which heads look one token back?

Scores are averages of attention weight over query positions, so each lies in [0, 1]:
``previous_token`` (weight on position i-1), ``self`` (weight on i), ``first`` (weight on the first
token, [CLS]), ``sep`` (weight on [SEP] tokens), ``same_token`` (weight on other positions holding the
same token, over queries whose token repeats). ``entropy`` is each head's mean attention entropy in nats.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from .errors import EmptyTextError
from .html import HTMLView, vendor_scripts
from .sites import NoAttentionError

SCORES = ("previous_token", "self", "first", "sep", "same_token")


@dataclass
class AttentionResult:
    """Tokens and attention weights of one forward pass: ``attentions`` is [layer, head, query, key]."""

    tokens: list[str]
    attentions: np.ndarray
    sentence_b_start: int | None = None
    special_mask: np.ndarray = field(default=None)  # True where the token is [CLS]/[SEP]/...
    model_name: str = ""

    @property
    def n_layers(self) -> int:
        return self.attentions.shape[0]

    @property
    def n_heads(self) -> int:
        return self.attentions.shape[1]


def get_attention(model, tokenizer, text: str, text_b: str | None = None, max_length: int | None = None) -> AttentionResult:
    """Run ``text`` (and an optional second sentence) through ``model`` and collect all attention weights
    (the ``blocks.{i}.attn.hook_pattern`` sites of ``interplab.sites``, which switches to eager attention
    for the pass; any model it reads: encoders, causal LMs, toys).

    Text longer than the model's context is truncated with a warning; empty text is an error.
    """
    import torch

    from . import sites

    for t in (text, text_b):
        if t is not None and (not isinstance(t, str) or not t.strip()):
            raise EmptyTextError("text is empty: give at least one word to visualise attention over")
    try:
        sm = sites.wrap(model, tokenizer)
    except TypeError as exc:
        raise NoAttentionError(f"cannot read attention weights: {exc}") from exc
    limit = max_length or sm.n_ctx
    pair = (text, text_b) if text_b is not None else (text,)
    full = tokenizer(*pair, truncation=False)["input_ids"]
    if len(full) > limit:
        warnings.warn(
            f"text has {len(full)} tokens, more than the model's context of {limit}; truncated to {limit}",
            stacklevel=2,
        )
    enc = tokenizer(*pair, return_tensors="pt", truncation=True, max_length=limit)
    ids_t = enc.pop("input_ids")
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(sm.adapter.n_layers)]
    try:
        _, cache = sm.run_with_cache(ids_t, names=names, **({} if sm.adapter.is_toy else dict(enc)))
    except sites.HookError as exc:
        raise NoAttentionError(f"{type(model).__name__} returned no attention weights ({exc}); load it with "
                               "interplab.models.load_encoder(name) (eager attention)") from exc
    arr = torch.stack([cache[n][0] for n in names]).float().cpu().numpy()
    ids = ids_t[0].tolist()
    tokens = tokenizer.convert_ids_to_tokens(ids)
    special = np.array([i in set(tokenizer.all_special_ids) for i in ids])
    b_start = None
    if text_b is not None and "token_type_ids" in enc:
        tt = enc["token_type_ids"][0].tolist()
        b_start = tt.index(1) if 1 in tt else None
    from .models import display_name

    return AttentionResult(tokens, arr, b_start, special, display_name(model))


def _check(att: AttentionResult) -> np.ndarray:
    a = np.asarray(att.attentions)
    if a.ndim != 4 or a.shape[2] != a.shape[3] or a.shape[2] != len(att.tokens):
        raise ValueError(f"attentions must be [layer, head, T, T] with T={len(att.tokens)} tokens, got {a.shape}")
    return a


def head_scores(att: AttentionResult, kind: str = "previous_token") -> "pd.DataFrame":
    """One score per head (rows: layers, columns: heads). ``kind`` is one of ``SCORES``."""
    import pandas as pd

    a = _check(att)
    T = a.shape[-1]
    if kind == "previous_token":
        if T < 2:
            raise ValueError("previous_token needs at least two tokens")
        vals = np.mean([a[:, :, i, i - 1] for i in range(1, T)], axis=0)
    elif kind == "self":
        vals = np.mean([a[:, :, i, i] for i in range(T)], axis=0)
    elif kind == "first":
        vals = a[:, :, :, 0].mean(-1)
    elif kind == "sep":
        sep = np.array([t in ("[SEP]", "</s>", "<sep>") for t in att.tokens])
        if not sep.any():
            raise ValueError("no [SEP] token in this input")
        vals = a[:, :, :, sep].sum(-1).mean(-1)
    elif kind == "same_token":
        toks = np.array(att.tokens)
        special = att.special_mask if att.special_mask is not None else np.zeros(T, bool)
        same = (toks[:, None] == toks[None, :]) & ~np.eye(T, dtype=bool) & ~special[None, :] & ~special[:, None]
        rows = same.any(1)
        if not rows.any():
            raise ValueError("no token repeats in this input; same_token needs a repeated word")
        vals = (a * same[None, None]).sum(-1)[:, :, rows].mean(-1)
    else:
        raise ValueError(f"unknown score {kind!r}; choose from {SCORES}")
    return pd.DataFrame(vals, index=pd.RangeIndex(a.shape[0], name="layer"), columns=pd.RangeIndex(a.shape[1], name="head"))


def entropy(att: AttentionResult) -> "pd.DataFrame":
    """Mean attention entropy (nats) per head: low = sharp, focused heads; high = broad averaging."""
    import pandas as pd

    a = np.clip(_check(att), 1e-12, 1.0)
    vals = -(a * np.log(a)).sum(-1).mean(-1)
    return pd.DataFrame(vals, index=pd.RangeIndex(a.shape[0], name="layer"), columns=pd.RangeIndex(a.shape[1], name="head"))


def find_heads(att: AttentionResult, kind: str = "previous_token", top: int = 5, threshold: float | None = None) -> "pd.DataFrame":
    """Heads ranked by a score: a table of (layer, head, score), best first."""
    scores = head_scores(att, kind).stack().rename("score").reset_index().sort_values("score", ascending=False)
    if threshold is not None:
        scores = scores[scores["score"] >= threshold]
    return scores.head(top).reset_index(drop=True)


# --- BertViz, made to render offline -------------------------------------------------------------

_REQUIRE_TAG = re.compile(r"<script[^>]*src=\"[^\"]*require(\.min)?\.js\"[^>]*></script>")
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{.*?\}\);", re.S)
_REQUIRE_CALL = re.compile(r"requirejs\(\[\s*'jquery'\s*,\s*'d3'\s*\]\s*,\s*function\s*\(\$,\s*d3\)\s*\{")


def offline_html(bertviz_html: str) -> str:
    """Rewrite BertViz's HTML so it needs no CDN: inline d3/jQuery, no require.js."""
    out = _REQUIRE_TAG.sub("", bertviz_html)
    out = _REQUIRE_CONFIG.sub("", out)
    out, n = _REQUIRE_CALL.subn("(function ($, d3) {", out)
    if n != 1:
        raise RuntimeError("unexpected BertViz HTML: could not find its requirejs(['jquery', 'd3'], ...) call")
    end = out.rfind("});")
    out = out[:end] + "})(window.__interplabVendor.jquery, window.__interplabVendor.d3);" + out[end + 3 :]
    if "cdnjs" in out or "googleapis" in out:
        raise RuntimeError("BertViz HTML still references a CDN after rewriting")
    return vendor_scripts("d3", "jquery") + out


def _bertviz_args(att: AttentionResult, layer: int | None, heads: list[int] | None):
    import torch

    _check(att)
    # Rounded float64 keeps the page small (BertViz writes the weights as JSON) and exact to 1e-4.
    attn = [torch.tensor(np.round(att.attentions[i].astype(np.float64), 4))[None] for i in range(att.n_layers)]
    return dict(attention=attn, tokens=list(att.tokens), sentence_b_start=att.sentence_b_start, layer=layer, heads=heads)


def head_view(att: AttentionResult, layer: int | None = None, heads: list[int] | None = None) -> HTMLView:
    """BertViz head view (lines from each token to the tokens it attends to), rendered offline."""
    from bertviz import head_view as _hv

    html = _hv(**_bertviz_args(att, layer, heads), html_action="return").data
    return HTMLView(offline_html(html), title=f"Head view - {att.model_name}")


def model_view(att: AttentionResult, layers: list[int] | None = None, heads: list[int] | None = None) -> HTMLView:
    """BertViz model view (a thumbnail of every layer x head), rendered offline."""
    from bertviz import model_view as _mv

    args = _bertviz_args(att, None, None)
    del args["layer"], args["heads"]
    args.update(include_layers=layers, include_heads=heads)
    html = _mv(**args, html_action="return").data
    return HTMLView(offline_html(html), title=f"Model view - {att.model_name}")


def scores_over(model, tokenizer, texts: list[str], kind: str = "previous_token") -> "pd.DataFrame":
    """``head_scores`` averaged over many texts: a head that does X on one sentence may be luck;
    a head that does X on every sentence is a finding. Texts where the score is undefined
    (e.g. no repeated word for ``same_token``) are skipped."""
    from tqdm.auto import tqdm

    tables = []
    for text in tqdm(list(texts), desc=f"{kind} scores", unit="text", leave=False):
        try:
            tables.append(head_scores(get_attention(model, tokenizer, text), kind))
        except (EmptyTextError, NoAttentionError):
            raise
        except ValueError:  # the score is undefined on this text
            pass
    if not tables:
        raise ValueError(f"no text gave a {kind} score")
    out = sum(tables) / len(tables)
    out.attrs["n_texts"] = len(tables)
    return out


def _word_token(text: str, word: str, offsets) -> int:
    """Index of the first token of the first whole-word occurrence of ``word`` in ``text``."""
    m = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text)
    if m is None:
        raise ValueError(f"word {word!r} not found in {text!r}")
    for i, (s, e) in enumerate(offsets):
        if e > s and s <= m.start() < e:
            return i
    raise ValueError(f"word {word!r} was truncated away in {text!r}")


def relation_scores(model, tokenizer, items, source: str = "source", target: str = "target", text: str = "text") -> "pd.DataFrame":
    """Mean attention from a ``source`` word to a ``target`` word, per head, over many sentences.

    ``items`` is a DataFrame (or list of dicts) with a sentence and the two words, e.g. a verb and
    its subject. The result (layers x heads) has ``attrs["control"]``: the same score with the
    target replaced by every other word of the sentence, so a head that attends to everything
    does not look like a syntax head.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    rows = items.to_dict("records") if hasattr(items, "to_dict") else list(items)
    if not rows:
        raise ValueError("no sentences given")
    hits, controls = [], []
    for row in tqdm(rows, desc="relation scores", unit="sentence", leave=False):
        att = get_attention(model, tokenizer, row[text])
        offsets = tokenizer(row[text], return_offsets_mapping=True, truncation=True, max_length=len(att.tokens))["offset_mapping"]
        i, j = _word_token(row[text], row[source], offsets), _word_token(row[text], row[target], offsets)
        others = [k for k, (s, e) in enumerate(offsets) if e > s and k not in (i, j) and not att.special_mask[k]]
        hits.append(att.attentions[:, :, i, j])
        if others:
            controls.append(att.attentions[:, :, i, others].mean(-1))
    idx = pd.RangeIndex(hits[0].shape[0], name="layer")
    cols = pd.RangeIndex(hits[0].shape[1], name="head")
    out = pd.DataFrame(np.mean(hits, axis=0), index=idx, columns=cols)
    out.attrs["control"] = pd.DataFrame(np.mean(controls, axis=0), index=idx, columns=cols) if controls else None
    out.attrs["n"] = len(hits)
    return out
