"""The last transformer block, run only at the positions whose log-probs are read.

Every block but the last must run at every position (later layers attend to all of them), but the
last block's output is used only where a class token is predicted: one position per item for
single-token classes, a few for longer ones. So here the last block computes keys and values at
every position and everything else (queries, attention, output projection, MLP, final norm, LM
head) only at the read positions. On a GPT-2-small model that removes about 7% of the work of a
single-token item (benchmarks/bench_evals.py).

Implemented for GPT-2-style models (``model_type == "gpt2"``: gpt2 to gpt2-xl, distilgpt2 and
models built on them). The scorer uses it only after it matches the plain computation on a probe.
"""
from __future__ import annotations

__all__ = ["supports", "read_hidden"]


class _ReachedLastBlock(Exception):
    """Raised by a pre-hook to stop the forward pass at the last block's input."""


def supports(model) -> bool:
    """True for GPT-2-style HF causal LMs whose last block this module knows how to run."""
    cfg = getattr(model, "config", None)
    tr = getattr(model, "transformer", None)
    if cfg is None or tr is None or getattr(cfg, "model_type", None) != "gpt2":
        return False
    if getattr(cfg, "add_cross_attention", False) or not len(getattr(tr, "h", ())):
        return False
    attn = getattr(tr.h[-1], "attn", None)
    return all(hasattr(attn, a) for a in ("c_attn", "c_proj", "num_heads", "scaling")) and hasattr(tr, "ln_f")


def _last_block_input(model, input_ids, attention_mask, position_ids):
    """Hidden states entering the last block (the model's own code prepares embeddings and masks)."""
    tr = model.transformer
    seen = {}

    def hook(module, args, kwargs):
        seen["h"] = args[0] if args else kwargs["hidden_states"]
        raise _ReachedLastBlock

    handle = tr.h[-1].register_forward_pre_hook(hook, with_kwargs=True)
    kwargs = {"input_ids": input_ids, "use_cache": False}
    if attention_mask is not None:
        kwargs["attention_mask"] = attention_mask
    if position_ids is not None:
        kwargs["position_ids"] = position_ids
    try:
        tr(**kwargs)
    except _ReachedLastBlock:
        pass
    finally:
        handle.remove()
    if "h" not in seen:
        raise RuntimeError("the last block was never called")
    return seen["h"]


def read_hidden(model, input_ids, positions, *, attention_mask=None, position_ids=None):
    """Final hidden states (after the last norm, ready for the LM head) at ``positions`` =
    (batch indices, time indices), computing the last block only there.

    ``attention_mask`` is None (causal; right padding is never attended by real tokens) or a boolean
    ``(B, 1, T, T)`` mask (True = may attend), as the packed scorer builds it.
    """
    import torch
    import torch.nn.functional as F

    b_idx, t_idx = (torch.as_tensor(p, dtype=torch.long).cpu() for p in positions)
    h = _last_block_input(model, input_ids, attention_mask, position_ids)
    dev = h.device
    block = model.transformer.h[-1]
    attn = block.attn
    B, T, d = h.shape
    H = attn.num_heads
    hd = d // H
    N = len(b_idx)

    x = block.ln_1(h)
    W, bias = attn.c_attn.weight, attn.c_attn.bias  # Conv1D: y = x @ W + bias, W is (d, 3d)
    kv = torch.addmm(bias[d:], x.reshape(-1, d), W[:, d:]).view(B, T, 2, H, hd)
    k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)  # (B, H, T, hd)
    bd, td = b_idx.to(dev), t_idx.to(dev)
    q_rows = torch.addmm(bias[:d], x[bd, td], W[:, :d])  # (N, d)

    # queries grouped by batch row into (B, H, S, hd), S = most reads in one row; unused slots masked
    counts = torch.bincount(b_idx, minlength=B)
    S = int(counts.max()) if N else 0
    first = torch.cumsum(counts, 0) - counts
    order = torch.argsort(b_idx, stable=True)
    slot = torch.empty(N, dtype=torch.long)
    slot[order] = torch.arange(N) - first[b_idx[order]]
    q = h.new_zeros(B, S, d)
    sd = slot.to(dev)
    q[bd, sd] = q_rows
    q = q.view(B, S, H, hd).transpose(1, 2)
    keep = torch.zeros(B, S, T, dtype=torch.bool)
    keep[:, :, 0] = True  # unused slots attend to one key, so they stay finite
    if attention_mask is None:
        keep[b_idx, slot] = torch.arange(T)[None, :] <= t_idx[:, None]
    else:
        keep[b_idx, slot] = attention_mask[bd, 0, td].to(torch.bool).cpu()
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None].to(dev), scale=attn.scaling)
    out = out.transpose(1, 2).reshape(B, S, d)[bd, sd]  # (N, d)

    r = h[bd, td] + attn.c_proj(out)
    r = r + block.mlp(block.ln_2(r))
    return model.transformer.ln_f(r)
