"""A network as two tables (the CSV schema of ``starters/mnist-graph``): vertices and edges, with weights or
one input's activation flow, pruning to the strongest edges, and reading / writing ``vertices.csv`` / ``edges.csv``."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .inputs import images_to_tensor
from .schema import EDGE_COLUMNS, VERTEX_COLUMNS, InputShapeError, ModelFileError


def _offsets(sizes):
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _vertex_table(sizes, biases):
    import pandas as pd

    off = _offsets(sizes)
    layer = np.repeat(np.arange(len(sizes)), sizes)
    index = np.concatenate([np.arange(s) for s in sizes])
    bias = np.concatenate([np.full(sizes[0], np.nan, dtype=np.float32)] + [np.asarray(b, dtype=np.float32) for b in biases])
    return pd.DataFrame({"id": np.arange(off[-1]), "layer": layer, "index": index, "bias": bias})


def to_tables(model):
    """(vertices, edges) DataFrames of a model: the CSV schema (see ``interplab.graph``).

    MLP: one edge per weight, ``edges.weight[k] == W[to_index, from_index]``, listed by target then source.
    CNN: one vertex per channel and class, one edge per (input channel, output channel) kernel.
    """
    import pandas as pd

    layers = model.weight_layers()
    sizes = list(model.sizes)
    off = _offsets(sizes)
    frames = []
    for l, m in enumerate(layers):
        w = m.weight.detach().float()
        n_out, n_in = int(w.shape[0]), int(w.shape[1])
        if (n_out, n_in) != (sizes[l + 1], sizes[l]):
            raise ModelFileError(f"layer {l + 1} has weight shape {tuple(w.shape)}, expected ({sizes[l + 1]}, {sizes[l]})")
        to_idx, from_idx = np.divmod(np.arange(n_out * n_in), n_in)
        cols = {"from_id": off[l] + from_idx, "to_id": off[l + 1] + to_idx}
        if w.ndim == 4:
            cols["weight"] = w.sum(dim=(2, 3)).numpy().ravel()
            cols["kernel_norm"] = w.flatten(2).norm(dim=2).numpy().ravel()
        else:
            cols["weight"] = w.numpy().ravel()
            if model.arch == "cnn":
                cols["kernel_norm"] = np.abs(cols["weight"])
        frames.append(pd.DataFrame(cols))
    vertices = _vertex_table(sizes, [m.bias.detach().numpy() for m in layers])
    edges = pd.concat(frames, ignore_index=True)
    return vertices, edges


def activation_flow(model, image):
    """(vertices, edges) for one input image (in the training data's units, e.g. 0-255 or 0-16).

    Adds to vertices ``activation`` (the input value scaled like training; a hidden unit's ReLU
    output; a class's logit) and ``preactivation`` (bias + sum of incoming flow; NaN for inputs),
    and to edges ``activation`` (of the source) and ``flow`` (the source's contribution to the
    target's preactivation: activation x weight for an MLP). ``preactivation`` of the output layer
    equals the model's logits.
    """
    import torch
    from torch import nn

    arr = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=np.float32)
    if arr.ndim in (1, 2):
        arr = arr[None]  # one image (or one flat vector)
    x = images_to_tensor(arr, model.input_scale, model.image_shape)
    if x.shape[0] != 1:
        raise InputShapeError(f"activation_flow takes one image, got a batch of {x.shape[0]}")
    vertices, edges = to_tables(model)
    sizes = list(model.sizes)
    acts, flows = [], []
    with torch.no_grad():
        if model.arch == "mlp":
            h = x.flatten(1)[0]
            acts.append(h)
            for m in model:
                if isinstance(m, nn.Linear):
                    flows.append((h[None, :] * m.weight).reshape(-1))
                    h = m(h)
                    acts.append(h)
                elif not isinstance(m, nn.Flatten):
                    h = m(h)
                    acts[-1] = h
        else:
            h = model.unflatten(x)  # [1, 1, H, W]
            acts.append(h.mean(dim=(0, 2, 3)))
            for m in model:
                if isinstance(m, nn.Conv2d):
                    a_in = h.shape[1]
                    w = m.weight  # [B, A, kh, kw] -> grouped conv gives every (a, b) contribution map
                    wg = w.transpose(0, 1).reshape(-1, 1, *w.shape[2:])
                    contrib = nn.functional.conv2d(h, wg, padding=m.padding, stride=m.stride, groups=a_in)
                    per = contrib.mean(dim=(0, 2, 3)).reshape(a_in, w.shape[0])  # [A, B]
                    flows.append(per.T.reshape(-1))
                    h = m(h)
                    acts.append(h.mean(dim=(0, 2, 3)))
                elif isinstance(m, nn.Linear):
                    flows.append((h[0][None, :] * m.weight).reshape(-1))
                    h = m(h)
                    acts.append(h[0])
                elif isinstance(m, nn.Unflatten):
                    continue
                else:
                    h = m(h)
                    if h.ndim == 4:
                        acts[-1] = h.mean(dim=(0, 2, 3))
    vertices["activation"] = torch.cat([a.reshape(-1) for a in acts]).numpy().astype(np.float32)
    edges["flow"] = torch.cat(flows).numpy().astype(np.float32)
    edges["activation"] = vertices["activation"].to_numpy()[edges["from_id"].to_numpy()]
    incoming = np.bincount(edges["to_id"], weights=edges["flow"].astype(np.float64), minlength=len(vertices))
    pre = vertices["bias"].to_numpy(dtype=np.float64) + incoming
    pre[: sizes[0]] = np.nan
    vertices["preactivation"] = pre
    return vertices, edges


def logits_from_flow(vertices, edges) -> np.ndarray:
    """Class scores read off an activation-flow graph: each output's bias + the sum of its incoming flow."""
    last = int(vertices["layer"].max())
    out = vertices[vertices["layer"] == last].sort_values("index")
    into = edges[edges["to_id"].isin(out["id"])]
    sums = into.groupby("to_id")["flow"].sum(min_count=0).reindex(out["id"], fill_value=0.0)
    return out["bias"].to_numpy(dtype=np.float64) + sums.to_numpy(dtype=np.float64)


def model_weights(model) -> list[np.ndarray]:
    """The weight matrices in edge order (``[out, in]``; conv kernels summed over space) for checks."""
    out = []
    for m in model.weight_layers():
        w = m.weight.detach()
        out.append((w.sum(dim=(2, 3)) if w.ndim == 4 else w).numpy())
    return out


def prune(edges, keep: int | float, by: str = "weight", vertices=None):
    """The strongest edges by ``|edges[by]|``: ``keep`` edges (an int), or that fraction of them (0 < keep < 1).

    With ``vertices``, ``keep`` applies to each layer's edges separately (so a drawing shows every layer:
    first-layer weights are often larger than the last layer's). Ties at the cut are broken by edge
    order; the result keeps the original order of the rows.
    """
    if by not in edges.columns:
        raise KeyError(f"edges have no column {by!r} (have {list(edges.columns)}); 'flow' needs activation_flow()")
    if isinstance(keep, bool) or not isinstance(keep, (int, float, np.integer, np.floating)):
        raise ValueError(f"keep must be a count >= 1 or a fraction in (0, 1), got {keep!r}")
    if vertices is not None:
        layer = vertices.set_index("id")["layer"].reindex(edges["to_id"]).to_numpy()
        rows = [np.flatnonzero(layer == l)[_strongest(edges[by].to_numpy()[layer == l], keep)] for l in np.unique(layer)]
        chosen = np.sort(np.concatenate(rows))
    else:
        chosen = _strongest(edges[by].to_numpy(), keep)
    return edges.iloc[chosen].reset_index(drop=True)


def backbone(vertices, edges, top: int = 30, fan_in: int = 4, by: str = "weight", sign: str = "abs"):
    """A small, connected subgraph to draw: the ``top`` strongest edges (by ``|edges[by]|``) into the output
    layer, then, going down layer by layer, the ``fan_in`` strongest incoming edges of every vertex kept so far.
    Every edge lies on a path that ends at a class, unlike a plain ``prune`` of a wide first layer.
    ``sign="positive"`` ranks by the signed value instead (only excitatory edges: what pushed scores up),
    ``"negative"`` by its negation."""
    if by not in edges.columns:
        raise KeyError(f"edges have no column {by!r} (have {list(edges.columns)}); 'flow' needs activation_flow()")
    if sign not in ("abs", "positive", "negative"):
        raise ValueError(f"sign must be 'abs', 'positive' or 'negative', got {sign!r}")
    layer_of = vertices.set_index("id")["layer"]
    dst_layer = layer_of.reindex(edges["to_id"]).to_numpy()
    values = edges[by].to_numpy(dtype=np.float64)
    strength = np.abs(values) if sign == "abs" else np.clip(values if sign == "positive" else -values, 0, None)
    last = int(vertices["layer"].max())
    into_last = np.flatnonzero((dst_layer == last) & (strength > 0))
    chosen = [into_last[_strongest(strength[into_last], top)]]
    targets = set(edges["from_id"].to_numpy()[chosen[0]].tolist())
    for l in range(last - 1, 0, -1):
        rows = np.flatnonzero((dst_layer == l) & edges["to_id"].isin(targets).to_numpy() & (strength > 0))
        if not len(rows):
            break
        order = rows[np.lexsort((-strength[rows], edges["to_id"].to_numpy()[rows]))]  # by target, strongest first
        to = edges["to_id"].to_numpy()[order]
        rank = np.arange(len(order)) - np.searchsorted(to, to)  # position within its target's group
        picked = order[rank < fan_in]
        chosen.append(picked)
        targets = set(edges["from_id"].to_numpy()[picked].tolist())
    return edges.iloc[np.sort(np.concatenate(chosen))].reset_index(drop=True)


def _strongest(values, keep) -> np.ndarray:
    """Sorted positions of the ``keep`` (count or fraction) largest ``|values|``."""
    n = len(values)
    if 0 < keep < 1:
        k = int(math.ceil(keep * n))
    elif keep >= 1 and float(keep).is_integer():
        k = int(keep)
    else:
        raise ValueError(f"keep must be a count >= 1 or a fraction in (0, 1), got {keep!r}")
    strength = np.abs(np.asarray(values, dtype=np.float64))
    return np.sort(np.argsort(-strength, kind="stable")[: min(k, n)])



def write_graph(out_dir, vertices, edges) -> tuple[Path, Path]:
    """Write ``vertices.csv`` and ``edges.csv`` into ``out_dir`` (float32 values round-trip exactly)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "vertices.csv", out / "edges.csv"
    for df, p in zip((vertices, edges), paths):
        tmp = p.with_name(p.name + ".tmp")
        df.to_csv(tmp, index=False, float_format="%.9g")
        tmp.replace(p)
    return paths


def read_graph(folder):
    """(vertices, edges) from ``vertices.csv`` / ``edges.csv``; ValueError naming any missing column or bad id."""
    import pandas as pd

    folder = Path(folder)
    tables = []
    for name, cols in (("vertices.csv", VERTEX_COLUMNS), ("edges.csv", EDGE_COLUMNS)):
        p = folder / name
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such file; run to_graph.py first")
        df = pd.read_csv(p)
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{p}: missing column(s) {', '.join(missing)}; expected {', '.join(cols)}")
        tables.append(df)
    vertices, edges = tables
    unknown = ~(edges["from_id"].isin(vertices["id"]) & edges["to_id"].isin(vertices["id"]))
    if unknown.any():
        raise ValueError(f"{folder / 'edges.csv'}: {int(unknown.sum())} edges name vertex ids not in vertices.csv")
    return vertices, edges
