"""The last transformer block, run only at the positions whose log-probs are read.

Every block but the last must run at every position (later layers attend to all of them), but the
last block's output is used only where a class token is predicted: one position per item for
single-token classes, a few for longer ones. So here the last block computes keys and values at
every position and everything else (queries, attention, output projection, MLP, final norm) only
at the read positions. Measured on single-token classes (2 CPU threads, 80-token prompts): 1.07x
faster on a GPT-2-small model (benchmarks/bench_evals.py), 1.17x on a Pythia-70M-shaped one (6 layers).

Implemented for GPT-2 (``model_type == "gpt2"``: gpt2 to gpt2-xl, distilgpt2), GPT-NeoX
(``"gpt_neox"``: the Pythia suite) and Llama (``"llama"``: RMSNorm, rotary, grouped-query attention;
the kit's embedded SmolLM2). The model's own code runs everything up to the last block (embeddings,
masks, rotary tables), read back with a pre-hook. The scorer uses this path only after it matches
the plain computation on a probe. Where the modules live is looked up in one place, ``_arch``.
"""
from __future__ import annotations

__all__ = ["supports", "read_hidden"]


class _ReachedLastBlock(Exception):
    """Raised by a pre-hook to stop the forward pass at the last block's input."""


def _arch(model):
    """(base model, its blocks, final norm, block runner) for a supported model, else None.

    Blocks and norm come from the one architecture adapter (``interplab.sites.adapter``); this module
    only checks that the last block has the projections its runner reads."""
    from ..sites import adapter

    cfg = getattr(model, "config", None)
    try:
        a = adapter(model)
    except TypeError:
        return None
    if a.kind != "causal" or not a.blocks:
        return None
    last = a.blocks[-1]
    if a.family == "gpt2" and not getattr(cfg, "add_cross_attention", False):
        if all(hasattr(last.attn, x) for x in ("c_attn", "c_proj", "num_heads", "scaling")):
            return a.base, a.blocks, a.final_norm, _gpt2_block
    if a.family == "gpt_neox":
        if all(hasattr(last.attention, x) for x in ("query_key_value", "dense", "head_size", "scaling")):
            return a.base, a.blocks, a.final_norm, _neox_block
    if a.family == "llama" and getattr(cfg, "model_type", None) == "llama":
        if all(hasattr(last.self_attn, x) for x in ("q_proj", "k_proj", "v_proj", "o_proj", "head_dim")):
            return a.base, a.blocks, a.final_norm, _llama_block
    return None


def supports(model) -> bool:
    """True for the HF causal LMs whose last block this module knows how to run (GPT-2, GPT-NeoX, Llama)."""
    return _arch(model) is not None


def _last_block_input(base, block, input_ids, attention_mask, position_ids):
    """(hidden states, keyword arguments) entering the last block, as the model's own code prepared them."""
    seen = {}

    def hook(module, args, kwargs):
        seen["h"] = args[0] if args else kwargs["hidden_states"]
        seen["kwargs"] = kwargs
        raise _ReachedLastBlock

    handle = block.register_forward_pre_hook(hook, with_kwargs=True)
    given = {"attention_mask": attention_mask, "position_ids": position_ids}
    kwargs = {"input_ids": input_ids, "use_cache": False, **{k: v for k, v in given.items() if v is not None}}
    try:
        base(**kwargs)
    except _ReachedLastBlock:
        pass
    finally:
        handle.remove()
    if "h" not in seen:
        raise RuntimeError("the last block was never called")
    return seen["h"], seen["kwargs"]


def _attend(q_rows, k, v, b_idx, t_idx, attention_mask, scale):
    """Attention of N query rows (N, H, hd) over their own batch row's keys/values (B, H, T, hd) -> (N, H*hd).

    Queries are grouped by batch row into (B, H, S, hd), S = most reads in one row, so one
    ``scaled_dot_product_attention`` call serves them all; unused slots attend to one key and are dropped.
    """
    import torch
    import torch.nn.functional as F

    B, H, T, hd = k.shape
    N, dev = len(b_idx), k.device
    counts = torch.bincount(b_idx, minlength=B)
    S = int(counts.max()) if N else 0
    first = torch.cumsum(counts, 0) - counts
    order = torch.argsort(b_idx, stable=True)
    slot = torch.empty(N, dtype=torch.long)
    slot[order] = torch.arange(N) - first[b_idx[order]]
    bd, td, sd = b_idx.to(dev), t_idx.to(dev), slot.to(dev)
    q = q_rows.new_zeros(B, S, H, hd)
    q[bd, sd] = q_rows
    keep = torch.zeros(B, S, T, dtype=torch.bool)
    keep[:, :, 0] = True
    if attention_mask is None:  # causal; right padding is never attended by real tokens
        keep[b_idx, slot] = torch.arange(T)[None, :] <= t_idx[:, None]
    else:
        keep[b_idx, slot] = attention_mask[bd, 0, td].to(torch.bool).cpu()
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k, v, attn_mask=keep[:, None].to(dev), scale=scale)
    return out.transpose(1, 2)[bd, sd].reshape(N, H * hd)


def _gpt2_block(block, h, block_kwargs, b_idx, t_idx, attention_mask):
    import torch

    attn = block.attn
    B, T, d = h.shape
    H = attn.num_heads
    hd = d // H
    bd, td = b_idx.to(h.device), t_idx.to(h.device)
    x = block.ln_1(h)
    W, bias = attn.c_attn.weight, attn.c_attn.bias  # Conv1D: y = x @ W + bias, W is (d, 3d): [q | k | v]
    kv = torch.addmm(bias[d:], x.reshape(-1, d), W[:, d:]).view(B, T, 2, H, hd)
    q = torch.addmm(bias[:d], x[bd, td], W[:, :d]).view(-1, H, hd)
    out = _attend(q, kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2), b_idx, t_idx, attention_mask,
                  attn.scaling)
    r = h[bd, td] + attn.c_proj(out)
    return r + block.mlp(block.ln_2(r))


def _rotate(apply_rotary_pos_emb, block_kwargs, q, k, bd, td):
    """Rotary positions on every key and on the scored queries only, from the model's own rotary table
    (``position_embeddings``: cos, sin of shape (B or 1, T, rotary dims)) and its own ``apply_rotary_pos_emb``."""
    cos, sin = block_kwargs["position_embeddings"]
    cos, sin = cos.expand(k.shape[0], -1, -1), sin.expand(k.shape[0], -1, -1)
    _, k = apply_rotary_pos_emb(k, k, cos, sin)
    q, _ = apply_rotary_pos_emb(q, q, cos[bd, td][:, None], sin[bd, td][:, None])
    return q, k


def _neox_block(block, h, block_kwargs, b_idx, t_idx, attention_mask):
    import torch
    import torch.nn.functional as F
    from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb

    attn = block.attention
    B, T, d = h.shape
    hs = attn.head_size
    H = d // hs
    bd, td = b_idx.to(h.device), t_idx.to(h.device)
    x = block.input_layernorm(h)
    # the fused projection's output rows are per head [q | k | v]; split its weight the same way
    rows = torch.arange(3 * d, device=h.device).view(H, 3, hs)
    W, bias = attn.query_key_value.weight, attn.query_key_value.bias
    kv_rows, q_rows = rows[:, 1:].reshape(-1), rows[:, 0].reshape(-1)
    kv = F.linear(x, W[kv_rows], None if bias is None else bias[kv_rows]).view(B, T, H, 2, hs)
    k, v = kv[:, :, :, 0].transpose(1, 2), kv[:, :, :, 1].transpose(1, 2)  # (B, H, T, hs)
    q = F.linear(x[bd, td], W[q_rows], None if bias is None else bias[q_rows]).view(-1, H, 1, hs)
    q, k = _rotate(apply_rotary_pos_emb, block_kwargs, q, k, bd, td)
    out = attn.dense(_attend(q[:, :, 0], k, v, b_idx, t_idx, attention_mask, attn.scaling))
    res = h[bd, td]
    if block.use_parallel_residual:
        return res + out + block.mlp(block.post_attention_layernorm(res))
    a = res + out
    return a + block.mlp(block.post_attention_layernorm(a))


def _llama_block(block, h, block_kwargs, b_idx, t_idx, attention_mask):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    attn = block.self_attn
    B, T, _ = h.shape
    hd = attn.head_dim
    bd, td = b_idx.to(h.device), t_idx.to(h.device)
    x = block.input_layernorm(h)
    k = attn.k_proj(x).view(B, T, -1, hd).transpose(1, 2)  # (B, KV heads, T, hd)
    v = attn.v_proj(x).view(B, T, -1, hd).transpose(1, 2)
    q = attn.q_proj(x[bd, td]).view(len(b_idx), -1, 1, hd)  # (N, H, 1, hd)
    q, k = _rotate(apply_rotary_pos_emb, block_kwargs, q, k, bd, td)
    groups = q.shape[1] // k.shape[1]  # grouped-query attention: each KV head serves `groups` query heads
    if groups > 1:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    r = h[bd, td] + attn.o_proj(_attend(q[:, :, 0], k, v, b_idx, t_idx, attention_mask, attn.scaling))
    return r + block.mlp(block.post_attention_layernorm(r))


def read_hidden(model, input_ids, positions, *, attention_mask=None, position_ids=None):
    """Final hidden states (after the last norm, ready for the LM head) at ``positions`` =
    (batch indices, time indices), computing the last block only there.

    ``attention_mask`` is None (causal; right padding is never attended by real tokens) or a boolean
    ``(B, 1, T, T)`` mask (True = may attend), as the packed scorer builds it.
    """
    import torch

    arch = _arch(model)
    if arch is None:
        raise ValueError(f"{type(model).__name__}: no last-block path for this architecture")
    base, blocks, final_norm, run_block = arch
    b_idx, t_idx = (torch.as_tensor(p, dtype=torch.long).cpu() for p in positions)
    h, block_kwargs = _last_block_input(base, blocks[-1], input_ids, attention_mask, position_ids)
    return final_norm(run_block(blocks[-1], h, block_kwargs, b_idx, t_idx, attention_mask))
