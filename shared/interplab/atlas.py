"""Activation atlases and a neuron explorer, for images (the MNIST MLP of ``interplab.graph``) and text
(any BERT-style encoder, e.g. the embedded MiniLM).

    acts = mlp_activations(model, test_df)                  # [N, 500] hidden ReLU activations
    xy = layout(acts, method="tsne")                       # 2-D (t-SNE keeps neighbourhoods)
    atlas = grid_atlas(xy, grid=12)                         # every example in a grid cell
    plot_image_atlas(atlas, images)                         # each cell: the average input of its examples
    show_top_images(images, acts, neuron=17)                # a neuron's top-k activating inputs
    fv = visualize_neuron(model, neuron=17)                 # feature visualization by gradient ascent

    ta = text_activations(encoder, tokenizer, sentences)    # per-token FFN neurons + pooled sentence vectors
    text_atlas_view(grid_atlas(layout(ta.pooled)), ta)      # each cell: its most typical sentence (HTML)
    neuron_view(ta, neuron=123)                             # top sentences, tokens shaded by activation

The simple atlas of the Activation Atlas article (Carter et al., 2019): lay activation vectors out
in 2-D, cut the plane into a grid, and show what each cell's examples have in common. Here the
check that a cell means something is ``nearest_centre``: the share of examples whose nearest cell mean (in
activation space, not in the 2-D picture) is their own cell's; ``layout_check`` scores it for the layout and
for random layouts side by side, so the number comes with its baseline.
All views render offline (matplotlib figures, or HTML with no scripts).
"""
from __future__ import annotations

import html as _html
import re
from dataclasses import dataclass, field

import numpy as np

from .html import HTMLView, shade, shaded_tokens
from .torchutil import limit_threads


# --------------------------------------------------------------------------------------------- activations
def mlp_activations(model, images, layer: int = 1) -> np.ndarray:
    """Post-ReLU activations ``[N, units]`` of hidden layer ``layer`` (1 = first) of an ``interplab.graph`` MLP.

    ``images`` are in the training data's units (a DataFrame with ``image``, a list or an array).
    """
    import torch
    from torch import nn

    from .graph import images_to_tensor

    x = images_to_tensor(images, model.input_scale, model.image_shape)
    relus = [i for i, m in enumerate(model) if isinstance(m, nn.ReLU)]
    if not 1 <= layer <= len(relus):
        raise IndexError(f"the model has {len(relus)} hidden layer(s); layer must be 1..{len(relus)}, got {layer}")
    with torch.no_grad():
        return model[: relus[layer - 1] + 1](x).numpy()


@dataclass
class TextActivations:
    """Activations of an encoder over sentences at one layer.

    ``tokens[i]`` are sentence i's word pieces (special tokens dropped); ``neurons[i]`` is
    ``[len(tokens[i]), d_ff]``: the layer's feed-forward neurons (after GELU) per token;
    ``pooled`` is ``[N, d_model]``: the layer's output mean-pooled over tokens (the sentence vector).
    """

    sentences: list[str]
    tokens: list[list[str]]
    neurons: list[np.ndarray]
    pooled: np.ndarray
    layer: int
    model_name: str = ""
    offsets: list[list[tuple[int, int]]] | None = None  # each token's (start, end) characters in its sentence


    def max_per_sentence(self) -> np.ndarray:
        """``[N, d_ff]``: each neuron's largest activation over a sentence's tokens (how examples are ranked)."""
        return np.stack([a.max(0) if len(a) else np.full(a.shape[1], -np.inf) for a in self.neurons])


def split_sentences(texts, min_chars: int = 20, max_chars: int = 300) -> list[str]:
    """Sentences of longer texts (split after . ! ? and on line breaks), dropping very short or very long
    ones and repeats (first occurrence kept, order preserved)."""
    out, seen = [], set()
    for text in texts:
        text = re.sub(r"<br\s*/?>", " ", str(text))
        for s in re.split(r"(?<=[.!?])\s+|\n+", text):
            s = s.strip()
            if min_chars <= len(s) <= max_chars and s not in seen:
                seen.add(s)
                out.append(s)
    return out


def text_activations(model, tokenizer, sentences, layer: int = -1, batch_size: int = 32, max_length: int = 128,
                     progress: bool = True, threads: int | None = 1) -> TextActivations:
    """Run ``sentences`` through a model (a BERT-style encoder; any model ``interplab.sites`` reads) and keep
    block ``layer``'s FFN neurons (``blocks.{layer}.mlp.hook_post``) and its output mean-pooled per sentence
    (``blocks.{layer}.hook_resid_post`` = ``hidden_states[layer + 1]``), on ``threads`` CPU threads."""
    with limit_threads(threads):
        return _text_activations(model, tokenizer, sentences, layer, batch_size, max_length, progress)


def _text_activations(model, tokenizer, sentences, layer, batch_size, max_length, progress):
    from tqdm.auto import tqdm

    from . import sites

    sentences = [str(s) for s in sentences]
    if not sentences:
        raise ValueError("no sentences given")
    sm = sites.wrap(model, tokenizer)
    n = sm.adapter.n_layers
    if not -n <= layer < n:
        raise IndexError(f"the encoder has {n} layers; layer must be in -{n}..{n - 1}, got {layer}")
    layer = layer % n
    # FFN neurons: what the block's output projection reads; pooled: the block's output (hidden_states[layer + 1])
    ff_site, resid_site = f"blocks.{layer}.mlp.hook_post", f"blocks.{layer}.hook_resid_post"
    tokens, neurons, pooled, offsets = [], [], [], []
    for start in tqdm(range(0, len(sentences), batch_size), desc="encoding", disable=not progress, leave=False):
        batch = sentences[start : start + batch_size]
        fast = bool(getattr(tokenizer, "is_fast", False))
        enc = tokenizer(batch, return_tensors="pt", padding=True, truncation=True, max_length=max_length,
                        return_special_tokens_mask=True, return_offsets_mapping=fast)
        special = enc.pop("special_tokens_mask").bool()
        spans = enc.pop("offset_mapping") if fast else None
        ids_t = enc.pop("input_ids")
        _, cache = sm.run_with_cache(ids_t, names=[ff_site, resid_site], **enc)
        hidden, ff = cache[resid_site], cache[ff_site]
        keep = enc["attention_mask"].bool() & ~special
        for i in range(len(batch)):
            k = keep[i]
            ids = ids_t[i][k].tolist()
            tokens.append(tokenizer.convert_ids_to_tokens(ids))
            offsets.append([tuple(int(v) for v in o) for o in spans[i][k].tolist()] if spans is not None else None)
            neurons.append(ff[i][k].float().numpy())
            pooled.append(hidden[i][k].mean(0).float().numpy() if k.any() else np.zeros(hidden.shape[-1], np.float32))
    from .models import display_name

    return TextActivations(sentences, tokens, neurons, np.stack(pooled), layer, display_name(model),
                           offsets if all(o is not None for o in offsets) else None)


# --------------------------------------------------------------------------------------------- layout & atlas
def layout(acts, method: str = "auto", seed: int = 0, perplexity: float = 30.0, threads: int | None = 1) -> np.ndarray:
    """2-D coordinates ``[N, 2]`` of activation vectors: ``interplab.text.project`` (the kit's one
    projection, with its one ``"auto"`` rule: UMAP when installed, else PCA; pass ``"tsne"`` to keep
    neighbourhoods when there is no UMAP) for N >= 3 examples, on ``threads`` threads."""
    from .text.maps import project

    acts = np.asarray(acts, dtype=np.float32)
    if acts.ndim != 2 or len(acts) < 3:
        raise ValueError(f"layout needs [N >= 3, dims] activations, got shape {acts.shape}")
    with limit_threads(threads):
        return project(acts, method, random_state=seed, perplexity=perplexity)


@dataclass
class Atlas:
    """A grid over a 2-D layout: ``cell[i]`` is example i's cell id (``row * grid + col``, row 0 at the top);
    ``cells`` has one row per non-empty cell: ``cell``, ``row``, ``col``, ``count``, ``members`` (example indices)."""

    xy: np.ndarray
    grid: int
    cell: np.ndarray
    cells: "object" = field(repr=False)  # pandas DataFrame

    def members(self, cell: int) -> np.ndarray:
        return np.flatnonzero(self.cell == cell)


def grid_atlas(xy, grid: int = 12) -> Atlas:
    """Cut the layout's bounding box into ``grid x grid`` cells and put every example in one."""
    import pandas as pd

    xy = np.asarray(xy, dtype=np.float64)
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    lo, hi = xy.min(0), xy.max(0)
    unit = (xy - lo) / np.where(hi > lo, hi - lo, 1.0)
    col = np.minimum((unit[:, 0] * grid).astype(int), grid - 1)
    row = np.minimum(((1 - unit[:, 1]) * grid).astype(int), grid - 1)
    cell = row * grid + col
    ids = np.unique(cell)
    cells = pd.DataFrame({
        "cell": ids, "row": ids // grid, "col": ids % grid,
        "count": [int((cell == c).sum()) for c in ids],
        "members": [np.flatnonzero(cell == c) for c in ids],
    })
    return Atlas(xy, grid, cell, cells)


def cell_means(atlas: Atlas, values) -> dict[int, np.ndarray]:
    """Per cell, the mean of ``values`` (e.g. images ``[N, H, W]`` or activations ``[N, D]``) over its examples."""
    values = np.asarray(values, dtype=np.float64)
    return {int(c): values[m].mean(0) for c, m in zip(atlas.cells["cell"], atlas.cells["members"])}


def typical_members(atlas: Atlas, acts) -> dict[int, int]:
    """Per cell, the example whose activation is nearest the cell's mean activation (its most typical example)."""
    acts = np.asarray(acts, dtype=np.float64)
    out = {}
    for c, m in zip(atlas.cells["cell"], atlas.cells["members"]):
        d = np.linalg.norm(acts[m] - acts[m].mean(0), axis=1)
        out[int(c)] = int(m[np.argmin(d)])
    return out


def cell_separation(atlas: Atlas, acts):
    """Does each cell group similar activations? Per cell, in activation space (not in the 2-D picture):

    ``own``: mean distance of its examples to the mean of the cell's OTHER examples (leave-one-out, so an
    example is not compared with an average that contains itself; NaN for a single-example cell);
    ``other``: mean distance of its examples to the other cells' means, averaged over those cells;
    ``nearer_own``: ``own < other`` (NA for single-example cells, which ``.all()`` skips).
    A weak test on its own: random layouts pass it for 60-85% of the cells (the average other cell is far
    away). ``nearest_centre`` and ``layout_check`` compare against every cell and against random layouts.
    """
    import pandas as pd

    acts = np.asarray(acts, dtype=np.float64)
    means = cell_means(atlas, acts)
    ids = list(means)
    centres = np.stack([means[c] for c in ids])
    rows = []
    for j, c in enumerate(ids):
        m = atlas.members(c)
        n = len(m)
        d = np.linalg.norm(acts[m][:, None, :] - np.delete(centres, j, axis=0)[None, :, :], axis=2)
        other = float(d.mean()) if d.size else float("inf")
        if n >= 2:
            loo = (acts[m].sum(0)[None, :] - acts[m]) / (n - 1)
            own = float(np.linalg.norm(acts[m] - loo, axis=1).mean())
            nearer = own < other
        else:
            own, nearer = float("nan"), pd.NA
        rows.append({"cell": c, "count": n, "own": own, "other": other, "nearer_own": nearer})
    out = pd.DataFrame(rows)
    out["nearer_own"] = out["nearer_own"].astype("boolean")
    return out


def nearest_centre(atlas: Atlas, acts) -> float:
    """Fraction of examples (in cells of 2+) whose nearest cell mean, in activation space, is their OWN cell's
    mean without them (leave-one-out) rather than any other cell's mean.

    A stricter test than ``cell_separation``'s "nearer own than the average other cell": every other cell is a
    competitor, so a random layout scores about ``1 / cells`` and a layout that keeps neighbours together
    scores far above it (neighbouring cells of one cluster still compete, so 1.0 is not expected).
    """
    acts = np.asarray(acts, dtype=np.float64)
    ids = atlas.cells["cell"].to_numpy()
    centres = np.stack([acts[m].mean(0) for m in atlas.cells["members"]])
    counts = atlas.cells["count"].to_numpy()
    col = {int(c): j for j, c in enumerate(ids)}
    own_j = np.array([col[int(c)] for c in atlas.cell])
    ok = counts[own_j] >= 2
    if not ok.any():
        raise ValueError("no cell has 2+ examples; use a coarser grid")
    x, j = acts[ok], own_j[ok]
    d2 = (x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None, :]
    n = counts[j][:, None].astype(np.float64)
    loo = (centres[j] * n - x) / (n - 1)  # own cell's mean without the example itself
    d2[np.arange(len(x)), j] = ((x - loo) ** 2).sum(1)
    return float((d2.argmin(1) == j).mean())


def layout_check(xy, acts, grid: int, n_random: int = 5, seed: int = 0):
    """Score a layout against random ones: ``nearest_centre`` and ``cell_separation``'s pass rate for the
    layout ``xy`` and for ``n_random`` random layouts (the same points with the activations shuffled among
    them, so cell sizes are unchanged). A criterion is only worth reporting if the random rows fail it.
    One row per layout: ``layout`` ("this layout" / "random 1" ...), ``nearest_centre``, ``nearer_own``."""
    import pandas as pd

    acts = np.asarray(acts, dtype=np.float64)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_random + 1):
        a = acts if i == 0 else acts[rng.permutation(len(acts))]
        g = grid_atlas(xy, grid=grid)
        rows.append({"layout": "this layout" if i == 0 else f"random {i}", "nearest_centre": nearest_centre(g, a),
                     "nearer_own": float(cell_separation(g, a)["nearer_own"].mean())})
    return pd.DataFrame(rows)


def plot_image_atlas(atlas: Atlas, images, ax=None, cmap: str = "gray_r", title: str = ""):
    """Draw the atlas as one mosaic: each non-empty cell shows the average image of its examples."""
    import matplotlib.pyplot as plt

    images = np.stack([np.asarray(im, dtype=np.float64) for im in images])
    h, w = images.shape[1:]
    canvas = np.full((atlas.grid * (h + 1), atlas.grid * (w + 1)), np.nan)
    for c, mean in cell_means(atlas, images).items():
        r, k = divmod(c, atlas.grid)
        canvas[r * (h + 1) : r * (h + 1) + h, k * (w + 1) : k * (w + 1) + w] = mean
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 7))
    ax.imshow(canvas, cmap=cmap, interpolation="nearest")
    ax.set_title(title or f"activation atlas: {len(atlas.cells)} cells, average input per cell")
    ax.axis("off")
    return ax


def plot_layout(xy, labels=None, ax=None, title: str = "", grid: int | None = None):
    """Scatter of the 2-D layout coloured by label, with the atlas grid lines when ``grid`` is given."""
    import matplotlib.pyplot as plt

    xy = np.asarray(xy)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=6)
    if labels is not None:
        ax.legend(*sc.legend_elements(), fontsize=7, loc="best", markerscale=0.8, title="label")
    if grid:
        lo, hi = xy.min(0), xy.max(0)
        for t in np.linspace(0, 1, grid + 1):
            ax.axvline(lo[0] + t * (hi[0] - lo[0]), color="0.85", lw=0.5, zorder=0)
            ax.axhline(lo[1] + t * (hi[1] - lo[1]), color="0.85", lw=0.5, zorder=0)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def text_atlas_view(atlas: Atlas, ta: TextActivations, acts=None, max_chars: int = 90) -> HTMLView:
    """The text atlas as an HTML grid: each non-empty cell shows its most typical sentence and its size.

    ``acts`` defaults to ``ta.pooled`` (the vectors the layout was made from)."""
    acts = ta.pooled if acts is None else acts
    typical = typical_members(atlas, acts)
    counts = dict(zip(atlas.cells["cell"], atlas.cells["count"]))
    top = max(counts.values())
    cells_html = []
    for r in range(atlas.grid):
        for k in range(atlas.grid):
            c = r * atlas.grid + k
            if c in typical:
                s = ta.sentences[typical[c]]
                s = s if len(s) <= max_chars else s[: max_chars - 1] + "…"
                shade = 0.08 + 0.3 * counts[c] / top
                cells_html.append(
                    f"<div style='background:rgba(31,119,180,{shade:.2f});padding:3px;font-size:10px;line-height:1.2;"
                    f"overflow:hidden' title='{_html.escape(ta.sentences[typical[c]], quote=True)}'>"
                    f"<b>{counts[c]}</b> {_html.escape(s)}</div>"
                )
            else:
                cells_html.append("<div></div>")
    body = (
        f"<div class='interplab-atlas' style='display:grid;grid-template-columns:repeat({atlas.grid},1fr);"
        f"gap:2px;font-family:sans-serif;max-width:1100px'>" + "".join(cells_html) + "</div>"
        f"<p style='font-size:11px;color:#555'>{len(ta.sentences)} sentences, layer {ta.layer}; each cell: "
        "number of sentences and the most typical one (nearest the cell's mean activation); darker = more sentences.</p>"
    )
    return HTMLView(body, title="text activation atlas")


# --------------------------------------------------------------------------------------------- neuron explorer
def top_k(acts, neuron: int, k: int = 16) -> np.ndarray:
    """Indices of the ``k`` examples with the highest activation of ``neuron`` (``acts`` is ``[N, units]``), highest first."""
    acts = np.asarray(acts)
    if not 0 <= neuron < acts.shape[1]:
        raise IndexError(f"neuron {neuron} out of range: there are {acts.shape[1]} units")
    col = acts[:, neuron]
    return np.argsort(-col, kind="stable")[: min(k, len(col))]


def selective_units(acts, k: int = 5, top: int = 10) -> np.ndarray:
    """The ``k`` units that fire hardest on their favourite examples compared with a typical one: ranked by
    the mean of each unit's ``top`` largest activations minus its median (a unit that fires on a single
    example scores low). Good first neurons to explore."""
    acts = np.asarray(acts, dtype=np.float64)
    top = max(1, min(top, len(acts)))
    score = np.sort(acts, axis=0)[-top:].mean(0) - np.median(acts, axis=0)
    return np.argsort(-score, kind="stable")[:k]


def show_images(images, titles=None, ncols: int = 8, cmap: str = "gray_r", size: float = 1.1, suptitle: str = "",
                vmin=None, vmax=None):
    """A grid of small images with optional titles; returns the figure."""
    import matplotlib.pyplot as plt

    images = list(images)
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(np.asarray(images[i]), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def show_top_images(images, acts, neuron: int, k: int = 16, labels=None, ncols: int = 8):
    """A neuron's top-k activating images, each titled with its activation (and label)."""
    idx = top_k(acts, neuron, k)
    acts = np.asarray(acts)
    titles = [f"{acts[i, neuron]:.2f}" + (f" ({labels[i]})" if labels is not None else "") for i in idx]
    return show_images([images[i] for i in idx], titles, ncols=ncols, suptitle=f"unit {neuron}: top {len(idx)} inputs")


def top_tokens(ta: TextActivations, neuron: int, k: int = 10):
    """The ``k`` (sentence, token) positions where ``neuron`` fires most, as a DataFrame."""
    import pandas as pd

    rows = [(i, t, tok, float(a[t, neuron])) for i, (toks, a) in enumerate(zip(ta.tokens, ta.neurons))
            for t, tok in enumerate(toks)]
    df = pd.DataFrame(rows, columns=["sentence", "position", "token", "activation"])
    return df.nlargest(k, "activation").reset_index(drop=True)


def neuron_view(ta: TextActivations, neuron: int, k: int = 8) -> HTMLView:
    """The ``k`` sentences where ``neuron`` fires most (by its largest token activation), each token
    shaded by its activation (orange = positive, relative to the neuron's top activation). Pure HTML."""
    maxes = ta.max_per_sentence()
    idx = top_k(maxes, neuron, k)
    scale = float(maxes[idx[0], neuron]) if len(idx) and maxes[idx[0], neuron] > 0 else 1.0
    lines = []
    for i in idx:
        sentence, offsets, acts = ta.sentences[i], (ta.offsets[i] if ta.offsets else None), ta.neurons[i][:, neuron]
        if offsets:  # the sentence's own characters (case, spacing), gaps left unshaded
            ends = [0] + [stop for _, stop in offsets]
            gaps = [sentence[e:start] for e, (start, _) in zip(ends, offsets)]
            texts, tail = [sentence[a:b] for a, b in offsets], sentence[ends[-1]:]
        else:
            pieces = [("", tok[2:]) if tok.startswith("##") else (" ", tok) for tok in ta.tokens[i]]
            gaps, texts, tail = [g for g, _ in pieces], [t for _, t in pieces], ""
        spans = shaded_tokens(texts, [shade(a, scale) for a in acts], [f"{a:.3f}" for a in acts], gaps=gaps, tail=tail)
        lines.append(f"<div style='margin:2px 0'><code style='color:#888'>{maxes[i, neuron]:6.2f}</code> {spans}</div>")
    body = (
        f"<div class='interplab-neuron' style='font-family:sans-serif;font-size:13px'>"
        f"<b>layer {ta.layer}, FFN neuron {neuron}</b>: top {len(idx)} of {len(ta.sentences)} sentences "
        "(number = max activation; hover a token for its value)" + "".join(lines) + "</div>"
    )
    return HTMLView(body, title=f"neuron {neuron}")


# --------------------------------------------------------------------------------------------- feature visualization
@dataclass
class FeatureVis:
    """An input optimised to excite one unit: ``image`` in the training data's units, ``activation`` reached,
    ``history`` of the activation over the steps."""

    image: np.ndarray
    activation: float
    history: list[float]
    neuron: int
    layer: str


def visualize_neuron(model, neuron: int, layer: str = "hidden", steps: int = 200, lr: float = 0.1,
                     l2: float = 0.01, tv: float = 0.05, seed: int = 0, threads: int | None = 1) -> FeatureVis:
    """Feature visualization by gradient ascent on the input: maximise unit ``neuron`` of ``layer``
    (``"hidden"``: a first-hidden-layer unit, pushed before its ReLU; ``"output"``: a class logit) over images in [0, 1]
    (a sigmoid keeps pixels in range), minus small L2 and total-variation penalties that keep the
    image smooth and sparse. Returns the image scaled back to the training data's units."""
    with limit_threads(threads):
        return _visualize_neuron(model, neuron, layer, steps, lr, l2, tv, seed)


def _visualize_neuron(model, neuron, layer, steps, lr, l2, tv, seed):
    import torch
    from torch import nn

    if layer not in ("hidden", "output"):
        raise ValueError(f"layer must be 'hidden' or 'output', got {layer!r}")
    # a hidden unit is optimised before its ReLU, so a unit that is off at the start still gets a gradient
    sub = model[: [i for i, m in enumerate(model) if isinstance(m, nn.ReLU)][0]] if layer == "hidden" else model
    with torch.no_grad():
        n_units = sub(torch.zeros(1, *model.image_shape)).shape[1]
    if not 0 <= neuron < n_units:
        raise IndexError(f"neuron {neuron} out of range: the {layer} layer has {n_units} units")
    gen = torch.Generator().manual_seed(seed)
    param = (torch.randn(1, *model.image_shape, generator=gen) * 0.1 - 2.0).requires_grad_(True)
    opt = torch.optim.Adam([param], lr=lr)
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    history = []
    try:
        for _ in range(steps):
            x = torch.sigmoid(param)
            act = sub(x)[0, neuron]
            smooth = (x[:, 1:, :] - x[:, :-1, :]).pow(2).mean() + (x[:, :, 1:] - x[:, :, :-1]).pow(2).mean()
            loss = -act + l2 * x.pow(2).sum() + tv * smooth * x[0].numel()
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append(float(act.detach()))
        with torch.no_grad():
            x = torch.sigmoid(param)
            final = float(sub(x)[0, neuron])
            if layer == "hidden":
                final = max(final, 0.0)  # report the unit's ReLU output
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
    return FeatureVis((x[0] * model.input_scale).numpy(), final, history, int(neuron), layer)
