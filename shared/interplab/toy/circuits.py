"""Path ablation: remove one component's output from ONE route into the rest of the model.

A head can matter to an induction head through three routes: its queries (Q-composition), its keys
(K-composition) or its values (V-composition); and it can also write straight into the logits (the
direct path). Ordinary ablation removes all routes at once. ``path_ablation_table`` removes them one at
a time, so you can say *how* the previous-token head feeds the induction head::

    from interplab.toy import circuits
    circuits.path_ablation_table(model, sender=(0, 0), receiver=(1, 0))
    #   path    accuracy  loss        "k" should break copying; "q", "v" and "direct" should not

Routes: ``"q"``, ``"k"``, ``"v"`` (only the receiver head's query / key / value input loses the sender's
output; everything else, including the sender itself, runs clean), ``"direct"`` (only the logits lose it)
and ``"all"`` (ordinary ablation). The sender is a head ``(layer, head)`` or ``"embed"`` / ``"pos_embed"``.
``kind="zero"`` subtracts the sender's output; ``kind="mean"`` swaps in its mean over the batch.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .diagnostics import _repeat_mask, repeated_tokens

PATHS = ("q", "k", "v", "direct", "all")


def _sender_name(model, sender) -> tuple[str, int | None]:
    if sender in ("embed", "pos_embed"):
        return sender, None
    try:
        layer, head = (int(x) for x in sender)
    except (TypeError, ValueError):
        raise ValueError(f"sender must be (layer, head), 'embed' or 'pos_embed', got {sender!r}") from None
    if not (0 <= layer < model.cfg.n_layers and 0 <= head < model.cfg.n_heads):
        raise IndexError(f"sender head ({layer}, {head}) out of range for {model.cfg.n_layers} layers x {model.cfg.n_heads} heads")
    return f"blocks.{layer}.attn.head_out", head


def path_hooks(model, sender, receiver=None, path: str = "k", kind: str = "zero", reference: torch.Tensor | None = None) -> dict:
    """Hooks for ``model.run_with_hooks`` that remove ``sender``'s output from one ``path`` (see the module doc).

    ``reference`` (tokens) is needed for ``kind="mean"``: the batch the mean output is taken over.
    """
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(PATHS)}, got {path!r}")
    if kind not in ("zero", "mean"):
        raise ValueError(f"ablation kind must be 'zero' or 'mean', got {kind!r}")
    name, s_head = _sender_name(model, sender)
    s_layer = -1 if s_head is None else int(name.split(".")[1])
    if path in ("q", "k", "v"):
        if receiver is None:
            raise ValueError(f"path {path!r} needs a receiver head (layer, head)")
        r_layer, r_head = (int(x) for x in receiver)
        if not (0 <= r_layer < model.cfg.n_layers and 0 <= r_head < model.cfg.n_heads):
            raise IndexError(f"receiver head ({r_layer}, {r_head}) out of range")
        if r_layer <= s_layer:
            raise ValueError(f"receiver ({r_layer}, {r_head}) must sit in a later layer than sender {tuple(sender)}")
    mean = None
    if kind == "mean":
        if reference is None:
            raise ValueError("kind='mean' needs reference tokens to average the sender's output over")
        _, cache = model.run_with_cache(reference, names=[name])
        mean = cache[name].mean(0)  # [T, (H,) d_model]

    seen: dict[str, torch.Tensor] = {}

    def delta(T: int) -> torch.Tensor:
        """What to add to the residual stream to remove the sender: -output (+ mean)."""
        out = seen["sender"]
        if s_head is not None:
            out = out[:, :, s_head]
        d = -out
        if mean is not None:
            m = mean[:T] if s_head is None else mean[:T, s_head]
            d = d + m.to(out.dtype)
        return d

    def capture(x, _name):
        seen["sender"] = x.detach()

    hooks = {name: capture}
    if path == "all":
        def remove(x, _name):
            x = x.clone()
            if s_head is None:
                return torch.zeros_like(x) if mean is None else mean[: x.shape[1]].expand_as(x).clone()
            x[:, :, s_head] = 0.0 if mean is None else mean[: x.shape[1], s_head].to(x.dtype)
            return x
        hooks[name] = remove
    elif path == "direct":
        last = f"blocks.{model.cfg.n_layers - 1}.resid_post"

        def direct(x, _name):
            return x + delta(x.shape[1])
        hooks[last] = direct
    else:
        block = model.blocks[r_layer]
        attn = block.attn
        W = {"q": attn.W_Q, "k": attn.W_K, "v": attn.W_V}[path]
        b = {"q": attn.b_Q, "k": attn.b_K, "v": attn.b_V}[path]

        def grab_resid(x, _name):
            seen["resid"] = x.detach()

        def reroute(x, _name):
            resid = seen["resid"] + delta(x.shape[1])
            if block.ln1 is not None:
                resid = block.ln1(resid)
            x = x.clone()
            x[:, :, r_head] = resid @ W[r_head] + b[r_head]
            return x
        hooks[f"blocks.{r_layer}.resid_pre"] = grab_resid
        hooks[f"blocks.{r_layer}.attn.{path}"] = reroute
    return hooks


def path_metrics(model, sender, receiver=None, path: str = "k", kind: str = "zero", length: int = 20,
                 batch_size: int = 64, seed: int = 1) -> dict:
    """Accuracy and loss on the repeated half of ``[BOS] r r`` with ``sender`` removed from one ``path``."""
    tokens = repeated_tokens(model, length, batch_size, seed)
    hooks = path_hooks(model, sender, receiver, path, kind, reference=tokens)
    with torch.no_grad():
        logits = model.run_with_hooks(tokens[:, :-1], hooks)
    target = tokens[:, 1:]
    mask = _repeat_mask(tokens, length)
    loss = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
    correct = logits.argmax(-1) == target
    return {"length": length, "accuracy": float(correct[mask].float().mean()), "loss": float(loss[mask].mean())}


def path_ablation_table(model, sender, receiver, lengths=(5, 9, 14, 19, 25), kind: str = "zero", paths=("none",) + PATHS,
                        batch_size: int = 64, seed: int = 1):
    """One row per path (``"none"`` = clean): mean accuracy and loss on the repeated half over ``lengths``.

    Also one ``acc@L`` column per length. ``df.attrs`` records sender, receiver and kind.
    """
    import pandas as pd

    rows = []
    for path in paths:
        per = []
        for L in lengths:
            if path == "none":
                from .diagnostics import repeat_metrics
                per.append(repeat_metrics(model, L, batch_size, seed))
            else:
                per.append(path_metrics(model, sender, receiver, path, kind, L, batch_size, seed))
        row = {"path": path, "accuracy": float(np.mean([m["accuracy"] for m in per])), "loss": float(np.mean([m["loss"] for m in per]))}
        row.update({f"acc@{m['length']}": m["accuracy"] for m in per})
        rows.append(row)
    df = pd.DataFrame(rows).set_index("path")
    df.attrs.update(sender=sender, receiver=receiver, kind=kind)
    return df
