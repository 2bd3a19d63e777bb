"""Causal interventions on any model the kit loads: activation patching, attribution patching,
steering vectors and the logit lens, all through :mod:`interplab.sites` (one site vocabulary).

    from interplab import interventions as iv, sites
    sm = sites.wrap("smollm2")
    pairs = iv.prompt_pairs(sm, clean=["The Eiffel Tower is in the city of"],
                            corrupt=["The Colosseum is in the city of"],
                            answers=[" Paris"], wrongs=[" Rome"])
    res = iv.patch_residual(sm, pairs)            # layer x position, clean = 1, corrupt = 0
    att = iv.attribution_patch(sm, pairs)          # the same map from 2 forwards + 1 backward
    iv.correlation(res, att)                       # how far the gradient estimate can be trusted
    vec = iv.steering_vector(sm, positive, negative, "blocks.6.hook_resid_pre")
    iv.steering_effect(sm, vec, held_out, up=[" good"], down=[" bad"], strengths=[0, 4, 8])
    iv.logit_lens(sm, "The Eiffel Tower is in the city of", " Paris")

**Metric.** Every patching result is the logit difference ``logit(answer) - logit(wrong)`` at the
last position, normalised per prompt pair so the clean run scores 1 and the corrupt run 0
(Wang et al. 2022; Heimersheim & Nanda 2024, "How to use and interpret activation patching").

**Batching.** A patching sweep is many runs that differ only in which activation is replaced, so
each forward carries many patches: batch row *r* is the corrupt prompt of one pair with one patch
(site, position, head). One replace-hook per site copies the clean activation into exactly the rows
assigned to it. On smollm2 the 30 x 9 residual sweep becomes a handful of batched forwards instead of
270 single ones (``benchmarks/bench_interventions.py`` prints the ratio). A patch at block *l* leaves the
blocks before it as in the corrupt run, so on a Hugging Face causal LM where that is exact (checked once
per model) each forward starts at block *l* from the cached corrupt input: a layer sweep runs about
half the blocks (1.8x faster for smollm2's 30 x 9 x 6-pair sweep, measured on 2 cores). This
bookkeeping is written here by hand because neither TransformerLens nor nnsight batches different
patches into one forward.

**Attribution patching** (Nanda 2023; Syed et al. 2023) estimates every patch at once to first
order: ``(clean - corrupt) . d metric / d activation``, from a clean forward, a corrupt forward and
one backward pass. It is a linear estimate; :func:`correlation` reports how well it agrees with
exact patching, which is the check to make before trusting it on a new task.

**Steering** (Turner et al. 2023, ActAdd; Rimsky et al. 2024, CAA): the difference of mean
activations on contrastive prompts, added at one site with a strength; :func:`steering_effect`
measures the change on held-out prompts against random vectors of the same norm.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import numpy as np

from .errors import InterplabError

#: the short site kinds a sweep walks over (``sites.name(kind, layer)`` builds the full name)
SITE_KINDS = ("resid_pre", "resid_post", "attn_out", "mlp_out", "z")


def _wrap(model):
    """A :class:`interplab.sites.SiteModel` for ``model`` (kept as is when it already is one)."""
    from . import sites

    return sites.wrap(model)


def _suffix(sm, site: str) -> str:
    """``"resid_pre"`` / ``"hook_resid_pre"`` / ``"blocks.3.hook_resid_pre"`` -> ``"hook_resid_pre"``, checked
    by the site layer (an unknown name -> its one-line ``UnknownSiteError`` listing the nearest names)."""
    from . import sites

    if not isinstance(site, str) or not site:
        raise sites.UnknownSiteError(f"a site is a name such as 'resid_pre' or 'blocks.3.hook_mlp_out', got {site!r}")
    full = site if site.startswith("blocks.") else sites.name(site[5:] if site.startswith("hook_") else site, 0)
    return sm.canonical(full).split(".", 2)[2]


def _check_site(sm, name: str) -> str:
    return sm.canonical(name)


def _last_only(sm) -> dict:
    """Forward kwargs that ask a Hugging Face causal LM for the last position's logits only: unembedding
    every position is about a fifth of smollm2's forward, and no metric here reads the others."""
    return {"logits_to_keep": 1} if sm.adapter.kind == "causal" else {}


def _forward(sm, tokens):
    """Last-position logits [batch, d_vocab] as float32."""
    try:
        return sm(tokens, **_last_only(sm))[:, -1].float()
    except TypeError:  # an architecture without logits_to_keep
        return sm(tokens)[:, -1].float()


def _tokens(sm, prompts, what: str):
    """Token ids [n, pos] of a list of prompts (or an id tensor); all prompts must have one length."""
    import torch

    if isinstance(prompts, torch.Tensor):
        return prompts[None] if prompts.dim() == 1 else prompts
    if isinstance(prompts, str):
        prompts = [prompts]
    rows = [sm.to_tokens(p)[0] for p in prompts]
    lengths = [len(r) for r in rows]
    if len(set(lengths)) > 1:
        raise ValueError(f"{what} prompts have different token lengths {lengths}; patching needs one length "
                         f"(pad or reword them, e.g. {sm.str_tokens(prompts[lengths.index(max(lengths))])})")
    return torch.stack(rows)


def _one(sm, prompt):
    """Token ids [1, pos] of one prompt (text, or ids already)."""
    import torch

    if isinstance(prompt, torch.Tensor):
        return prompt[None] if prompt.dim() == 1 else prompt
    return sm.to_tokens(prompt)


def _token_id(sm, tok) -> int:
    if isinstance(tok, (int, np.integer)):
        return int(tok)
    ids = sm.tokenizer(tok, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"answer {tok!r} is {len(ids)} tokens {sm.str_tokens(tok)}; give one token (with its leading space)")
    return int(ids[0])


# --- prompt pairs --------------------------------------------------------------------------------
@dataclass
class PromptPairs:
    """Clean / corrupt prompt pairs of one token length, with the answer each should produce.

    ``clean_diff`` / ``corrupt_diff``: ``logit(answer) - logit(wrong)`` at the last position of each
    clean / corrupt prompt (what the normalised metric maps to 1 and 0)."""

    clean: "object"  # LongTensor [n, pos]
    corrupt: "object"
    answers: list[int]
    wrongs: list[int]
    clean_diff: np.ndarray
    corrupt_diff: np.ndarray
    labels: list[str] = field(default_factory=list)  # str tokens of the first clean prompt

    @property
    def n(self) -> int:
        return int(self.clean.shape[0])

    @property
    def n_pos(self) -> int:
        return int(self.clean.shape[1])

    def frame(self):
        import pandas as pd

        return pd.DataFrame({"clean diff": self.clean_diff, "corrupt diff": self.corrupt_diff})


def prompt_pairs(model, clean, corrupt, answers, wrongs) -> PromptPairs:
    """Tokenize and check clean/corrupt pairs; run both once for the logit differences.

    ``answers[i]`` is the token the clean prompt ``i`` should produce and ``wrongs[i]`` the one its
    corrupt twin produces (e.g. " Paris" / " Rome"). A bare string is one pair."""
    import torch

    sm = _wrap(model)
    one = lambda x: [x] if isinstance(x, (str, int)) else list(x)  # noqa: E731
    answers, wrongs = one(answers), one(wrongs)
    ct, xt = _tokens(sm, clean, "clean"), _tokens(sm, corrupt, "corrupt")
    if ct.shape[0] != xt.shape[0] or ct.shape[0] != len(answers) or len(answers) != len(wrongs):
        raise ValueError(f"need as many clean ({ct.shape[0]}) as corrupt ({xt.shape[0]}) prompts, answers "
                         f"({len(answers)}) and wrongs ({len(wrongs)})")
    if ct.shape[1] != xt.shape[1]:
        raise ValueError(f"clean and corrupt prompts have different token lengths ({ct.shape[1]} vs {xt.shape[1]}); "
                         "patching position by position needs the same length")
    if ct.shape[1] > sm.adapter.n_ctx:
        raise ValueError(f"prompts of {ct.shape[1]} tokens exceed the model's context of {sm.adapter.n_ctx}")
    a = [_token_id(sm, t) for t in answers]
    w = [_token_id(sm, t) for t in wrongs]
    with torch.no_grad():
        cd = _diff(_forward(sm, ct), a, w)
        xd = _diff(_forward(sm, xt), a, w)
    gap = cd - xd
    if np.any(np.abs(gap) < 1e-3):
        i = int(np.argmin(np.abs(gap)))
        raise ValueError(f"pair {i}: clean and corrupt give the same logit difference ({cd[i]:.3f}); "
                         "the normalised metric needs prompts whose answers differ")
    labels = list(sm.str_tokens(clean[0])) if not isinstance(clean, torch.Tensor) and not isinstance(clean, str) \
        else (list(sm.str_tokens(clean)) if isinstance(clean, str) else [str(i) for i in range(ct.shape[1])])
    return PromptPairs(ct, xt, a, w, cd, xd, labels)


def _diff(last, answers, wrongs) -> np.ndarray:
    import torch

    idx = torch.arange(last.shape[0])
    return (last[idx, answers] - last[idx, wrongs]).detach().cpu().numpy().astype(float)


# --- results -------------------------------------------------------------------------------------
@dataclass
class PatchResult:
    """Normalised patching scores: ``values`` [pair, layer, (head,) position-or-all].

    ``dims`` names the axes after ``pair``; ``coords`` gives their labels. ``mean``/``std`` reduce
    over pairs; :meth:`frame` is the long table, :meth:`table` the pair-mean as a 2-D DataFrame."""

    values: np.ndarray
    dims: tuple
    coords: dict
    site: str
    method: str = "exact"
    seconds: float = float("nan")

    @property
    def mean(self) -> np.ndarray:
        return self.values.mean(0)

    @property
    def std(self) -> np.ndarray:
        return self.values.std(0)

    def frame(self):
        """Long table: one row per pair and cell (pair, the dims, ``score``)."""
        import pandas as pd

        idx = pd.MultiIndex.from_product([range(self.values.shape[0])] + [self.coords[d] for d in self.dims],
                                         names=("pair",) + tuple(self.dims))
        return pd.DataFrame({"score": self.values.reshape(-1)}, index=idx).reset_index()

    def table(self, stat: str = "mean"):
        """The pair-mean (or ``"std"``) as a DataFrame: rows = first dim, columns = the second."""
        import pandas as pd

        v = self.mean if stat == "mean" else self.std
        if v.ndim != 2:
            raise ValueError(f"table() needs a 2-D result; this one has dims {self.dims}: use frame()")
        return pd.DataFrame(v, index=pd.Index(self.coords[self.dims[0]], name=self.dims[0]),
                            columns=pd.Index(self.coords[self.dims[1]], name=self.dims[1]))

    def top(self, k: int = 10):
        """The ``k`` cells with the largest mean |score| (with their spread over pairs)."""
        f = self.frame().groupby(list(self.dims), sort=False)["score"].agg(["mean", "std"]).reset_index()
        return f.reindex(f["mean"].abs().sort_values(ascending=False).index).head(k).reset_index(drop=True)

    def plot(self, ax=None, title: str | None = None, cmap: str = "RdBu"):
        """Heatmap of the pair-mean (diverging, 0 = no effect, 1 = full restoration)."""
        import matplotlib.pyplot as plt

        t = self.table()
        if ax is None:
            _, ax = plt.subplots(figsize=(0.5 * t.shape[1] + 3, 0.22 * t.shape[0] + 1.5))
        lim = max(1.0, float(np.nanmax(np.abs(t.values))))
        im = ax.imshow(t.values, cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(t.shape[1]), [str(c) for c in t.columns], rotation=90, fontsize=8)
        step = max(1, t.shape[0] // 15)
        ax.set_yticks(range(0, t.shape[0], step), [str(r) for r in t.index[::step]], fontsize=8)
        ax.set_xlabel(t.columns.name)
        ax.set_ylabel(t.index.name)
        ax.set_title(title or f"{self.method} patching: {self.site} (mean of {self.values.shape[0]} pairs)")
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        return ax


# --- exact patching ------------------------------------------------------------------------------
def _range_error(msg: str):
    from . import sites

    return sites.SiteRangeError(msg)


def _indices(values, n: int, describe) -> list[int]:
    """``values`` (None = all) as ints in [0, n), negatives counting from the end; SiteRangeError otherwise."""
    if values is None:
        return list(range(n))
    out = []
    for v in ([values] if isinstance(values, (int, np.integer)) else values):
        if not isinstance(v, (int, np.integer)) or not -n <= v < n:
            raise _range_error(describe(v))
        out.append(int(v) % n)
    return out


def _check_positions(positions, n_pos: int) -> list[int]:
    return _indices(positions, n_pos,
                    lambda p: f"position {p!r} is out of range for prompts of {n_pos} tokens (use {-n_pos}..{n_pos - 1})")


def _patch_setup(model, site: str, heads: bool, layers):
    """(wrapped model, site suffix, layers) for a patching sweep; ``heads=True`` needs the per-head site z."""
    sm = _wrap(model)
    suffix = _suffix(sm, site)
    if heads and "hook_z" not in suffix:
        raise ValueError(f"heads=True patches per head and needs site 'z' (attn.hook_z), not {site!r}")
    return sm, suffix, _check_layers(layers, sm.adapter.n_layers)


def _check_layers(layers, n_layers: int) -> list[int]:
    return _indices(layers, n_layers, lambda i: f"layer {i!r} is out of range for a model of {n_layers} layers")


def _replace_hook(rows, pos, head, src):
    """A hook that writes ``src`` into ``act[rows, pos(, head)]`` (pos/head None = every one)."""

    def hook(act, hook):
        if head is None:
            act[rows, pos] = src.to(act.dtype)
        elif pos is None:
            act[rows, :, head] = src.to(act.dtype)
        else:
            act[rows, pos, head] = src.to(act.dtype)
        return act

    return hook


def _restart_inputs(sm, pairs: PromptPairs, layers) -> dict | None:
    """The corrupt run's block inputs ``{layer: resid_pre}`` from which a patched run may start at that
    block (:meth:`sites.Adapter.run_from`), or None where that is not exact for this model.

    Checked once per model: starting at block 0 and at a middle block from the cached inputs must give
    the plain forward's last-position logits (to 1e-4); a model that adds anything to ``inputs_embeds``
    (GPT-2's positions, Gemma's scale) fails it and is patched with whole forwards."""
    import torch

    a = sm.adapter
    layers = sorted({i for i in layers if i > 0})
    if not layers:
        return None
    ok = getattr(a, "_restart_exact", None)
    if ok is False or a.kind != "causal" or "." in a.paths.get("blocks", "."):
        return None
    probe = [0, a.n_layers // 2] if ok is None else []
    want = sorted(set(layers) | set(probe))
    _, cache = sm.run_with_cache(pairs.corrupt, names=[f"blocks.{i}.hook_resid_pre" for i in want])
    resid = {i: cache[f"blocks.{i}.hook_resid_pre"] for i in want}
    if ok is None:
        with torch.no_grad():
            plain = _forward(sm, pairs.corrupt)
            ok = all(torch.allclose(a.run_from(i, resid[i].clone(), **_last_only(sm))[:, -1].float(), plain,
                                    rtol=1e-4, atol=1e-4) for i in probe)
        a._restart_exact = ok
    return {i: resid[i] for i in layers} if ok else None


def _run_jobs(sm, pairs: PromptPairs, jobs, suffix: str, batch_size: int, progress: bool, desc: str):
    """Run every patch job (layer, pos | None, head | None) on every pair, many per forward.

    Where :func:`_restart_inputs` found it exact, each forward holds the patches of one block and
    starts there, from the corrupt run's input to that block: the blocks before it would only compute
    the corrupt run again, so a layer sweep costs about half the block-forwards. Returns scores
    [n_jobs, n_pairs]."""
    import torch
    from tqdm.auto import tqdm

    layers = sorted({j[0] for j in jobs})
    names = [f"blocks.{i}.{suffix}" for i in layers]
    _, cache = sm.run_with_cache(pairs.clean, names=names)
    cache = {n: cache[n] for n in names}
    starts = _restart_inputs(sm, pairs, layers)
    n = pairs.n
    rows = [(j, p) for j in range(len(jobs)) for p in range(n)]
    out = np.empty((len(jobs), n))
    answers = torch.tensor(pairs.answers)
    wrongs = torch.tensor(pairs.wrongs)
    cd, xd = pairs.clean_diff, pairs.corrupt_diff
    if starts is None:
        chunks = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    else:  # one block per forward: a batch that also held an earlier block's patches would start there
        by_layer: dict = {}
        for r in rows:
            by_layer.setdefault(jobs[r[0]][0], []).append(r)
        chunks = [g[i:i + batch_size] for g in by_layer.values() for i in range(0, len(g), batch_size)]
    with torch.no_grad():
        for chunk in tqdm(chunks, desc=desc, unit="batch", disable=not progress or not rows, leave=False):
            pair_idx = torch.tensor([p for _, p in chunk])
            by_site: dict = {}
            for r, (j, p) in enumerate(chunk):
                by_site.setdefault(jobs[j][0], []).append((r, j, p))
            hooks = []
            for layer, items in by_site.items():
                name = f"blocks.{layer}.{suffix}"
                clean = cache[name]
                # group by (pos is None, head is None) so each hook does one indexed copy
                groups: dict = {}
                for r, j, p in items:
                    _, pos, head = jobs[j]
                    groups.setdefault((pos is None, head is None), []).append((r, p, pos, head))
                for (all_pos, no_head), g in groups.items():
                    r_t = torch.tensor([x[0] for x in g])
                    p_t = torch.tensor([x[1] for x in g])
                    pos_t = None if all_pos else torch.tensor([x[2] for x in g])
                    head_t = None if no_head else torch.tensor([x[3] for x in g])
                    if no_head:
                        src = clean[p_t] if all_pos else clean[p_t, pos_t]
                        hooks.append((name, _replace_hook(r_t, slice(None) if all_pos else pos_t, None, src)))
                    elif all_pos:
                        hooks.append((name, _replace_hook(r_t, None, head_t, clean[p_t, :, head_t])))
                    else:
                        hooks.append((name, _replace_hook(r_t, pos_t, head_t, clean[p_t, pos_t, head_t])))
            first = min(by_site)
            with sm.hooks(fwd_hooks=hooks):
                if starts is not None and first in starts:
                    last = sm.adapter.run_from(first, starts[first][pair_idx], **_last_only(sm))[:, -1].float()
                else:
                    last = _forward(sm, pairs.corrupt[pair_idx])
            idx = torch.arange(len(chunk))
            d = (last[idx, answers[pair_idx]] - last[idx, wrongs[pair_idx]]).cpu().numpy()
            for r, (j, p) in enumerate(chunk):
                out[j, p] = (d[r] - xd[p]) / (cd[p] - xd[p])
    return out


def patch(model, pairs: PromptPairs, site: str = "resid_pre", *, layers=None, positions=None,
          heads: bool = False, per_position: bool = True, batch_size: int = 96, progress: bool = True) -> PatchResult:
    """Exact activation patching: copy the clean activation at ``site`` into the corrupt run, one
    (layer, position[, head]) at a time, and score the normalised logit difference.

    ``site`` is a short name (``"resid_pre"``, ``"attn_out"``, ``"mlp_out"``, ``"z"``) or a
    TransformerLens suffix. ``heads=True`` patches per head (``"z"`` only); ``per_position=False``
    patches every position at once. ``batch_size`` patched runs share one forward."""
    import time

    sm, suffix, L = _patch_setup(model, site, heads, layers)
    P = _check_positions(positions, pairs.n_pos) if per_position else [None]
    Hs = list(range(sm.adapter.n_heads)) if heads else [None]
    jobs = [(layer, p, h) for layer in L for h in Hs for p in P]
    t0 = time.perf_counter()
    scores = _run_jobs(sm, pairs, jobs, suffix, batch_size, progress, f"patching {suffix}")
    seconds = time.perf_counter() - t0
    shape = [len(L)] + ([len(Hs)] if heads else []) + ([len(P)] if per_position else [])
    values = scores.T.reshape([pairs.n] + shape)
    dims, coords = ["layer"], {"layer": L}
    if heads:
        dims.append("head")
        coords["head"] = Hs
    if per_position:
        dims.append("position")
        coords["position"] = [f"{p}:{pairs.labels[p]}" if p < len(pairs.labels) else str(p) for p in P]
    return PatchResult(values, tuple(dims), coords, suffix, "exact", seconds)


def patch_residual(model, pairs: PromptPairs, **kw) -> PatchResult:
    """Patch the residual stream (block inputs, ``hook_resid_pre``) by layer x position."""
    return patch(model, pairs, "resid_pre", **kw)


def patch_mlp(model, pairs: PromptPairs, **kw) -> PatchResult:
    """Patch MLP outputs (``hook_mlp_out``) by layer x position."""
    return patch(model, pairs, "mlp_out", **kw)


def patch_heads(model, pairs: PromptPairs, *, per_position: bool = False, **kw) -> PatchResult:
    """Patch attention heads' outputs (``attn.hook_z``): layer x head over all positions, or
    layer x head x position with ``per_position=True``."""
    return patch(model, pairs, "z", heads=True, per_position=per_position, **kw)


def patch_sequential(model, pairs: PromptPairs, site: str = "resid_pre", *, layers=None, positions=None,
                     progress: bool = True) -> PatchResult:
    """The same map as :func:`patch` with one forward per patch and pair (the reference the
    batched version is checked and benchmarked against)."""
    return patch(model, pairs, site, layers=layers, positions=positions, batch_size=1, progress=progress)


# --- attribution patching ------------------------------------------------------------------------
def attribution_patch(model, pairs: PromptPairs, site: str = "resid_pre", *, layers=None, heads: bool = False,
                      per_position: bool = True) -> PatchResult:
    """Gradient estimate of every patch at ``site``: ``(clean - corrupt) . d(logit diff)/d(act)`` at the
    corrupt run, normalised like :func:`patch`. Two forwards and one backward for the whole map."""
    import time

    import torch

    sm, suffix, L = _patch_setup(model, site, heads, layers)
    names = [f"blocks.{i}.{suffix}" for i in L]
    t0 = time.perf_counter()
    _, clean = sm.run_with_cache(pairs.clean, names=names)
    with torch.enable_grad():
        try:
            logits, acts = sm.run_with_cache(pairs.corrupt, names=names, grad=True, **_last_only(sm))
        except TypeError:  # an architecture without logits_to_keep
            logits, acts = sm.run_with_cache(pairs.corrupt, names=names, grad=True)
        last = logits[:, -1].float()
        idx = torch.arange(pairs.n)
        metric = (last[idx, pairs.answers] - last[idx, pairs.wrongs]).sum()
        # autograd.grad, not backward(): only the activations' gradients, none accumulated on the weights
        grads = torch.autograd.grad(metric, [acts[n] for n in names])
    gap = torch.tensor(pairs.clean_diff - pairs.corrupt_diff, dtype=torch.float32)
    per_layer = []
    for n, g in zip(names, grads):
        delta = (clean[n].float() - acts[n].detach().float()) * g.float()  # [n, pos, (head, d_head | d_model)]
        s = delta.sum(-1)  # [n, pos] or [n, pos, head]
        if heads:
            s = s.transpose(1, 2)  # [n, head, pos]
        if not per_position:
            s = s.sum(-1)
        per_layer.append(s / gap.view(-1, *([1] * (s.dim() - 1))))
    values = torch.stack(per_layer, 1).numpy()
    dims, coords = ["layer"], {"layer": L}
    if heads:
        dims.append("head")
        coords["head"] = list(range(sm.adapter.n_heads))
    if per_position:
        dims.append("position")
        coords["position"] = [f"{p}:{pairs.labels[p]}" if p < len(pairs.labels) else str(p) for p in range(pairs.n_pos)]
    return PatchResult(values, tuple(dims), coords, suffix, "attribution", time.perf_counter() - t0)


def correlation(exact: PatchResult, estimate: PatchResult, *, over: str = "cells") -> float:
    """Pearson correlation of two maps of the same shape: ``over="cells"`` every (pair, cell),
    ``"mean"`` the pair-means."""
    a, b = (exact.values, estimate.values) if over == "cells" else (exact.mean, estimate.mean)
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    a, b = a.reshape(-1), b.reshape(-1)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def plot_agreement(exact: PatchResult, estimate: PatchResult, ax=None):
    """Scatter of exact vs attribution-patching scores (one dot per pair and cell), with r."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    x, y = exact.values.reshape(-1), estimate.values.reshape(-1)
    ax.scatter(x, y, s=6, alpha=0.4)
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
    ax.set_xlabel("exact patching (normalised)")
    ax.set_ylabel("attribution patching (estimate)")
    ax.set_title(f"{exact.site}: r = {correlation(exact, estimate):.2f}")
    return ax


# --- steering ------------------------------------------------------------------------------------
@dataclass
class SteeringVector:
    """A direction to add at ``site``: mean activation on ``positive`` minus on ``negative`` prompts."""

    vector: "object"  # FloatTensor [d_model] (or [pos, d_model]: added at the first positions)
    site: str

    @property
    def norm(self) -> float:
        return float(self.vector.norm())

    def random_like(self, seed: int = 0) -> "SteeringVector":
        """A random direction of the same norm (the baseline every steering effect is compared with)."""
        import torch

        g = torch.Generator().manual_seed(seed)
        r = torch.randn(self.vector.shape, generator=g)
        return SteeringVector(r * (self.vector.norm() / r.norm()), self.site)


def _mean_activation(sm, prompts, site: str, position):
    import torch

    acts = []
    for p in ([prompts] if isinstance(prompts, str) else prompts):  # one forward each: lengths may differ
        _, cache = sm.run_with_cache(_one(sm, p), names=[site])
        a = cache[site][0].float()
        acts.append(a.mean(0) if position == "mean" else a[position])
    return torch.stack(acts).mean(0)


def steering_vector(model, positive, negative, site: str, *, position="mean") -> SteeringVector:
    """Difference of mean activations at ``site`` between ``positive`` and ``negative`` prompts.

    ``position``: ``"mean"`` (average over each prompt's tokens) or an index (e.g. -1, the last token)."""
    sm = _wrap(model)
    _check_site(sm, site)
    if not positive or not negative:
        raise ValueError("steering_vector needs at least one positive and one negative prompt")
    vec = _mean_activation(sm, positive, site, position) - _mean_activation(sm, negative, site, position)
    return SteeringVector(vec, site)


def _add_hook(vec, strength):
    """Adds ``strength * vec`` at every position; ``strength`` is a number, or one number per row of the batch."""
    import torch

    rows = torch.as_tensor(strength, dtype=torch.float32).reshape(-1, 1, 1)  # broadcasts over (row, position, d)

    def hook(act, hook):
        v = vec.to(act.dtype)
        s = rows.to(act.dtype)
        if v.dim() == 1:
            return act + s * v
        k = v.shape[0]
        if act.shape[1] < k:
            # decoding step with a cache (one new token) or a short prompt: a per-position vector cannot fit
            raise ValueError(f"steering vector covers {k} positions but the input has {act.shape[1]}")
        act = act.clone()
        act[:, :k] += s * v
        return act

    return hook


@contextlib.contextmanager
def steer(model, vector: SteeringVector, strength: float = 1.0):
    """Within the block, every forward of ``model`` adds ``strength * vector`` at its site (every
    position). Hooks come off on exit, also after an error."""
    sm = _wrap(model)
    _check_site(sm, vector.site)
    with sm.hooks(fwd_hooks=[(vector.site, _add_hook(vector.vector, float(strength)))]):
        yield sm


def _word_ids(sm, words) -> list[int]:
    return [_token_id(sm, w) for w in ([words] if isinstance(words, str) else words)]


def _scores(sm, prompts, site: str, adds, up, down, progress: bool = False):
    """[prompt, row]: log P(any ``up`` token) - log P(any ``down`` token) for the next token, with
    ``adds[row]`` (a [d_model] vector) added at ``site`` (every position). All rows of one prompt
    share one forward."""
    import torch
    from tqdm.auto import tqdm

    out = np.empty((len(prompts), adds.shape[0]))

    def hook(act, hook):
        return act + adds.to(act.dtype)[:, None, :]

    with torch.no_grad(), sm.hooks(fwd_hooks=[(site, hook)]):
        for i, p in enumerate(tqdm(prompts, desc="steering", unit="prompt", disable=not progress, leave=False)):
            tokens = _one(sm, p).expand(adds.shape[0], -1)
            lp = _forward(sm, tokens).log_softmax(-1)
            out[i] = (torch.logsumexp(lp[:, up], 1) - torch.logsumexp(lp[:, down], 1)).cpu().numpy()
    return out


def steering_effect(model, vector: SteeringVector, prompts, up, down, strengths=(0, 2, 4, 8), *,
                    n_random: int = 5, seed: int = 0, progress: bool = True):
    """How far adding ``vector`` moves next-token preference toward ``up`` words and away from ``down``
    words on ``prompts`` (use held-out ones), at each strength, beside ``n_random`` random vectors of
    the same norm.

    Returns a DataFrame: ``strength``, ``vector`` ("steering" | "random"), ``effect`` (mean over
    prompts of the change in log P(up) - log P(down) against no steering), ``sd`` (steering: over
    prompts; random: over the random vectors of their mean effect), ``n``. Every strength and random
    vector of a prompt runs in one batched forward."""
    import pandas as pd
    import torch

    sm = _wrap(model)
    _check_site(sm, vector.site)
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts:
        raise ValueError("steering_effect needs at least one held-out prompt")
    if vector.vector.dim() != 1 or vector.vector.shape[0] != sm.adapter.d_model:
        raise ValueError(f"steering vector has shape {tuple(vector.vector.shape)}, expected ({sm.adapter.d_model},)")
    up, down = _word_ids(sm, up), _word_ids(sm, down)
    vecs = torch.stack([vector.vector.float()] + [vector.random_like(seed + i).vector.float() for i in range(n_random)])
    strengths = [float(s) for s in strengths]
    adds = torch.cat([torch.zeros(1, vecs.shape[1])] + [s * vecs for s in strengths])  # row 0: no steering
    sc = _scores(sm, prompts, vector.site, adds, up, down, progress)
    d = (sc[:, 1:] - sc[:, :1]).reshape(len(prompts), len(strengths), 1 + n_random)
    rows = []
    for k, s in enumerate(strengths):
        e = d[:, k, 0]
        rows.append({"strength": s, "vector": "steering", "effect": float(e.mean()), "sd": float(e.std()),
                     "n": len(prompts)})
        if n_random:
            r = d[:, k, 1:].mean(0)
            rows.append({"strength": s, "vector": "random", "effect": float(r.mean()), "sd": float(r.std()),
                         "n": n_random})
    return pd.DataFrame(rows)


def generate(model, prompt: str, *, vector: SteeringVector | None = None, strength=0.0,
             max_new_tokens: int = 20):
    """Greedy continuation of ``prompt`` (optionally steered). A plain loop over forwards, so the
    steering hook sees every position of every step, for any model the kit wraps.

    ``strength`` may also be a list (``[0, 8, -8]``): one continuation per strength, returned as a
    list, computed side by side as rows of one batch (one prompt, so no padding). A forward of a
    small model on CPU costs about as much for a few rows as for one (reading the weights dominates),
    so comparing strengths this way costs about one generation, not one per strength."""
    import torch

    sm = _wrap(model)
    many = isinstance(strength, (list, tuple, np.ndarray))
    try:
        strengths = [float(x) for x in (strength if many else [strength])]
    except (TypeError, ValueError):
        raise ValueError(f"strength must be a number or a list of numbers, got {strength!r}") from None
    if not strengths:
        raise ValueError("strength: give a number or a non-empty list of numbers")
    tokens = _one(sm, prompt).expand(len(strengths), -1)
    start = tokens.shape[1]
    if vector is not None and any(strengths):
        _check_site(sm, vector.site)
        ctx = sm.hooks(fwd_hooks=[(vector.site, _add_hook(vector.vector, strengths))])
    else:
        ctx = contextlib.nullcontext()
    eos = getattr(getattr(sm, "tokenizer", None), "eos_token_id", None)
    done = torch.zeros(len(strengths), dtype=torch.bool)
    with ctx, torch.no_grad():
        for _ in range(max_new_tokens):
            if tokens.shape[1] >= sm.adapter.n_ctx:
                break
            nxt = _forward(sm, tokens).argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, nxt], 1)
            if eos is not None:
                done |= nxt[:, 0] == eos
                if bool(done.all()):
                    break
    texts = []
    for row in tokens[:, start:]:
        ids = row.tolist()
        if eos is not None and eos in ids:  # a row that stopped keeps its end token, as a lone run does
            ids = ids[:ids.index(eos) + 1]
        texts.append(_decode(sm, torch.tensor(ids, dtype=torch.long)))
    return texts if many else texts[0]


def _decode(sm, ids) -> str:
    tok = getattr(sm, "tokenizer", None)
    if tok is not None and hasattr(tok, "decode"):
        return tok.decode(ids.tolist())
    return " ".join(str(int(i)) for i in ids)


# --- logit lens ----------------------------------------------------------------------------------
def logit_lens(model, text, target, position: int = -1):
    """Where ``target`` ranks among next-token predictions read off the residual stream after the
    embedding and after every layer (final norm + unembedding applied to each; nostalgebraist 2020).

    Returns a DataFrame: ``read after`` ("embed", "layer 0", ...), ``rank`` (1 = top), ``prob``,
    ``top`` (the lens's own top token)."""
    import pandas as pd
    import torch

    sm = _wrap(model)
    a = sm.adapter
    if a.kind == "encoder":
        raise ValueError(f"{a.name} is an encoder with no unembedding: the logit lens needs a causal LM")
    tokens = _tokens(sm, text, "lens")
    if not -tokens.shape[1] <= position < tokens.shape[1]:
        raise _range_error(f"position {position} is out of range for a prompt of {tokens.shape[1]} tokens")
    tid = _token_id(sm, target)
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post" for i in range(a.n_layers)]
    with torch.no_grad():
        _, cache = sm.run_with_cache(tokens, names=names)
        resid = torch.stack([cache[n][0, position] for n in names])
        logits = a.logit_lens(resid).float()
    rows = []
    for i, lg in enumerate(logits):
        rows.append({"read after": "embed" if i == 0 else f"layer {i - 1}",
                     "rank": int((lg > lg[tid]).sum()) + 1,
                     "prob": float(torch.softmax(lg, -1)[tid]),
                     "top": _decode(sm, lg.argmax().view(1))})
    return pd.DataFrame(rows)


# --- remote (NDIF through nnsight) ----------------------------------------------------------------
class RemoteUnavailableError(InterplabError, RuntimeError):
    """Remote execution was asked for but cannot run here (no key, no network)."""


def _ndif_key() -> str:
    """NDIF_API_KEY from the environment or ``.env`` (through the kit's one .env loader)."""
    import os

    from . import config

    config.load_dotenv()
    key = os.environ.get("NDIF_API_KEY", "").strip()
    if not key:
        raise RemoteUnavailableError("remote=True runs on NDIF through nnsight and needs NDIF_API_KEY in .env or the "
                                     "environment (a free key from https://login.ndif.us)")
    if not config.network_allowed():
        raise RemoteUnavailableError("remote=True needs the network, but it is off here (HF_HUB_OFFLINE=1): "
                                     "unset it to reach NDIF")
    return key


def remote_logit_lens(model_id: str, text: str, target: str, *, remote: bool = True, position: int = -1):
    """The logit lens of :func:`logit_lens`, run by nnsight on NDIF's copy of ``model_id`` (``remote=True``;
    a Hugging Face id NDIF hosts, Llama-style ``model.layers`` / ``model.norm`` / ``lm_head``), or by nnsight
    locally (``remote=False``). Written with nnsight because NDIF executes only nnsight traces; the local
    sites layer's PyTorch hooks cannot run there."""
    import pandas as pd
    import torch

    from . import models

    spec = models.parse_model_name(model_id)
    if spec.backend != "hf":
        raise ValueError(f"remote execution needs a Hugging Face model id that NDIF hosts, not {str(spec)!r}")
    key = _ndif_key() if remote else None
    import nnsight

    if key:
        nnsight.CONFIG.API.APIKEY = key  # this session only (set_default_api_key would write it to disk)
    try:
        lm = nnsight.LanguageModel(spec.id)
        saved = []
        with lm.trace(text, remote=remote):
            for layer in lm.model.layers:
                out = layer.output
                h = out[0] if isinstance(out, tuple) else out
                saved.append(lm.lm_head(lm.model.norm(h[:, position])).save())
        tok = lm.tokenizer
    except RemoteUnavailableError:
        raise
    except (OSError, ConnectionError) as exc:
        raise RemoteUnavailableError(f"could not reach NDIF or the hub for {spec.id!r}: {type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    tid = tok(target, add_special_tokens=False)["input_ids"]
    if len(tid) != 1:
        raise ValueError(f"target {target!r} is {len(tid)} tokens; give one token (with its leading space)")
    rows = []
    for i, s in enumerate(saved):
        lg = torch.as_tensor(getattr(s, "value", s)).float().reshape(-1)
        rows.append({"read after": f"layer {i}", "rank": int((lg > lg[tid[0]]).sum()) + 1,
                     "prob": float(torch.softmax(lg, -1)[tid[0]]), "top": tok.decode([int(lg.argmax())])})
    return pd.DataFrame(rows)
