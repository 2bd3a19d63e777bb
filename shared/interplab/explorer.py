"""Look inside a model, one token at a time: ``interplab.explore(model, text)``.

One self-contained HTML view (no network: plain JavaScript, no CDN) that renders in Jupyter,
JupyterLab, VS Code, Colab and as a saved file. Click a token to see, for the chosen layer, every
head's attention from that token; for causal LMs, the **logit lens** (the top next-token
predictions read off the residual stream after each layer); and for a chosen MLP neuron, its
activation on every token with the dataset examples that excite it most.

    view = interplab.explore("minilm", "The cat sat on the mat.")
    view = interplab.explore("toy:attn-only-2l", "t1 t2 t3 t1 t2", examples=texts)
    view.save("explorer.html")

Works with the embedded MiniLM, any Hugging Face masked or causal LM, and the kit's toy models.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import numpy as np

from .html import HTMLView, static_text


@dataclass
class Trace:
    """What one forward pass exposes: tokens, attention, per-layer residuals and MLP neurons."""

    tokens: list[str]
    attentions: np.ndarray                    # [L, H, T, T]
    neurons: list[np.ndarray] = field(default_factory=list)   # per layer [T, d_mlp]
    lens: list[list[list[tuple[str, float]]]] | None = None  # [layer][position] -> top-k (token, prob)


# --- model adapters ------------------------------------------------------------------------------

def _is_toy(model) -> bool:
    return hasattr(model, "run_with_cache") and hasattr(model, "W_U")


def _tok_strings(tokenizer, ids: list[int]) -> list[str]:
    if hasattr(tokenizer, "convert_ids_to_tokens"):
        toks = tokenizer.convert_ids_to_tokens(ids)
    else:
        toks = [tokenizer.decode([i]) for i in ids]
    return [str(t).replace("Ġ", " ").replace("▁", " ").replace("Ċ", "\\n") for t in toks]


def _encode(tokenizer, text: str, limit: int) -> list[int]:
    ids = tokenizer(text)["input_ids"]
    if len(ids) > limit:
        import warnings

        warnings.warn(f"text has {len(ids)} tokens, more than the model's context of {limit}; truncated to {limit}", stacklevel=3)
        ids = ids[:limit]
    return list(ids)


def _context(model, tokenizer) -> int:
    cfg = getattr(model, "cfg", None) or getattr(model, "config", None)
    for attr in ("n_ctx", "max_position_embeddings", "n_positions"):
        v = getattr(cfg, attr, None)
        if isinstance(v, int) and v > 0:
            return v
    return 512


def _top(logits, tokenizer, k: int):
    import torch

    probs = torch.softmax(logits.float(), -1)
    p, idx = probs.topk(k, dim=-1)
    out = []
    for row_p, row_i in zip(p.tolist(), idx.tolist()):
        out.append([(s, round(float(q), 4)) for s, q in zip(_tok_strings(tokenizer, row_i), row_p)])
    return out


def _mlp_modules(model):
    """Modules whose output is the post-activation MLP neurons, one per layer (HF models)."""
    named = dict(model.named_modules())
    found = []
    for suffix in (".intermediate", ".mlp.act", ".mlp.act_fn", ".mlp.activation_fn", ".mlp.activation"):
        found = [(n, m) for n, m in named.items() if n.endswith(suffix)]
        if found:
            break
    return found


def _final_norm(model):
    for path in ("transformer.ln_f", "model.norm", "gpt_neox.final_layer_norm", "model.decoder.final_layer_norm", "model.final_layernorm"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            return obj
        except AttributeError:
            continue
    return None


def trace(model, tokenizer, text: str, top_k: int = 5) -> Trace:
    """Run ``text`` once and collect attention, MLP neurons and (causal LMs) the logit lens."""
    import torch

    if not isinstance(text, str) or not text.strip():
        raise ValueError("text is empty: give the explorer at least one word")
    ids = _encode(tokenizer, text, _context(model, tokenizer))
    x = torch.tensor([ids])
    with torch.no_grad():
        if _is_toy(model):
            _, cache = model.run_with_cache(x)
            L = model.cfg.n_layers
            att = np.stack([cache[f"blocks.{i}.attn.pattern"][0].float().numpy() for i in range(L)])
            neurons = [cache[f"blocks.{i}.mlp.post"][0].float().numpy() for i in range(L) if f"blocks.{i}.mlp.post" in cache]
            resid = [cache["blocks.0.resid_pre"][0]] + [cache[f"blocks.{i}.resid_post"][0] for i in range(L)]
            ln = getattr(model, "ln_final", None)
            lens = [_top((ln(r) if ln is not None else r) @ model.W_U + model.b_U, tokenizer, top_k) for r in resid]
            return Trace(_tok_strings(tokenizer, ids), att, neurons, lens)
        store = {}
        hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: store.__setitem__(n, out)) for n, m in _mlp_modules(model)]
        try:
            out = model(input_ids=x, output_attentions=True, output_hidden_states=True)
        finally:
            for h in hooks:
                h.remove()
    if not getattr(out, "attentions", None):
        raise ValueError(f"{type(model).__name__} returned no attention weights; load it with attn_implementation='eager'")
    att = np.stack([a[0].float().numpy() for a in out.attentions])
    neurons = [store[n][0].float().numpy() for n, _ in _mlp_modules(model) if n in store]
    lens = None
    unembed = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    causal = bool(getattr(model, "can_generate", lambda: False)())  # GPT-2 yes; BERT and masked LMs no
    if unembed is not None and causal:
        norm = _final_norm(model)
        hs = out.hidden_states
        with torch.no_grad():
            lens = [_top(unembed(norm(h[0]) if norm is not None and i < len(hs) - 1 else h[0]), tokenizer, top_k) for i, h in enumerate(hs)]
    return Trace(_tok_strings(tokenizer, ids), att, neurons, lens)


def _resolve(model, tokenizer):
    if isinstance(model, str):
        from . import models

        spec = models.parse_model_name(model)
        if models.is_encoder(spec) or (spec.backend == "hf" and _looks_like_encoder(spec.id)):
            return models.load_encoder(model)
        return models.load_causal_lm(model, attentions=True)
    if isinstance(model, tuple) and len(model) == 2:
        return model
    if tokenizer is None:
        raise ValueError("pass a tokenizer with a model object: explore(model, text, tokenizer=tok)")
    return model, tokenizer


def _looks_like_encoder(name: str) -> bool:
    return any(k in name.lower() for k in ("bert", "minilm", "electra", "deberta", "mpnet"))


def explore(model, text: str, tokenizer=None, *, neuron: tuple[int, int] | None = None, examples: list[str] | None = None,
            top_neurons: int = 4, top_examples: int = 5, top_k: int = 5) -> HTMLView:
    """The model-internals explorer for ``text``. ``model`` is a name, a (model, tokenizer) pair, or a model with ``tokenizer=``.

    ``neuron=(layer, index)`` picks the neuron shown first; the most active neurons of each layer
    on ``text`` are listed too. ``examples`` (a list of texts, e.g. a dataset sample) are searched
    for the inputs that excite each listed neuron most.
    """
    from tqdm.auto import tqdm

    model, tokenizer = _resolve(model, tokenizer)
    tr = trace(model, tokenizer, text, top_k)
    L, H, T, _ = tr.attentions.shape
    listed: list[tuple[int, int]] = []
    if tr.neurons:
        d_mlp = tr.neurons[0].shape[-1]
        if neuron is not None:
            if not (0 <= neuron[0] < len(tr.neurons) and 0 <= neuron[1] < d_mlp):
                raise IndexError(f"neuron {neuron} out of range: {len(tr.neurons)} layers x {d_mlp} neurons")
            listed.append((int(neuron[0]), int(neuron[1])))
        for l, acts in enumerate(tr.neurons):
            for n in np.argsort(-acts.max(0))[:top_neurons]:
                if (l, int(n)) not in listed:
                    listed.append((l, int(n)))
    elif neuron is not None:
        raise ValueError("this model has no MLP neurons (attention-only); leave neuron=None")
    ex_traces = []
    for ex in tqdm(list(examples or []), desc="examples", unit="text", leave=False):
        if ex and ex.strip():
            t = trace(model, tokenizer, ex, 1)
            ex_traces.append((t.tokens, t.neurons))
    neuron_data = {}
    for l, n in listed:
        ranked = sorted(((float(nr[l][:, n].max()), toks, nr[l][:, n]) for toks, nr in ex_traces), key=lambda r: -r[0])[:top_examples]
        neuron_data[f"{l}.{n}"] = {
            "layer": l, "index": n,
            "acts": np.round(tr.neurons[l][:, n], 3).tolist(),
            "examples": [{"tokens": toks, "acts": np.round(a, 3).tolist(), "max": round(m, 3)} for m, toks, a in ranked],
        }
    data = {
        "model": getattr(model, "interplab_name", type(model).__name__),
        "tokens": tr.tokens, "n_layers": L, "n_heads": H,
        "attn": np.round(tr.attentions, 3).tolist(),
        "lens": tr.lens,
        "neurons": neuron_data,
        "neuron_order": [f"{l}.{n}" for l, n in listed],
    }
    return render(data)


def render(data: dict) -> HTMLView:
    """The explorer's HTML for ``data`` (what ``explore`` builds): inline CSS, JSON and JavaScript."""
    root = f"ipl-explorer-{uuid.uuid4().hex[:12]}"
    payload = json.dumps(data).replace("</", "<\\/")
    body = (
        f"<style>{static_text('explorer.css')}</style>\n"
        f"<div class='ipl-explorer' id='{root}'></div>\n"
        f"<script type='application/json' id='{root}-data'>{payload}</script>\n"
        f"<script type='text/javascript'>{static_text('explorer.js')}\ninterplabExplorer('{root}');</script>\n"
    )
    return HTMLView(body, title=f"interplab explorer - {data.get('model', '')}")
