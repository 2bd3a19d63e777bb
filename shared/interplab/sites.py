"""One site vocabulary and one hook-and-cache layer for every model the kit loads.

    from interplab import sites
    sm = sites.wrap("smollm2")                       # or sites.wrap(model, tokenizer): toy, HF causal LM, HF encoder
    tokens = sm.to_tokens("The Eiffel Tower is in the city of")
    logits, cache = sm.run_with_cache(tokens, names=["blocks.5.hook_resid_post", "blocks.5.attn.hook_z"])
    cache["blocks.5.attn.hook_z"]                    # [batch, pos, head, d_head]
    zero = lambda act, hook: act * 0                 # TransformerLens convention: fn(activation, hook) -> tensor | None
    logits = sm.run_with_hooks(tokens, fwd_hooks=[("blocks.5.hook_mlp_out", zero)])
    with sm.hooks(fwd_hooks=[("blocks.9.hook_resid_post", steer)]):
        sm.model.generate(...)                       # hooks around any code
    logits, cache = sm.run_with_cache(tokens, names=[...], grad=True)   # sites stay in the graph:
    metric(logits).backward(); cache[name].grad                           # d(metric)/d(activation)

Site names (TransformerLens names and shapes, so a SAELens ``hook_name`` or a TransformerLens tutorial
carries over): ``blocks.{i}.hook_resid_pre`` / ``hook_resid_post`` / ``hook_attn_out`` / ``hook_mlp_out``
[batch, pos, d_model]; ``blocks.{i}.attn.hook_pattern`` [batch, head, query, key] (the wrapper switches HF
models to eager attention while a pattern site is hooked; on HF models a pattern is read-only: the output
was already computed from it); ``blocks.{i}.attn.hook_z`` [batch, pos, head, d_head] (per-head output
before the output projection); ``blocks.{i}.mlp.hook_post`` [batch, pos, d_mlp] (after the activation /
gating, what the down projection reads); ``ln_final.hook_normalized`` [batch, pos, d_model] (models with
a final norm). Toy models add the rest of TransformerLens' names (``hook_resid_mid``, ``attn.hook_q/k/v``,
``attn.hook_attn_scores``, ``attn.hook_result``, ``mlp.hook_pre``, ``ln1.hook_normalized``, ``hook_embed``,
...). Aliases: the toy's own names (``blocks.1.attn.pattern``, ``blocks.0.resid_post``, ...) and the
``features`` names ``hidden.{i}`` (= ``hidden_states[i]`` of Hugging Face: ``hidden.0`` is
``blocks.0.hook_resid_pre``, ``hidden.{i}`` for i >= 1 is ``blocks.{i-1}.hook_resid_post``, except that the
last one of a causal LM is ``ln_final.hook_normalized``, as in Hugging Face). Layer numbers
are TransformerLens': block ``i``'s output is ``blocks.{i}.hook_resid_post`` = ``hidden_states[i+1]``.
``sites.name("resid_post", 3)`` builds a name.

``sm.adapter`` is the one place that knows the architecture: ``kind`` ("toy" | "causal" | "encoder"),
``n_layers``, ``n_heads``, ``n_kv_heads``, ``d_model``, ``d_head``, ``d_mlp``, ``d_vocab``, ``n_ctx``,
``blocks``, ``final_norm``, ``unembed(resid)`` (the unembedding matrix only; ``logit_lens(resid)`` applies
the final norm first; both None for encoders) and ``name``.

Errors are one line: an unknown site -> ``UnknownSiteError`` (a ValueError and KeyError) listing the
nearest valid names; a layer or position out of range -> ``SiteRangeError`` (ValueError, IndexError); a
hook that raises -> ``HookError`` (RuntimeError) naming the site, the original chained. Hooks are always
removed afterwards, also after an error.

Why hand-written on PyTorch module hooks rather than nnsight (measured on smollm2, 2 threads, batch 8 x 9,
``benchmarks/bench_sites.py``): nnsight 0.8.1 works here offline and saves module outputs at a few percent
over the plain forward, but (1) it reaches module inputs/outputs only, while the toy models' sites
(pattern, z, q/k/v, head results) live inside one module's forward; (2) its tracing runs the body of a
``with model.trace()`` block by re-reading its source, so ordinary Python there behaves differently (a
list comprehension of ``.save()`` inside a function raised UnboundLocalError here) and it cannot wrap
arbitrary code such as ``model.generate`` with hooks; (3) TransformerLens names and shapes (z per head,
patterns from the attention module's tuple, eager attention on demand) would still be written by hand.
Plain ``register_forward_hook``/``register_forward_pre_hook`` do all of it with no measurable overhead.
nnsight stays available for what it alone offers (remote execution on NDIF): ``sm.nnsight()`` wraps the
same model, and ``sm.adapter.module_path(site)`` names the module a site reads.
"""
from __future__ import annotations

import contextlib
import difflib
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .errors import InterplabError

__all__ = ["Adapter", "Cache", "Hook", "HookError", "NoAttentionError", "SiteError", "SiteModel", "SiteRangeError", "UnknownSiteError",
           "adapter", "name", "wrap"]


class SiteError(InterplabError):
    """Base of the site layer's errors (one-line messages)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownSiteError(SiteError, ValueError, KeyError):
    """A site name this model does not have; the message lists the nearest valid names."""


class SiteRangeError(SiteError, ValueError, IndexError):
    """A layer or position outside the model / the input."""


class HookError(SiteError, RuntimeError):
    """A hook function raised (or returned a tensor of the wrong shape); names the site."""


class NoAttentionError(HookError, ValueError):
    """The model returned no attention weights for a pattern site (``interplab.attention`` and the explorer raise it too)."""


# --------------------------------------------------------------------------- names

#: sites every HF model gets, per block (TransformerLens names)
HF_BLOCK_SITES = ("hook_resid_pre", "attn.hook_z", "attn.hook_pattern", "hook_attn_out", "mlp.hook_post",
                  "hook_mlp_out", "hook_resid_post")

#: toy model name (after ``blocks.{i}.``) -> TransformerLens name
_TOY_TO_TL = {
    "resid_pre": "hook_resid_pre", "ln1.out": "ln1.hook_normalized", "attn.q": "attn.hook_q", "attn.k": "attn.hook_k",
    "attn.v": "attn.hook_v", "attn.scores": "attn.hook_attn_scores", "attn.pattern": "attn.hook_pattern",
    "attn.z": "attn.hook_z", "attn.head_out": "attn.hook_result", "attn.out": "hook_attn_out",
    "resid_mid": "hook_resid_mid", "ln2.out": "ln2.hook_normalized", "mlp.pre": "mlp.hook_pre",
    "mlp.mid": "mlp.hook_mid", "mlp.post": "mlp.hook_post", "mlp.out": "hook_mlp_out", "resid_post": "hook_resid_post",
}
_TOY_TOP = {"embed": "hook_embed", "pos_embed": "hook_pos_embed", "ln_final.out": "ln_final.hook_normalized",
            "logits": "logits"}
_TL_TO_TOY = {v: k for k, v in _TOY_TO_TL.items()}
_TL_TOP_TO_TOY = {v: k for k, v in _TOY_TOP.items()}
_BLOCK = re.compile(r"^blocks\.(-?\d+)\.(.+)$")
_HIDDEN = re.compile(r"^hidden\.(-?\d+)$")


def name(kind: str, layer: int | None = None) -> str:
    """A site name from its kind and layer: ``name("resid_post", 3)`` -> ``"blocks.3.hook_resid_post"``;
    ``name("pattern", 1)`` -> ``"blocks.1.attn.hook_pattern"``; ``name("ln_final")``."""
    short = {"pattern": "attn.hook_pattern", "z": "attn.hook_z", "attn_scores": "attn.hook_attn_scores",
             "q": "attn.hook_q", "k": "attn.hook_k", "v": "attn.hook_v", "result": "attn.hook_result",
             "post": "mlp.hook_post", "pre": "mlp.hook_pre", "mlp_post": "mlp.hook_post", "mlp_pre": "mlp.hook_pre"}
    if layer is None:
        return {"ln_final": "ln_final.hook_normalized", "embed": "hook_embed"}.get(kind, kind)
    k = short.get(kind) or (kind if kind.startswith(("hook_", "attn.", "mlp.", "ln")) else f"hook_{kind}")
    return f"blocks.{int(layer)}.{k}"


class Hook(str):
    """What a hook function receives as its second argument: the site name (a ``str``, so the toy's old
    ``fn(tensor, name)`` hooks keep working), with ``.name`` and ``.layer()`` as in TransformerLens."""

    def __new__(cls, value: str):
        return str.__new__(cls, value)

    @property
    def name(self) -> str:
        return str(self)

    def layer(self) -> int | None:
        m = _BLOCK.match(self)
        return int(m.group(1)) if m else None


# --------------------------------------------------------------------------- the adapter


def _get(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


# The module paths of each HF architecture family, relative to the base model (``model.base_model``) and
# to one block. Family detection is by structure (the first whose paths all exist), not by class name.
_FAMILIES = {
    "llama": dict(blocks="layers", final_norm="norm", attn="self_attn", pattern="self_attn", o_proj="self_attn.o_proj",
                  mlp="mlp", down_proj="mlp.down_proj", attn_out=None, mlp_out=None),
    "gpt2": dict(blocks="h", final_norm="ln_f", attn="attn", pattern="attn", o_proj="attn.c_proj", mlp="mlp",
                 down_proj="mlp.c_proj", attn_out=None, mlp_out=None),
    "gpt_neox": dict(blocks="layers", final_norm="final_layer_norm", attn="attention", pattern="attention",
                     o_proj="attention.dense", mlp="mlp", down_proj="mlp.dense_4h_to_h", attn_out=None, mlp_out=None),
    # BERT-style post-LN encoders: attn_out / mlp_out are the projections' outputs, before residual + LayerNorm
    "bert": dict(blocks="encoder.layer", final_norm=None, attn="attention", pattern="attention.self",
                 o_proj="attention.output.dense", mlp="intermediate", down_proj="output.dense",
                 attn_out="attention.output.dense", mlp_out="output.dense"),
}


@dataclass
class Adapter:
    """Which blocks, which norm, which unembedding, what context length, toy or HF: asked of nothing else."""

    model: object = field(repr=False)
    kind: str  # "toy" | "causal" | "encoder"
    name: str
    family: str  # "toy" or a key of _FAMILIES
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_head: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    blocks: list = field(repr=False, default_factory=list)
    final_norm: object = field(repr=False, default=None)
    unembed_module: object = field(repr=False, default=None)
    base: object = field(repr=False, default=None)
    _restart_exact: bool | None = field(repr=False, default=None)  # run_from checked exact (interventions)

    @property
    def is_toy(self) -> bool:
        return self.kind == "toy"

    @property
    def paths(self) -> dict:
        return _FAMILIES.get(self.family, {})

    def unembed(self, resid):
        """Logits from a residual stream that is already normalised (the unembedding only); None for encoders."""
        if self.kind == "encoder":
            return None
        if self.is_toy:
            return self.model.unembed(resid)
        return self.unembed_module(resid)

    def logit_lens(self, resid):
        """Logits read off any residual stream: final norm, then unembedding (None for encoders)."""
        if self.kind == "encoder":
            return None
        return self.unembed(self.final_norm(resid) if self.final_norm is not None else resid)

    def block_module(self, layer: int, part: str):
        """The module a site of block ``layer`` reads (``part`` a key of the family's paths)."""
        path = self.paths.get(part)
        return None if path is None else _get(self.blocks[layer], path)

    def module_path(self, site: str) -> str | None:
        """The dotted module path (from the model root) a canonical HF site reads, e.g. for nnsight."""
        if self.is_toy:
            return None
        root = next(n for n, m in self.model.named_modules() if m is self.base)
        prefix = f"{root}." if root else ""
        if site == "ln_final.hook_normalized":
            return prefix + self.paths["final_norm"]
        m = _BLOCK.match(site)
        if not m:
            return None
        i, rest = int(m.group(1)), m.group(2)
        part = {"hook_resid_pre": None, "hook_resid_post": None, "hook_attn_out": self.paths["attn_out"] or self.paths["attn"],
                "hook_mlp_out": self.paths["mlp_out"] or self.paths["mlp"], "attn.hook_pattern": self.paths["pattern"],
                "attn.hook_z": self.paths["o_proj"], "mlp.hook_post": self.paths["down_proj"]}[rest]
        return f"{prefix}{self.paths['blocks']}.{i}" + (f".{part}" if part else "")

    def run_from(self, layer: int, resid, **kwargs):
        """Logits of a Hugging Face causal LM run from block ``layer`` on, ``resid`` [batch, pos, d_model]
        being that block's input (``hook_resid_pre``): the blocks before it are not run at all.

        Activation patching at block ``layer`` leaves everything before it as in the corrupt run, so
        re-running those blocks for every patch is wasted work (half of a layer sweep). Done by handing
        the model's own forward the tail of its block list and ``resid`` as ``inputs_embeds`` (masks,
        rotary positions and the final norm stay the model's); only right where the model adds nothing
        to ``inputs_embeds`` before its first block, which callers check (``interventions`` compares
        it with a plain forward once per model). Sites hooked in blocks ``>= layer`` fire as usual."""
        import torch

        if self.kind != "causal" or "." in self.paths.get("blocks", "."):
            raise TypeError(f"run_from needs a Hugging Face causal LM with a flat block list, not a {self.family} {self.kind} model")
        if not 0 <= layer < self.n_layers:
            raise SiteRangeError(f"layer {layer} is out of range for a model of {self.n_layers} layers")
        attr = self.paths["blocks"]
        full = getattr(self.base, attr)
        setattr(self.base, attr, torch.nn.ModuleList(list(full)[layer:]))
        try:
            return self.model(inputs_embeds=resid, use_cache=False, **kwargs).logits
        finally:
            setattr(self.base, attr, full)

    def forward(self, tokens, **kwargs):
        """The model's plain output as one tensor: logits (causal, toy) or the last hidden state (encoder)."""
        if self.is_toy:
            return self.model(tokens)
        out = self.model(input_ids=tokens, **kwargs)
        if self.kind == "encoder":
            return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        return out.logits


def _cfg(cfg, *names, default=None):
    for n in names:
        v = getattr(cfg, n, None)
        if v is not None:
            return v
    return default


def adapter(model) -> Adapter:
    """The architecture facts of a model the kit loads (toy, HF causal LM, HF encoder); cached on the model."""
    cached = getattr(model, "_interplab_adapter", None)
    if cached is not None:
        return cached
    a = _make_adapter(model)
    try:
        object.__setattr__(model, "_interplab_adapter", a)
    except Exception:  # pragma: no cover - exotic modules
        pass
    return a


def context_length(model) -> int | None:
    """The longest token sequence ``model`` takes: its adapter's ``n_ctx``; for a model the adapter does
    not know (a custom architecture scored through ``interplab.evals``), its config's position limit or None."""
    try:
        return adapter(model).n_ctx
    except TypeError:
        cfg = getattr(model, "config", None) or getattr(model, "cfg", None)
        for attr in ("n_positions", "max_position_embeddings", "n_ctx", "max_seq_len"):
            v = getattr(cfg, attr, None) if cfg is not None else None
            if isinstance(v, int) and v > 0:
                return v
        return None


def _make_adapter(model) -> Adapter:
    from .models import display_name

    if type(model).__module__.startswith("interplab.toy") or (hasattr(model, "run_with_cache") and hasattr(model, "cfg")
                                                             and hasattr(model, "W_U")):
        c = model.cfg
        return Adapter(model, "toy", display_name(model), "toy", c.n_layers, c.n_heads, c.n_heads, c.d_model, c.d_head,
                       c.d_mlp, c.d_vocab, c.n_ctx, list(model.blocks), model.ln_final, None, model)
    if not type(model).__module__.startswith("transformers") or not hasattr(model, "config"):
        raise TypeError(f"cannot read sites of {type(model).__name__}: expected a kit toy model or a Hugging Face "
                        "model (interplab.models.load_causal_lm / load_encoder)")
    base = getattr(model, "base_model", model)
    family = next((f for f, p in _FAMILIES.items()
                   if _get(base, p["blocks"]) is not None and _get(_get(base, p["blocks"])[0], p["o_proj"]) is not None
                   and _get(_get(base, p["blocks"])[0], p["down_proj"]) is not None), None)
    if family is None:
        raise TypeError(f"{type(model).__name__}: unknown architecture for interplab.sites (known: Llama-style, GPT-2, "
                        "GPT-NeoX, BERT-style encoders)")
    p = _FAMILIES[family]
    cfg = model.config
    blocks = list(_get(base, p["blocks"]))
    lm_head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    kind = "causal" if (family != "bert" and lm_head is not None) else "encoder"
    d_model = int(_cfg(cfg, "hidden_size", "n_embd", "d_model"))
    n_heads = int(_cfg(cfg, "num_attention_heads", "n_head"))
    d_head = int(_cfg(cfg, "head_dim", default=d_model // n_heads))
    return Adapter(
        model, kind, display_name(model), family, len(blocks), n_heads,
        int(_cfg(cfg, "num_key_value_heads", default=n_heads)), d_model, d_head,
        int(_cfg(cfg, "intermediate_size", "n_inner", default=4 * d_model)), int(cfg.vocab_size),
        int(_cfg(cfg, "max_position_embeddings", "n_positions", "n_ctx", default=512)), blocks,
        _get(base, p["final_norm"]) if p["final_norm"] else None, lm_head if kind == "causal" else None, base)


# --------------------------------------------------------------------------- the cache


class Cache(dict):
    """``{site: tensor}`` from ``run_with_cache``; aliases (toy names, ``hidden.{i}``) look up the same entry."""

    def __init__(self, sm: "SiteModel"):
        super().__init__()
        self._sm = sm

    def __getitem__(self, key):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        return dict.__getitem__(self, self._sm.canonical(key))

    def __contains__(self, key):
        if dict.__contains__(self, key):
            return True
        try:
            return dict.__contains__(self, self._sm.canonical(key))
        except SiteError:
            return False

    def get(self, key, default=None):
        return self[key] if key in self else default

    def stack(self, kind: str = "resid_post"):
        """One kind of site for every cached layer, stacked: ``[n_layers, ...]`` (e.g. for the logit lens)."""
        import torch

        names = [name(kind, i) for i in range(self._sm.adapter.n_layers)]
        have = [n for n in names if dict.__contains__(self, n)]
        if not have:
            raise UnknownSiteError(f"no {kind!r} sites in this cache; cached: {sorted(self)[:6]}")
        return torch.stack([dict.__getitem__(self, n) for n in have])


# --------------------------------------------------------------------------- the wrapper


def wrap(model, tokenizer=None, **load_kwargs) -> "SiteModel":
    """A :class:`SiteModel` for a loaded model (with its tokenizer) or a model name (through ``interplab.models``)."""
    if isinstance(model, SiteModel):
        return model
    if isinstance(model, str) or model is None:
        from . import models

        spec = models.parse_model_name(model)
        if models.is_encoder(spec):
            model, tokenizer = models.load_encoder(model, **load_kwargs)
        else:
            model, tokenizer = models.load_causal_lm(model, **load_kwargs)
    return SiteModel(model, tokenizer)


class SiteModel:
    """A model with named sites: ``run_with_cache``, ``run_with_hooks``, ``hooks`` (see the module docstring)."""

    def __init__(self, model, tokenizer=None):
        self.model = model
        self.tokenizer = tokenizer
        self.adapter = adapter(model)
        self._names: list[str] | None = None

    def __repr__(self) -> str:
        a = self.adapter
        return f"SiteModel({a.name!r}: {a.kind}, {a.n_layers} layers x {a.n_heads} heads, d_model={a.d_model})"

    # --- names -----------------------------------------------------------------------------------
    def site_names(self, layer: int | None = None) -> list[str]:
        """Every valid site name (of one block with ``layer``), in forward order."""
        if self._names is None:
            a = self.adapter
            if a.is_toy:
                names = []
                for t in a.model.hook_names():
                    m = _BLOCK.match(t)
                    names.append(f"blocks.{m.group(1)}.{_TOY_TO_TL[m.group(2)]}" if m else _TOY_TOP[t])
            else:
                names = [f"blocks.{i}.{s}" for i in range(a.n_layers) for s in HF_BLOCK_SITES]
                if a.final_norm is not None:
                    names.append("ln_final.hook_normalized")
            self._names = names
        if layer is None:
            return list(self._names)
        self._check_layer(layer)
        return [n for n in self._names if n.startswith(f"blocks.{layer}.")]

    def _check_layer(self, layer: int, site: str | None = None):
        n = self.adapter.n_layers
        if not isinstance(layer, int) or not 0 <= layer < n:
            where = f" in site {site!r}" if site else ""
            raise SiteRangeError(f"layer {layer}{where} is out of range: this model has blocks 0 ... {n - 1}")

    def canonical(self, site: str) -> str:
        """The TransformerLens name of ``site`` (aliases resolved); UnknownSiteError / SiteRangeError otherwise."""
        valid = self.site_names()
        if site in valid:
            return site
        if not isinstance(site, str):
            raise UnknownSiteError(f"site names are strings, got {site!r}")
        n = self.adapter.n_layers
        m = _HIDDEN.match(site)
        if m:
            i = int(m.group(1))
            i = i + n + 1 if i < 0 else i
            if not 0 <= i <= n:
                raise SiteRangeError(f"site {site!r} is out of range: this model has hidden.0 ... hidden.{n}")
            if i == n and "ln_final.hook_normalized" in valid and not self.adapter.is_toy:
                return "ln_final.hook_normalized"  # HF's last hidden state is after the final norm
            return "blocks.0.hook_resid_pre" if i == 0 else f"blocks.{i - 1}.hook_resid_post"
        m = _BLOCK.match(site)
        if m:
            i, rest = int(m.group(1)), m.group(2)
            if rest in _TOY_TO_TL or rest in _TL_TO_TOY or rest in HF_BLOCK_SITES:
                self._check_layer(i, site)
            cand = f"blocks.{i}.{_TOY_TO_TL.get(rest, rest)}"
            if cand in valid:
                return cand
        elif site in _TOY_TOP and _TOY_TOP[site] in valid:
            return _TOY_TOP[site]
        near = difflib.get_close_matches(site, valid, n=4, cutoff=0.5)
        hint = f"nearest: {', '.join(near)}" if near else f"e.g. {', '.join(valid[:4])}"
        raise UnknownSiteError(f"unknown site {site!r} for {self.adapter.name}; {hint} (see site_names())")

    def _resolve(self, names) -> list[str]:
        if names is None:
            return self.site_names()
        if isinstance(names, str):
            names = [names]
        if callable(names):
            return [n for n in self.site_names() if names(n)]
        return list(dict.fromkeys(self.canonical(n) for n in names))

    @property
    def n_ctx(self) -> int:
        """The longest input: the model's context, or the tokenizer's limit where that is shorter."""
        limit = getattr(self.tokenizer, "model_max_length", None)
        ok = isinstance(limit, int) and 0 < limit < 1_000_000
        return min(self.adapter.n_ctx, limit) if ok else self.adapter.n_ctx

    # --- tokens ----------------------------------------------------------------------------------
    def to_tokens(self, text, **kwargs):
        """Token ids ``[batch, pos]`` as the kit tokenizes for this model (no BOS for smollm2, ``<bos>`` for toys,
        [CLS]/[SEP] for encoders); a list of texts is right-padded."""
        import torch

        if self.tokenizer is None:
            raise ValueError("this SiteModel has no tokenizer: wrap(model, tokenizer) or pass token ids")
        texts = [text] if isinstance(text, str) else list(text)
        if self.adapter.is_toy:
            ids = [self.tokenizer.encode(t) for t in texts]
            width = max(len(x) for x in ids)
            pad = self.tokenizer.pad_token_id
            return torch.tensor([x + [pad] * (width - len(x)) for x in ids], dtype=torch.long)
        tok = self.tokenizer
        if len(texts) > 1 and tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        enc = tok(texts, return_tensors="pt", padding=len(texts) > 1, **kwargs)
        return enc["input_ids"]

    def str_tokens(self, text) -> list[str]:
        """The tokens of one text (or one row of ids) as strings, each decoded on its own."""
        ids = self.to_tokens(text)[0] if isinstance(text, str) else text
        ids = [int(i) for i in (ids.reshape(-1).tolist() if hasattr(ids, "reshape") else ids)]
        return [self.tokenizer.decode([i]) for i in ids]

    # --- running ---------------------------------------------------------------------------------
    def __call__(self, tokens, **kwargs):
        """The plain forward: logits ``[batch, pos, d_vocab]`` (encoders: last hidden state)."""
        return self.adapter.forward(self._tokens(tokens), **kwargs)

    def _tokens(self, tokens):
        import torch

        if isinstance(tokens, (str, list)) and (isinstance(tokens, str) or (tokens and isinstance(tokens[0], str))):
            tokens = self.to_tokens(tokens)
        tokens = torch.as_tensor(tokens)
        if tokens.dim() == 1:
            tokens = tokens[None]
        if tokens.shape[1] > self.adapter.n_ctx:
            raise SiteRangeError(f"{tokens.shape[1]} tokens is longer than the model's context n_ctx={self.adapter.n_ctx}")
        return tokens.to(_device(self.model))

    def run_with_hooks(self, tokens, fwd_hooks: Iterable = (), **kwargs):
        """Forward pass with ``fwd_hooks=[(site, fn), ...]``; ``fn(activation, hook)`` returns a replacement or None."""
        with self.hooks(fwd_hooks=fwd_hooks):
            return self(tokens, **kwargs)

    def run_with_cache(self, tokens, names=None, *, grad: bool = False, fwd_hooks: Iterable = (), **kwargs):
        """Forward pass returning ``(logits, cache)``: the activations at ``names`` (all sites if None; a list, a
        name or a predicate), after any ``fwd_hooks``. Detached, under no_grad; ``grad=True`` keeps them in the
        graph with ``.retain_grad()`` so that ``metric(logits).backward()`` fills ``cache[name].grad``."""
        import torch

        cache = Cache(self)
        names = self._resolve(names)
        with self.hooks(fwd_hooks=fwd_hooks, cache=cache, cache_names=names, grad=grad):
            with (contextlib.nullcontext() if grad else torch.no_grad()):
                logits = self(tokens, **kwargs)
        return logits, cache

    @contextlib.contextmanager
    def hooks(self, fwd_hooks: Iterable = (), *, cache: dict | None = None, cache_names=None, grad: bool = False):
        """Install hooks (and caching) around any code; always removed on exit, also after an error."""
        plan: dict[str, list] = {}
        for item in fwd_hooks:
            try:
                site, fn = item
            except (TypeError, ValueError):
                raise ValueError(f"fwd_hooks items are (site, fn) pairs, got {item!r}") from None
            if not callable(fn):
                raise ValueError(f"hook for {site!r} is not callable: {fn!r}")
            plan.setdefault(self.canonical(site), []).append(fn)
        cache_set = set(cache_names or ()) if cache is not None else set()
        for s in cache_set:
            plan.setdefault(s, [])
        if self.adapter.is_toy:
            ctx = self._toy_hooks(plan, cache, cache_set, grad)
        else:
            ctx = self._hf_hooks(plan, cache, cache_set, grad)
        with ctx:
            yield self

    def _site_fn(self, site: str, fns: list, cache, cached: bool, grad: bool):
        """The per-site step: run the user's hooks, check shapes, store in the cache."""
        hook = Hook(site)

        def run(act):
            for fn in fns:
                try:
                    out = fn(act, hook)
                except SiteError:
                    raise
                except Exception as e:
                    raise HookError(f"hook on {site!r} raised {type(e).__name__}: {e}") from e
                if out is not None:
                    if not hasattr(out, "shape") or tuple(out.shape) != tuple(act.shape):
                        shape = tuple(out.shape) if hasattr(out, "shape") else type(out).__name__
                        raise HookError(f"hook on {site!r} returned {shape}, expected shape {tuple(act.shape)}")
                    act = out
            if cached:
                if grad and act.requires_grad:
                    act.retain_grad()
                    cache[site] = act
                else:
                    cache[site] = act.detach()
            return act

        return run

    @contextlib.contextmanager
    def _toy_hooks(self, plan, cache, cache_set, grad):
        model = self.model
        toy_hooks = {}
        for site, fns in plan.items():
            run = self._site_fn(site, fns, cache, site in cache_set, grad)
            toy_hooks[_toy_name(site)] = (lambda x, _n, run=run: run(x))
        old = model._hooks
        if old:  # an outer hooks(...) on the same site runs first (chained, not dropped)
            for name, new in list(toy_hooks.items()):
                outer = old.get(name) if hasattr(old, "get") else None
                if outer is not None:
                    def chained(x, n, outer=outer, new=new):
                        y = outer(x, n)
                        return new(x if y is None else y, n)
                    toy_hooks[name] = chained
            toy_hooks = {**old, **toy_hooks}
        model._hooks = toy_hooks
        try:
            yield
        finally:
            model._hooks = old

    @contextlib.contextmanager
    def _hf_hooks(self, plan, cache, cache_set, grad):
        a = self.adapter
        handles = []
        eager = any(s.endswith("attn.hook_pattern") for s in plan)
        try:
            for site, fns in plan.items():
                run = self._site_fn(site, fns, cache, site in cache_set, grad)
                handles.append(self._register(site, run, bool(fns), grad))
            with (_eager_attention(a.model) if eager else contextlib.nullcontext()):
                yield
        finally:
            for h in handles:
                h.remove()

    def _register(self, site: str, run, replaces: bool, grad: bool):
        """One PyTorch hook that shows ``run`` the site's tensor in TransformerLens shape."""
        a = self.adapter
        if site == "ln_final.hook_normalized":
            return a.final_norm.register_forward_hook(_output_hook(run))
        i, rest = int(_BLOCK.match(site).group(1)), _BLOCK.match(site).group(2)
        block = a.blocks[i]
        if rest == "hook_resid_pre":
            return block.register_forward_pre_hook(_input_hook(run), with_kwargs=True)
        if rest == "hook_resid_post":
            return block.register_forward_hook(_output_hook(run))
        if rest == "hook_attn_out":
            return (a.block_module(i, "attn_out") or a.block_module(i, "attn")).register_forward_hook(_output_hook(run))
        if rest == "hook_mlp_out":
            return (a.block_module(i, "mlp_out") or a.block_module(i, "mlp")).register_forward_hook(_output_hook(run))
        if rest == "mlp.hook_post":
            return a.block_module(i, "down_proj").register_forward_pre_hook(_input_hook(run), with_kwargs=True)
        if rest == "attn.hook_z":
            H, d = a.n_heads, a.d_head
            return a.block_module(i, "o_proj").register_forward_pre_hook(
                _input_hook(run, lambda x: x.view(*x.shape[:-1], H, d), lambda z: z.reshape(*z.shape[:-2], H * d)),
                with_kwargs=True)
        if rest == "attn.hook_pattern":
            def check(x, site=site):
                if x is None:
                    raise NoAttentionError(f"{site!r}: the model returned no attention weights (load it with attentions=True)")
                return x

            def pattern_run(x):
                out = run(check(x))
                if out is not x and replaces:
                    raise HookError(f"{site!r} is read-only on Hugging Face models (the output was already computed "
                                    "from it); patch attn.hook_z instead")
                return out

            return a.block_module(i, "pattern").register_forward_hook(_output_hook(pattern_run, index=1))
        raise UnknownSiteError(f"site {site!r} has no hook on {a.family} models")

    def replace_hook(self, site: str, value, pos=None):
        """A ``(site, fn)`` pair that replaces the activation at ``site`` with ``value`` (a tensor of the site's
        shape, or broadcastable), at all positions or only at ``pos`` (an int or list of ints)."""
        site = self.canonical(site)

        def fn(act, hook):
            out = act.clone()
            if pos is None:
                out[...] = value.to(out.dtype) if hasattr(value, "to") else value
                return out
            idx = _positions(pos, act.shape[1], site)
            v = value.to(out.dtype) if hasattr(value, "to") else value
            out[:, idx] = v[:, idx] if hasattr(v, "dim") and v.dim() == act.dim() else v
            return out

        return site, fn

    def nnsight(self):
        """The same model wrapped by nnsight (``nnsight.NNsight``), e.g. for remote execution on NDIF."""
        import nnsight

        return nnsight.NNsight(self.model)


def _positions(pos, n_pos: int, site: str = "") -> list[int]:
    """Positions as a list of ints in [0, n_pos) (negative counts from the end); SiteRangeError otherwise."""
    items = [pos] if isinstance(pos, int) else list(pos)
    out = []
    for p in items:
        q = int(p) + n_pos if int(p) < 0 else int(p)
        if not 0 <= q < n_pos:
            where = f" at {site!r}" if site else ""
            raise SiteRangeError(f"position {p}{where} is out of range for {n_pos} tokens (0 ... {n_pos - 1})")
        out.append(q)
    return out


def _toy_name(site: str) -> str:
    m = _BLOCK.match(site)
    if m:
        return f"blocks.{m.group(1)}.{_TL_TO_TOY[m.group(2)]}"
    return _TL_TOP_TO_TOY[site]


def _device(model):
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover
        return "cpu"


def _output_hook(run, index: int = 0):
    """A forward hook on a module whose output is a tensor or a tuple (the site is element ``index``)."""

    def hook(module, args, output):
        if isinstance(output, tuple):
            x = output[index]
            new = run(x)
            return None if new is x else (*output[:index], new, *output[index + 1:])
        new = run(output)
        return None if new is output else new

    return hook


def _input_hook(run, to_site: Callable | None = None, from_site: Callable | None = None):
    """A forward pre-hook on a module's first input (positional or ``hidden_states=``)."""

    def hook(module, args, kwargs):
        if args:
            x = args[0]
        else:
            key = next(k for k in ("hidden_states", "input", "x") if k in kwargs)
            x = kwargs[key]
        site_x = to_site(x) if to_site else x
        new = run(site_x)
        if new is site_x and to_site is None:
            return None
        if new is site_x and not new.requires_grad:
            return None
        new = from_site(new) if from_site else new
        if args:
            return (new, *args[1:]), kwargs
        return args, {**kwargs, key: new}

    return hook


@contextlib.contextmanager
def _eager_attention(model):
    """Run a Hugging Face model with eager attention (so attention modules return their weights), then restore."""
    cfg = model.config
    old = getattr(cfg, "_attn_implementation", None)
    if old == "eager":
        yield
        return
    cfg._attn_implementation = "eager"
    try:
        yield
    finally:
        cfg._attn_implementation = old
