"""A small, readable, hookable decoder-only transformer (the kit's toy models).

Read this file top to bottom in ten minutes; it is the whole model. The residual stream is the
running sum that every block reads from and writes to (the view of "A Mathematical Framework for
Transformer Circuits")::

    x = embed(tokens) + pos_embed(positions)            # blocks.0.resid_pre
    for each block i:
        x = x + attention(LN(x))                        # blocks.i.resid_mid
        x = x + mlp(LN(x))        (skipped if attn-only) # blocks.i.resid_post
    logits = unembed(LN(x))

Every intermediate activation passes through ``self._hook(name, tensor)``, so each one has a stable
name (the same strings the explorer and the feature tools use)::

    embed, pos_embed,
    blocks.{i}.resid_pre, blocks.{i}.ln1.out,
    blocks.{i}.attn.q / .k / .v          [B, T, H, d_head]
    blocks.{i}.attn.scores               [B, H, Tq, Tk]   (pre-softmax, masked)
    blocks.{i}.attn.pattern              [B, H, Tq, Tk]   (attention weights)
    blocks.{i}.attn.z                    [B, T, H, d_head] (weighted values)
    blocks.{i}.attn.head_out             [B, T, H, d_model] (what each head writes to the residual)
    blocks.{i}.attn.out                  [B, T, d_model]   (sum over heads + bias)
    blocks.{i}.resid_mid, blocks.{i}.ln2.out,
    blocks.{i}.mlp.pre                   [B, T, d_mlp]  (before the activation)
    blocks.{i}.mlp.mid                   [B, T, d_mlp]  (after GeLU / SoLU, before SoLU's LayerNorm)
    blocks.{i}.mlp.post                  [B, T, d_mlp]  (what W_out reads; = mid for GeLU)
    blocks.{i}.mlp.out                   [B, T, d_model]
    blocks.{i}.resid_post, ln_final.out, logits

``ln*`` names exist only when the model has LayerNorm, ``mlp.*`` only when it has an MLP;
``model.hook_names()`` lists the ones a model has.

    logits, cache = model.run_with_cache(tokens)              # cache["blocks.1.attn.pattern"]
    def kill_head(t, name): t[:, :, 0] = 0; return t          # zero head 0's output
    logits = model.run_with_hooks(tokens, hooks={"blocks.1.attn.head_out": kill_head})
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ToyConfig:
    """Shape of a toy model. ``act_fn`` is None (attention-only), "gelu" or "solu"."""

    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    d_head: int = 16
    d_mlp: int = 0
    n_ctx: int = 64
    d_vocab: int = 100
    act_fn: str | None = None
    normalization: str | None = "LN"  # "LN" or None
    seed: int = 0
    name: str = ""
    extra: dict = field(default_factory=dict)  # anything else worth keeping with the weights (training recipe...)

    def __post_init__(self):
        if self.act_fn not in (None, "gelu", "solu"):
            raise ValueError(f"act_fn must be None, 'gelu' or 'solu', got {self.act_fn!r}")
        if self.act_fn is not None and self.d_mlp <= 0:
            raise ValueError(f"a model with act_fn={self.act_fn!r} needs d_mlp > 0")
        if self.normalization not in (None, "LN"):
            raise ValueError(f"normalization must be 'LN' or None, got {self.normalization!r}")

    @property
    def attn_only(self) -> bool:
        return self.act_fn is None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ToyConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


HookFn = Callable[[torch.Tensor, str], "torch.Tensor | None"]


class Attention(nn.Module):
    """Causal multi-head attention with per-head weights W_Q, W_K, W_V [H, d_model, d_head], W_O [H, d_head, d_model]."""

    def __init__(self, cfg: ToyConfig):
        super().__init__()
        H, D, d = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q = nn.Parameter(torch.randn(H, D, d) / math.sqrt(D))
        self.W_K = nn.Parameter(torch.randn(H, D, d) / math.sqrt(D))
        self.W_V = nn.Parameter(torch.randn(H, D, d) / math.sqrt(D))
        self.W_O = nn.Parameter(torch.randn(H, d, D) / math.sqrt(H * d))
        self.b_Q = nn.Parameter(torch.zeros(H, d))
        self.b_K = nn.Parameter(torch.zeros(H, d))
        self.b_V = nn.Parameter(torch.zeros(H, d))
        self.b_O = nn.Parameter(torch.zeros(D))
        self.register_buffer("mask", torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool)), persistent=False)

    def forward(self, x, hook, prefix):
        T = x.shape[1]
        q = hook(f"{prefix}.q", torch.einsum("btm,hmd->bthd", x, self.W_Q) + self.b_Q)
        k = hook(f"{prefix}.k", torch.einsum("btm,hmd->bthd", x, self.W_K) + self.b_K)
        v = hook(f"{prefix}.v", torch.einsum("btm,hmd->bthd", x, self.W_V) + self.b_V)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
        scores = hook(f"{prefix}.scores", scores.masked_fill(~self.mask[:T, :T], float("-inf")))
        pattern = hook(f"{prefix}.pattern", scores.softmax(-1))
        z = hook(f"{prefix}.z", torch.einsum("bhqk,bkhd->bqhd", pattern, v))
        head_out = hook(f"{prefix}.head_out", torch.einsum("bqhd,hdm->bqhm", z, self.W_O))
        return hook(f"{prefix}.out", head_out.sum(2) + self.b_O)


class MLP(nn.Module):
    """Two-layer MLP: GeLU, or SoLU (x * softmax(x) over neurons) followed by a LayerNorm."""

    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.act_fn = cfg.act_fn
        self.W_in = nn.Parameter(torch.randn(cfg.d_model, cfg.d_mlp) / math.sqrt(cfg.d_model))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.randn(cfg.d_mlp, cfg.d_model) / math.sqrt(cfg.d_mlp))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.ln = nn.LayerNorm(cfg.d_mlp) if cfg.act_fn == "solu" else None

    def forward(self, x, hook, prefix):
        pre = hook(f"{prefix}.pre", x @ self.W_in + self.b_in)
        if self.act_fn == "gelu":
            mid = hook(f"{prefix}.mid", F.gelu(pre))
            post = hook(f"{prefix}.post", mid)
        else:
            mid = hook(f"{prefix}.mid", pre * pre.softmax(-1))
            post = hook(f"{prefix}.post", self.ln(mid))
        return hook(f"{prefix}.out", post @ self.W_out + self.b_out)


class Block(nn.Module):
    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model) if cfg.normalization == "LN" else None
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model) if (cfg.normalization == "LN" and not cfg.attn_only) else None
        self.mlp = None if cfg.attn_only else MLP(cfg)

    def forward(self, x, hook, prefix):
        x = hook(f"{prefix}.resid_pre", x)
        h = hook(f"{prefix}.ln1.out", self.ln1(x)) if self.ln1 is not None else x
        x = hook(f"{prefix}.resid_mid", x + self.attn(h, hook, f"{prefix}.attn"))
        if self.mlp is not None:
            h = hook(f"{prefix}.ln2.out", self.ln2(x)) if self.ln2 is not None else x
            x = x + self.mlp(h, hook, f"{prefix}.mlp")
        return hook(f"{prefix}.resid_post", x)


class ToyTransformer(nn.Module):
    """Decoder-only transformer: ``model(tokens [B, T]) -> logits [B, T, d_vocab]``."""

    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.W_E = nn.Parameter(torch.randn(cfg.d_vocab, cfg.d_model) * 0.1)
        self.W_pos = nn.Parameter(torch.randn(cfg.n_ctx, cfg.d_model) * 0.1)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = nn.LayerNorm(cfg.d_model) if cfg.normalization == "LN" else None
        self.W_U = nn.Parameter(torch.randn(cfg.d_model, cfg.d_vocab) / math.sqrt(cfg.d_model))
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab))
        self._hooks: dict[str, HookFn] = {}
        self._cache: dict[str, torch.Tensor] | None = None
        self._cache_names: set[str] | None = None

    # --- hooks -----------------------------------------------------------------------------------
    def _hook(self, name: str, x: torch.Tensor) -> torch.Tensor:
        fn = self._hooks.get(name)
        if fn is not None:
            out = fn(x, name)
            if out is not None:
                if out.shape != x.shape:
                    raise ValueError(f"hook on {name!r} returned shape {tuple(out.shape)}, expected {tuple(x.shape)}")
                x = out
        if self._cache is not None and (self._cache_names is None or name in self._cache_names):
            self._cache[name] = x.detach()
        return x

    def hook_names(self) -> list[str]:
        """Every activation name this model exposes, in forward order."""
        if getattr(self, "_names", None) is None:
            names: list[str] = []
            recorder = lambda x, name: names.append(name)  # noqa: E731
            with torch.no_grad():
                self.run_with_hooks(torch.zeros(1, 2, dtype=torch.long), hooks=_AllNames(recorder))
            self._names = names
        return list(self._names)

    # --- forward ---------------------------------------------------------------------------------
    def _checked(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() == 1:
            tokens = tokens[None]
        T = tokens.shape[1]
        if T > self.cfg.n_ctx:
            raise ValueError(f"sequence of {T} tokens is longer than the model's context n_ctx={self.cfg.n_ctx}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.cfg.d_vocab):
            raise ValueError(f"token ids must lie in [0, {self.cfg.d_vocab}), got range [{int(tokens.min())}, {int(tokens.max())}]")
        return tokens

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = self._checked(tokens)
        return self._hook("logits", self.unembed(self._final_resid(tokens)))

    def _final_resid(self, tokens: torch.Tensor) -> torch.Tensor:
        """The residual stream the unembedding reads (after ``ln_final`` where there is one), [B, T, d_model]."""
        B, T = tokens.shape
        hook = self._hook
        x = hook("embed", self.W_E[tokens]) + hook("pos_embed", self.W_pos[:T].expand(B, T, -1))
        for i, block in enumerate(self.blocks):
            x = block(x, hook, f"blocks.{i}")
        if self.ln_final is not None:
            x = hook("ln_final.out", self.ln_final(x))
        return x

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of residual-stream vectors ``x`` [..., d_model] (what ``forward`` ends with)."""
        return x @ self.W_U + self.b_U

    def loss_on(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of predicting ``tokens[:, t + 1]`` where ``mask[:, t]`` (training's loss).

        Unembeds only the masked positions (a task predicts about half of them, and the unembedding
        with its softmax was a third of a training step); the same loss and gradients as
        cross-entropy over every position's logits, then averaged over the mask."""
        x = self._final_resid(self._checked(tokens[:, :-1]))
        return F.cross_entropy(self.unembed(x[mask]), tokens[:, 1:][mask])

    def run_with_hooks(self, tokens: torch.Tensor, hooks: dict[str, HookFn] | None = None) -> torch.Tensor:
        """Forward pass with ``hooks={name: fn(tensor, name) -> tensor | None}``; a returned tensor replaces the activation."""
        hooks = {} if hooks is None else hooks
        if hooks and not isinstance(hooks, _AllNames):
            valid = set(self.hook_names())
            unknown = [n for n in hooks if n not in valid]
            if unknown:
                raise KeyError(f"unknown hook name(s) {unknown}; see model.hook_names()")
        old, self._hooks = self._hooks, hooks
        try:
            return self(tokens)
        finally:
            self._hooks = old

    def run_with_cache(self, tokens: torch.Tensor, names: list[str] | None = None, hooks: dict[str, HookFn] | None = None):
        """Forward pass that also returns ``{name: activation}`` (all names, or only ``names``), after any hooks."""
        old = (self._cache, self._cache_names)
        self._cache, self._cache_names = {}, (set(names) if names is not None else None)
        try:
            with torch.no_grad():
                logits = self.run_with_hooks(tokens, hooks)
            return logits, self._cache
        finally:
            self._cache, self._cache_names = old

    # --- save / load -----------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``folder``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt", "name": self.cfg.name})
        (folder / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "ToyTransformer":
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg = ToyConfig.from_dict(json.loads((folder / "config.json").read_text()))
        model = cls(cfg)
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        return model.eval()

    def __repr__(self) -> str:
        c = self.cfg
        kind = "attn-only" if c.attn_only else c.act_fn
        return (f"ToyTransformer({c.name or kind}: {c.n_layers} layers x {c.n_heads} heads of {c.d_head}, "
                f"d_model={c.d_model}, d_mlp={c.d_mlp}, n_ctx={c.n_ctx}, d_vocab={c.d_vocab})")


class _AllNames(dict):
    """A hooks mapping that answers every name with one function (used to list the names)."""

    def __init__(self, fn):
        super().__init__()
        self._fn = fn

    def get(self, name, default=None):
        return self._fn
