"""Head diagnostics for the toy models: which heads do what, and what breaks without them.

    scores = induction_scores(model)                  # DataFrames (layer x head) on [BOS] r r sequences
    scores["induction"], scores["previous_token"], scores["duplicate_token"]
    direct_logit_attribution(model)                   # how much each head pushes the right answer
    ablation_table(model, kind="zero")                # loss change when each head is removed
    check_induction(model)                            # the three criteria (a), (b), (c) below, with numbers

Scores are attention weight averaged over query positions, each in [0, 1]:

* ``previous_token``: weight on position q-1 (every query after the first);
* ``duplicate_token``: weight on earlier positions holding the same token as q;
* ``induction`` (prefix matching): weight on positions right after an earlier copy of q's token,
  i.e. the token that came next last time. Computed from the tokens, so it works on any sequence.

A model "has an induction head" only when (a) a head in layer >= 1 has induction score >= 0.8 on
``[BOS] r r``, (b) the model gets >= 0.9 accuracy on the repeated half at every repeat length held out
of training, and (c) zero-ablating that head breaks (b). Accuracy alone is never proof: a model can
reach high accuracy with a positional shortcut that fails at lengths it has not seen.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..models import display_name
from .tasks import InductionTask

SCORE_KINDS = ("previous_token", "duplicate_token", "induction")


# --- scores from attention patterns (pure functions, testable on hand-built patterns) -------------

def _target_masks(tokens: torch.Tensor, bos_id: int | None = 0):
    """Boolean [B, T, T] masks (query, key) for previous-token, duplicate-token and induction targets."""
    tokens = torch.as_tensor(tokens)
    if tokens.dim() == 1:
        tokens = tokens[None]
    B, T = tokens.shape
    q = torch.arange(T)[:, None]
    k = torch.arange(T)[None, :]
    earlier = k < q
    real = torch.ones_like(tokens, dtype=torch.bool) if bos_id is None else tokens != bos_id
    same = (tokens[:, :, None] == tokens[:, None, :]) & earlier & real[:, :, None] & real[:, None, :]
    prev = (k == q - 1).expand(B, T, T)
    # key k is an induction target of query q when token[k-1] == token[q] and k < q
    shifted = torch.zeros_like(same)
    shifted[:, :, 1:] = (tokens[:, :, None] == tokens[:, None, :-1]) & real[:, :, None] & real[:, None, :-1]
    induction = shifted & earlier
    return {"previous_token": prev, "duplicate_token": same, "induction": induction}


def scores_from_patterns(patterns, tokens, bos_id: int | None = 0):
    """Scores of every head from attention patterns ``[B, L, H, T, T]`` (or ``[L, H, T, T]``) and tokens ``[B, T]``.

    Returns ``{kind: array [L, H]}``: mean over queries that have a target of the weight on the targets.
    """
    p = torch.as_tensor(np.asarray(patterns) if not torch.is_tensor(patterns) else patterns).float()
    if p.dim() == 4:
        p = p[None]
    if p.dim() != 5 or p.shape[-1] != p.shape[-2]:
        raise ValueError(f"patterns must be [batch, layer, head, T, T], got shape {tuple(p.shape)}")
    tokens = torch.as_tensor(tokens)
    if tokens.dim() == 1:
        tokens = tokens[None]
    if tokens.shape[0] != p.shape[0] or tokens.shape[1] != p.shape[-1]:
        raise ValueError(f"tokens {tuple(tokens.shape)} do not match patterns {tuple(p.shape)}")
    out = {}
    for kind, m in _target_masks(tokens, bos_id).items():
        has = m.any(-1)  # [B, T] queries with at least one target
        if not has.any():
            out[kind] = np.full(p.shape[1:3], np.nan)
            continue
        w = (p * m[:, None, None].float()).sum(-1)  # [B, L, H, T]
        out[kind] = (w * has[:, None, None]).sum((0, 3)).div(has.sum()).numpy()
    return out


def _frame(values, name: str):
    """A layer x head DataFrame; ``df.attrs["score"]`` names what is in it (used as a plot title)."""
    import pandas as pd

    values = np.asarray(values)
    df = pd.DataFrame(values, index=pd.RangeIndex(values.shape[0], name="layer"),
                      columns=pd.RangeIndex(values.shape[1], name="head"))
    df.attrs["score"] = name
    return df


def patterns(cache, n_layers: int) -> torch.Tensor:
    """Stack ``blocks.{i}.attn.hook_pattern`` (toy alias ``attn.pattern``) from a cache into ``[B, L, H, T, T]``."""
    return torch.stack([cache[f"blocks.{i}.attn.hook_pattern"] if f"blocks.{i}.attn.hook_pattern" in cache
                        else cache[f"blocks.{i}.attn.pattern"] for i in range(n_layers)], dim=1)


def _patterns_of(model, tokens) -> torch.Tensor:
    """``[B, L, H, T, T]`` attention patterns of any model ``interplab.sites`` reads (toy, smollm2, GPT-2, ...)."""
    from ..sites import wrap

    sm = wrap(model)
    n = sm.adapter.n_layers
    _, cache = sm.run_with_cache(tokens, names=[f"blocks.{i}.attn.hook_pattern" for i in range(n)])
    return patterns(cache, n).float()


def repeated_tokens(model, length: int = 20, batch_size: int = 64, seed: int = 0) -> torch.Tensor:
    """``[BOS] r r`` sequences of distinct random tokens (the standard input for induction scores). For a
    Hugging Face LM: ``r r`` of distinct ids from the upper part of its vocabulary (no special tokens)."""
    from ..sites import adapter

    a = adapter(model)
    g = torch.Generator().manual_seed(seed)
    if a.is_toy:
        return InductionTask(n_ctx=a.n_ctx).repeated(length, batch_size, g)
    if 2 * length > a.n_ctx:
        raise ValueError(f"2 x length = {2 * length} tokens is longer than the model's context {a.n_ctx}")
    lo = min(1000, a.d_vocab // 4)
    r = torch.stack([torch.randperm(a.d_vocab - lo, generator=g)[:length] + lo for _ in range(batch_size)])
    return torch.cat([r, r], dim=1)


def induction_scores(model, tokens: torch.Tensor | None = None, length: int = 20, batch_size: int = 64, seed: int = 0):
    """Previous-token, duplicate-token and induction score of every head: ``{kind: DataFrame layer x head}``
    (toy models and any causal LM ``interplab.sites`` reads)."""
    tokens = repeated_tokens(model, length, batch_size, seed) if tokens is None else torch.as_tensor(tokens)
    raw = scores_from_patterns(_patterns_of(model, tokens), tokens)
    return {kind: _frame(raw[kind], kind) for kind in SCORE_KINDS}


def attention_result(model, tokens: torch.Tensor, tokenizer=None, index: int = 0):
    """An ``interplab.attention.AttentionResult`` of one sequence, for ``plots.attention_heatmap`` and BertViz."""
    from ..attention import AttentionResult

    tokens = torch.as_tensor(tokens)
    if tokens.dim() == 1:
        tokens = tokens[None]
    att = _patterns_of(model, tokens[index:index + 1])[0].numpy()
    ids = tokens[index].tolist()
    words = tokenizer.convert_ids_to_tokens(ids) if tokenizer is not None else [str(i) for i in ids]
    special = np.array([i == 0 for i in ids])
    cfg = getattr(model, "cfg", None)
    return AttentionResult(words, att, None, special, (getattr(cfg, "name", "") or "toy") if cfg is not None
                           else display_name(model))


# --- accuracy, loss and ablation on the repeated half ---------------------------------------------

def _repeat_mask(tokens: torch.Tensor, length: int) -> torch.Tensor:
    """Input positions whose next token is a predictable part of the second copy (``[BOS] r r``)."""
    mask = torch.zeros(tokens.shape[0], tokens.shape[1] - 1, dtype=torch.bool)
    mask[:, length + 1: 2 * length] = True
    return mask


def _ablation_hooks(model, heads, kind, reference):
    hooks: dict = {}
    means = None
    if kind == "mean":
        _, cache = model.run_with_cache(reference, names=[f"blocks.{i}.attn.head_out" for i in range(model.cfg.n_layers)])
        means = {i: cache[f"blocks.{i}.attn.head_out"].mean(0) for i in range(model.cfg.n_layers)}  # [T, H, d_model]
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        if not (0 <= layer < model.cfg.n_layers and 0 <= head < model.cfg.n_heads):
            raise IndexError(f"head ({layer}, {head}) out of range for {model.cfg.n_layers} layers x {model.cfg.n_heads} heads")
        by_layer.setdefault(layer, []).append(head)
    for layer, hs in by_layer.items():
        def hook(x, name, hs=hs, layer=layer):
            x = x.clone()
            for h in hs:
                x[:, :, h] = 0.0 if kind == "zero" else means[layer][: x.shape[1], h]
            return x
        hooks[f"blocks.{layer}.attn.head_out"] = hook
    return hooks


def _repeat_logits(model, length: int, batch_size: int, seed: int, ablate, kind: str):
    """(tokens, logits) of ``[BOS] r r`` sequences, with ``ablate`` heads ablated (``kind``: zero or mean)."""
    tokens = repeated_tokens(model, length, batch_size, seed)
    hooks = _ablation_hooks(model, list(ablate), kind, tokens) if ablate else None
    with torch.no_grad():
        return tokens, model.run_with_hooks(tokens[:, :-1], hooks)


def repeat_metrics(model, length: int, batch_size: int = 64, seed: int = 1, ablate=(), kind: str = "zero") -> dict:
    """Accuracy and loss on the repeated half of ``[BOS] r r`` (``length`` tokens), optionally with heads ablated."""
    tokens, logits = _repeat_logits(model, length, batch_size, seed, ablate, kind)
    mask = _repeat_mask(tokens, length)
    target = tokens[:, 1:]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none").view_as(target)
    correct = logits.argmax(-1) == target
    return {"length": length, "accuracy": float(correct[mask].float().mean()), "loss": float(loss[mask].mean())}


def loss_by_position(model, length: int = 20, batch_size: int = 64, seed: int = 1, ablate=(), kind: str = "zero"):
    """Mean loss at each position of ``[BOS] r r`` (the in-context-learning curve): a numpy array [2*length]."""
    tokens, logits = _repeat_logits(model, length, batch_size, seed, ablate, kind)
    loss = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")
    return loss.mean(0).numpy()


def ablation_table(model, kind: str = "zero", length: int = 20, batch_size: int = 64, seed: int = 1):
    """Change in loss on the repeated half when each head alone is ablated (``zero`` or ``mean``): DataFrame layer x head."""
    base = repeat_metrics(model, length, batch_size, seed)["loss"]
    vals = np.zeros((model.cfg.n_layers, model.cfg.n_heads))
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            vals[layer, head] = repeat_metrics(model, length, batch_size, seed, [(layer, head)], kind)["loss"] - base
    return _frame(vals, f"{kind}-ablation loss change")


def direct_logit_attribution(model, tokens: torch.Tensor | None = None, length: int = 20, batch_size: int = 64, seed: int = 1):
    """Each head's direct contribution to the correct next-token logit on the repeated half: DataFrame layer x head.

    A head writes ``head_out`` into the residual stream; its direct effect on the logit of token ``y`` is
    ``head_out . W_U[:, y]`` minus the mean over the vocabulary (logits are shift-invariant). For models
    with a final LayerNorm the residual is divided by that LayerNorm's scale at each position (frozen).
    Components not shown (embeddings, MLPs) are in ``.attrs["other"]``.
    """
    if tokens is None:
        tokens = repeated_tokens(model, length, batch_size, seed)
        mask = _repeat_mask(tokens, length)
    else:
        tokens = torch.as_tensor(tokens)
        mask = torch.ones(tokens.shape[0], tokens.shape[1] - 1, dtype=torch.bool)
        mask[:, 0] = False
    inputs, target = tokens[:, :-1], tokens[:, 1:]
    _, cache = model.run_with_cache(inputs)
    W_U = model.W_U.detach()
    direction = W_U[:, target] - W_U.mean(1)[:, None, None]  # [d_model, B, T]
    direction = direction.permute(1, 2, 0)  # [B, T, d_model]
    if model.cfg.normalization == "LN":
        resid = cache[f"blocks.{model.cfg.n_layers - 1}.resid_post"]
        centred = resid - resid.mean(-1, keepdim=True)
        scale = (centred.pow(2).mean(-1, keepdim=True) + model.ln_final.eps).sqrt()
        direction = direction * model.ln_final.weight.detach() / scale
    vals = np.zeros((model.cfg.n_layers, model.cfg.n_heads))
    for layer in range(model.cfg.n_layers):
        out = cache[f"blocks.{layer}.attn.head_out"]  # [B, T, H, d_model]
        contrib = torch.einsum("bthm,btm->bth", out, direction)
        vals[layer] = contrib[mask].mean(0).numpy()
    other = {"embed": float(torch.einsum("btm,btm->bt", cache["embed"], direction)[mask].mean()),
             "pos_embed": float(torch.einsum("btm,btm->bt", cache["pos_embed"], direction)[mask].mean())}
    for layer in range(model.cfg.n_layers):
        if f"blocks.{layer}.mlp.out" in cache:
            other[f"mlp{layer}"] = float(torch.einsum("btm,btm->bt", cache[f"blocks.{layer}.mlp.out"], direction)[mask].mean())
    df = _frame(vals, "direct logit attribution")
    df.attrs["other"] = other
    return df


# --- the three criteria -----------------------------------------------------------------------------

@dataclass
class InductionCheck:
    """Result of ``check_induction``: the criteria and the numbers behind them."""

    head: tuple[int, int]
    induction_score: float
    accuracy: dict[int, float]
    ablated_accuracy: dict[int, float]
    previous_token_head: tuple[int, int]
    previous_token_score: float
    thresholds: dict = field(default_factory=dict)

    @property
    def a(self) -> bool:
        """(a) a head in a later layer has induction score >= 0.8 on [BOS] r r."""
        return self.head[0] >= 1 and self.induction_score >= self.thresholds["score"]

    @property
    def b(self) -> bool:
        """(b) >= 0.9 accuracy on the repeated half at every held-out repeat length."""
        return bool(self.accuracy) and min(self.accuracy.values()) >= self.thresholds["accuracy"]

    @property
    def c(self) -> bool:
        """(c) zero-ablating that head breaks (b): (b) holds, and without the head mean accuracy falls below 0.9."""
        return self.b and bool(self.ablated_accuracy) and float(np.mean(list(self.ablated_accuracy.values()))) < self.thresholds["accuracy"]

    @property
    def passed(self) -> bool:
        return self.a and self.b and self.c

    def summary(self) -> str:
        acc = ", ".join(f"L={k}: {v:.2f}" for k, v in self.accuracy.items())
        abl = ", ".join(f"L={k}: {v:.2f}" for k, v in self.ablated_accuracy.items())
        return (f"(a) {'PASS' if self.a else 'FAIL'}  head {self.head[0]}.{self.head[1]} induction score {self.induction_score:.2f}\n"
                f"(b) {'PASS' if self.b else 'FAIL'}  accuracy at held-out lengths: {acc}\n"
                f"(c) {'PASS' if self.c else 'FAIL'}  with head {self.head[0]}.{self.head[1]} zero-ablated: {abl}\n"
                f"previous-token head {self.previous_token_head[0]}.{self.previous_token_head[1]} "
                f"score {self.previous_token_score:.2f}")

    def __repr__(self) -> str:
        return self.summary()


def check_induction(model, lengths=None, batch_size: int = 64, seed: int = 1, score_threshold: float = 0.8,
                    accuracy_threshold: float = 0.9, ablate: bool = True) -> InductionCheck:
    """Test criteria (a), (b), (c) on a model; ``lengths`` default to the training task's held-out lengths."""
    if lengths is None:
        lengths = tuple(model.cfg.extra.get("eval_lengths", InductionTask().eval_lengths))
    scores = induction_scores(model, batch_size=batch_size, seed=seed)
    ind = scores["induction"].to_numpy().copy()
    prev = scores["previous_token"].to_numpy()
    if model.cfg.n_layers > 1:
        ind[0] = -np.inf  # an induction head needs a previous layer to compose with
    layer, head = np.unravel_index(np.nanargmax(ind), ind.shape)
    pl, ph = np.unravel_index(np.nanargmax(prev), prev.shape)
    acc = {L: repeat_metrics(model, L, batch_size, seed)["accuracy"] for L in lengths}
    abl = {L: repeat_metrics(model, L, batch_size, seed, [(int(layer), int(head))])["accuracy"] for L in lengths} if ablate else {}
    return InductionCheck((int(layer), int(head)), float(ind[layer, head]), acc, abl, (int(pl), int(ph)), float(prev[pl, ph]),
                          {"score": score_threshold, "accuracy": accuracy_threshold})


def plot_in_context_loss(curves: dict, length: int | None = None, ax=None, title: str = "loss at each position of [BOS] r r"):
    """Line plot of ``{label: loss_by_position(...)}``; a dashed line marks where the repeat starts."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    for label, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, label=label)
    if length is None:
        length = len(next(iter(curves.values()))) // 2
    ax.axvline(length + 1.5, color="grey", ls="--", lw=1)
    ax.text(length + 2, ax.get_ylim()[1] * 0.92, "repeat starts", color="grey", fontsize=8)
    ax.set_xlabel("position of the predicted token")
    ax.set_ylabel("loss (nats)")
    ax.set_title(title)
    ax.legend(loc="center right", fontsize=8)
    return ax
