"""Look inside a model, one token at a time: ``interplab.explore(model, text)``.

One self-contained HTML view (no network: plain JavaScript, no CDN) that renders in Jupyter,
JupyterLab, VS Code, Colab and as a saved file. Click a token to see, for the chosen layer, every
head's attention from that token; for causal LMs, the **logit lens** (the top next-token
predictions read off the residual stream after each layer); and for a chosen MLP neuron, its
activation on every token with the dataset examples that excite it most.

    view = interplab.explore("minilm", "The cat sat on the mat.")
    view = interplab.explore("toy:attn-only-2l", "t1 t2 t3 t1 t2", examples=texts)
    view.save("explorer.html")

Works with the embedded MiniLM and smollm2, Hugging Face masked and causal LMs (GPT-2, Llama-style
gated MLPs) and the kit's toy models. ``logit_lens`` gives one token's rank after every layer and
``neuron_selectivity`` ranks neurons by how selectively they fire on a set of texts;
``induction_lens`` measures, layer by layer, how well the lens predicts the second copy of a repeated text.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import numpy as np

from .errors import EmptyTextError
from .html import HTMLView, static_text


@dataclass
class Trace:
    """What one forward pass exposes: tokens, attention, per-layer residuals and MLP neurons."""

    tokens: list[str]
    attentions: np.ndarray                    # [L, H, T, T]
    neurons: list[np.ndarray] = field(default_factory=list)   # per layer [T, d_mlp]
    lens: list[list[list[tuple[str, float]]]] | None = None  # [layer][position] -> top-k (token, prob)


# --- model facts and activations: all through interplab.sites -------------------------------------

def _sm(model, tokenizer=None):
    from .sites import wrap

    return wrap(model, tokenizer)


def _is_causal(model) -> bool:
    return _sm(model).adapter.kind != "encoder"


def _resid_sites(sm) -> list[str]:
    """The residual stream's sites in order: the embedding (block 0's input), then after each block."""
    return ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post" for i in range(sm.adapter.n_layers)]


def _residuals(model, x, extra=()):
    """The residual stream of one input ``[T, d]`` at the embedding and after each block, and a cache of ``extra`` sites."""
    sm = _sm(model)
    names = _resid_sites(sm)
    _, cache = sm.run_with_cache(x, names=names + list(extra))
    return [cache[k][0] for k in names], cache


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
    return _sm(model, tokenizer).n_ctx


def _top(logits, tokenizer, k: int):
    import torch

    probs = torch.softmax(logits.float(), -1)
    p, idx = probs.topk(k, dim=-1)
    out = []
    for row_p, row_i in zip(p.tolist(), idx.tolist()):
        out.append([(s, round(float(q), 4)) for s, q in zip(_tok_strings(tokenizer, row_i), row_p)])
    return out


def _lens_logits(model, residuals) -> list:
    """Next-token logits read off each residual ``[T, d]`` (final norm, then unembedding): the logit lens."""
    a = _sm(model).adapter
    return [a.logit_lens(r) for r in residuals]


def trace(model, tokenizer, text: str, top_k: int = 5) -> Trace:
    """Run ``text`` once and collect attention, MLP neurons and (causal LMs) the logit lens."""
    import torch

    if not isinstance(text, str) or not text.strip():
        raise EmptyTextError("text is empty: give the explorer at least one word")
    ids = _encode(tokenizer, text, _context(model, tokenizer))
    x = torch.tensor([ids])
    sm = _sm(model, tokenizer)
    L = sm.adapter.n_layers
    have = set(sm.site_names())
    pats = [f"blocks.{i}.attn.hook_pattern" for i in range(L)]
    mlps = [f"blocks.{i}.mlp.hook_post" for i in range(L) if f"blocks.{i}.mlp.hook_post" in have]
    resid, cache = _residuals(model, x, pats + mlps)
    att = np.stack([cache[n][0].float().numpy() for n in pats])
    neurons = [cache[n][0].float().numpy() for n in mlps]
    lens = None
    if _is_causal(model):
        with torch.no_grad():
            lens = [_top(lg, tokenizer, top_k) for lg in _lens_logits(model, resid)]
    return Trace(_tok_strings(tokenizer, ids), att, neurons, lens)


def logit_lens(model, tokenizer, text: str, target: str, position: int = -1):
    """Where ``target`` ranks among next-token predictions after the embedding and after each layer.

    Returns a DataFrame (``read after``, ``rank`` (1 = top), ``prob``, ``top``: the lens's own top
    token) for the prediction at ``position`` (default: the next token after ``text``). ``target`` is
    one token as the tokenizer spells it inside text, e.g. ``" Paris"``.
    """
    import pandas as pd
    import torch

    if not _is_causal(model):
        raise ValueError(f"{type(model).__name__} is not a causal LM: the logit lens reads next-token predictions")
    tid = tokenizer(target, add_special_tokens=False)["input_ids"]
    if len(tid) != 1:
        raise ValueError(f"target {target!r} is {len(tid)} tokens; give one token (e.g. with its leading space)")
    ids = _encode(tokenizer, text, _context(model, tokenizer))
    x = torch.tensor([ids])
    with torch.no_grad():
        resid, _ = _residuals(model, x)
        rows = []
        for i, lg in enumerate(_lens_logits(model, [r[position] for r in resid])):
            lg = lg.float()
            rows.append({"read after": "embed" if i == 0 else f"layer {i - 1}",
                         "rank": int((lg > lg[tid[0]]).sum()) + 1,
                         "prob": float(torch.softmax(lg, -1)[tid[0]]),
                         "top": _tok_strings(tokenizer, [int(lg.argmax())])[0]})
    return pd.DataFrame(rows)


def induction_lens(model, tokenizer, *, n_texts: int = 8, length: int = 15, seed: int = 0):
    """Logit-lens accuracy on repeated random words: does each layer already predict the copy?

    Each text is ``r r`` (``r``: ``length`` distinct random single-token words), after whatever the
    tokenizer puts first (the toy's ``<bos>``; nothing for GPT-2 or smollm2). For every text, layer
    and copy, ``top1`` is the share of positions where the lens's top token is the true next token:
    on the second copy an induction mechanism can know it, on the first copy (random words) nothing
    can, so the first copy is the chance baseline. Returns a DataFrame (``text``, ``read after``,
    ``copy``, ``top1``); ``attrs["ids"]`` holds each text's token ids.
    """
    import pandas as pd
    import torch
    from tqdm.auto import tqdm

    from .evals.induction import vocab_words
    from .evals.scoring import encode

    if not _is_causal(model):
        raise ValueError(f"{type(model).__name__} is not a causal LM: the logit lens reads next-token predictions")
    if n_texts < 1 or length < 2:
        raise ValueError(f"need n_texts >= 1 and length >= 2, got n_texts={n_texts}, length={length}")
    words = vocab_words(tokenizer, n=max(200, length), seed=seed)
    base = encode(tokenizer, "")
    ids_of = {w: encode(tokenizer, " " + w)[len(base):] for w in words}
    start = base
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n_texts):
        run = [ids_of[words[j]][0] for j in rng.choice(len(words), size=length, replace=False)]
        texts.append(start + run + run)
    # every text has one length: one forward for all of them, then one unembedding per layer for all of
    # them (the unembedding matrix is read once per layer, not once per layer and text), kept as argmax only
    sm = _sm(model)
    names = _resid_sites(sm)
    x = torch.tensor(texts)
    with torch.no_grad():
        _, cache = sm.run_with_cache(x, names=names)
        preds = [sm.adapter.logit_lens(cache[k]).argmax(-1)
                 for k in tqdm(names, desc="logit lens", unit="layer", leave=False)]  # [n_texts, T] each
    nxt = x[:, 1:]
    first = slice(len(start), len(start) + length - 1)            # predicting r[1:] inside the first copy
    second = slice(len(start) + length, x.shape[1] - 1)           # predicting r[1:] inside the second copy
    rows = []
    for t in range(n_texts):
        for i, p in enumerate(preds):
            hit = (p[t, :-1] == nxt[t]).float()
            for name, sl in (("first", first), ("second", second)):
                rows.append({"text": t, "read after": "embed" if i == 0 else f"layer {i - 1}", "copy": name,
                             "top1": float(hit[sl].mean())})
    df = pd.DataFrame(rows)
    df.attrs["ids"] = texts
    return df


def neuron_selectivity(model, tokenizer, examples: list[str], *, traces=None):
    """How selective each MLP neuron is on ``examples``: a DataFrame sorted most selective first.

    Per neuron, over the examples' per-text maxima: ``selectivity`` = (mean of the top 5 maxima -
    median maximum) / standard deviation of all its token activations. A neuron that fires hard on
    a few texts and stays quiet on the rest scores high; one that never fires, or fires on
    everything, scores low. ``active`` is how many examples drive it above zero.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if traces is None:
        texts = [e for e in examples if e and e.strip()]
        traces = [trace(model, tokenizer, e, 1).neurons for e in tqdm(texts, desc="examples", unit="text", leave=False)]
    if not traces or not traces[0]:
        raise ValueError("no neurons to rank: give at least one example text to a model with MLP neurons")
    rows = []
    for l in range(len(traces[0])):
        maxima = np.stack([nr[l].max(0) for nr in traces])            # [examples, d_mlp]
        spread = np.concatenate([nr[l] for nr in traces]).std(0) + 1e-6
        top = -np.sort(-maxima, 0)[: min(5, len(maxima))].mean(0)
        score = (top - np.median(maxima, 0)) / spread
        rows.append(pd.DataFrame({"layer": l, "index": np.arange(maxima.shape[1]), "selectivity": score,
                                  "top_max": maxima.max(0), "active": (maxima > 0).sum(0)}))
    return pd.concat(rows).sort_values("selectivity", ascending=False, ignore_index=True)


def explore(model, text: str, tokenizer=None, *, neuron: tuple[int, int] | None = None, examples: list[str] | None = None,
            top_neurons: int = 4, top_examples: int = 5, top_k: int = 5) -> HTMLView:
    """The model-internals explorer for ``text``. ``model`` is a name, a (model, tokenizer) pair, or a model with ``tokenizer=``.

    ``neuron=(layer, index)`` picks the neuron shown first (``neuron_selectivity`` ranks candidates);
    the most active neurons of each layer on ``text`` are listed too. ``examples`` (a list of texts,
    e.g. a dataset sample) are searched for the inputs that excite each listed neuron most; texts
    that do not activate a neuron (max <= 0) are not listed as its examples.
    """
    from tqdm.auto import tqdm

    from . import models

    model, tokenizer = models.resolve(model, tokenizer, attentions=True)
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
        # only texts that activate the neuron (max > 0) count as its examples
        ranked = sorted(((float(nr[l][:, n].max()), toks, nr[l][:, n]) for toks, nr in ex_traces if nr[l][:, n].max() > 0),
                        key=lambda r: -r[0])[:top_examples]
        neuron_data[f"{l}.{n}"] = {
            "layer": l, "index": n,
            "acts": np.round(tr.neurons[l][:, n], 3).tolist(),
            "examples": [{"tokens": toks, "acts": np.round(a, 3).tolist(), "max": round(m, 3)} for m, toks, a in ranked],
        }
    data = {
        "model": models.display_name(model),
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
