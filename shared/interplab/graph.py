"""A neural network as a graph: neurons are vertices, weights are edges, and one input's
activations flow along them.

    model = train(interplab.data.load("mnist", split="train"))        # 784 -> 500 -> 10, ReLU
    vertices, edges = to_tables(model)         # vertices: id, layer, index, bias; edges: from_id, to_id, weight
    v, e = activation_flow(model, image)       # + activation on vertices, flow = activation x weight on edges
    G = to_networkx(v, prune(e, 2000, by="flow"))
    strongest_paths(vertices, edges, target=vid)  # exact best pixel -> unit -> class paths (layered DP)
    draw(to_networkx(v, backbone(v, e, by="flow")), v, model.image_shape)

Analysis helpers on top: ``degree_table`` (degree and strength), ``communities`` (Louvain),
``path_scores`` / ``pixel_path_maps``, ``class_influence``, ``ablate`` and ``ablation_test`` (does an
influential unit matter, against random units?), ``on_paths`` / ``backbone`` (subgraphs worth drawing).

The tables are the CSV schema of ``starters/mnist-graph`` (see its README): ``id`` numbers the vertices
layer by layer (input pixels first), ``layer`` is 0 for the input, ``index`` is the neuron's position
in its layer, ``bias`` is empty (NaN) for inputs. Edges run from layer ``l`` to ``l + 1`` only.

For an MLP the flow decomposes each neuron exactly: ``preactivation = bias + sum(incoming flow)``,
so a class's logit is its bias plus the flows on its incoming edges. ``arch="cnn"`` is a small conv
net exported as a graph of channels: an edge's ``weight`` is the sum of its kernel (the response to a
constant patch), ``kernel_norm`` its L2 norm, and its ``flow`` the spatial mean of what that input
channel adds to the output channel's map, so the same identity holds for the channel means.

Checkpoints (``model.pt``) are a dict with the architecture and the state_dict; a bare state_dict
of Linear layers (what ``torch.save(model.state_dict())`` writes) loads too. A malformed file raises
``ModelFileError`` and an image of the wrong shape ``InputShapeError``, each with a one-line message.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

CHECKPOINT_FORMAT = "interplab-mnist-graph"
CHECKPOINT_VERSION = 1
VERTEX_COLUMNS = ("id", "layer", "index", "bias")
EDGE_COLUMNS = ("from_id", "to_id", "weight")
ARCHS = ("mlp", "cnn")


class ModelFileError(ValueError):
    """model.pt is missing, not a PyTorch checkpoint, or does not hold a network this module knows."""


class InputShapeError(ValueError):
    """An input image whose shape does not match the model's input."""


# --------------------------------------------------------------------------------------------- models
def build_mlp(n_in: int = 784, hidden: int | list[int] = 500, n_out: int = 10, image_shape=None):
    """A ReLU MLP as ``nn.Sequential(flatten, fc1, relu1, ..., fcN)``; takes images ``[N, H, W]`` or ``[N, n_in]``."""
    from collections import OrderedDict

    from torch import nn

    sizes = [int(n_in)] + ([int(hidden)] if np.isscalar(hidden) else [int(h) for h in hidden]) + [int(n_out)]
    if min(sizes) < 1:
        raise ValueError(f"layer sizes must be positive, got {sizes}")
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    for i in range(len(sizes) - 1):
        layers.append((f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1])))
        if i < len(sizes) - 2:
            layers.append((f"relu{i + 1}", nn.ReLU()))
    model = nn.Sequential(OrderedDict(layers))
    side = int(round(math.sqrt(n_in)))
    model.arch = "mlp"
    model.sizes = sizes
    model.image_shape = tuple(image_shape) if image_shape is not None else ((side, side) if side * side == n_in else (n_in,))
    model.input_scale = 1.0
    return model


def build_cnn(image_shape=(28, 28), channels=(8, 16), n_out: int = 10, kernel_size: int = 3):
    """A small conv net: [conv 3x3 -> ReLU -> maxpool 2] per entry of ``channels``, global average pool, linear.

    Global average pooling makes the last layer a plain weighted sum of channel means, so the channel
    graph's class scores are exact (logit = bias + sum of flows).
    """
    from collections import OrderedDict

    from torch import nn

    h, w = (int(s) for s in image_shape)
    layers: list[tuple[str, nn.Module]] = [("unflatten", nn.Unflatten(1, (1, h)))]
    prev = 1
    for i, c in enumerate(channels):
        layers += [
            (f"conv{i + 1}", nn.Conv2d(prev, int(c), kernel_size, padding=kernel_size // 2)),
            (f"relu{i + 1}", nn.ReLU()),
            (f"pool{i + 1}", nn.MaxPool2d(2, ceil_mode=True)),
        ]
        prev = int(c)
    layers += [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(prev, int(n_out)))]
    model = nn.Sequential(OrderedDict(layers))
    model.arch = "cnn"
    model.sizes = [1] + [int(c) for c in channels] + [int(n_out)]
    model.channels = [int(c) for c in channels]
    model.image_shape = (h, w)
    model.input_scale = 1.0
    return model


def _weight_layers(model):
    """The Linear / Conv2d modules of a model, in order."""
    from torch import nn

    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def images_to_tensor(images, scale: float | None = None, image_shape=None):
    """Images (a DataFrame with an ``image`` column, a list of 2-D arrays, or an array ``[N, H, W]``)
    as a float tensor ``[N, H, W]`` divided by ``scale``; raises InputShapeError on a shape mismatch."""
    import torch

    if hasattr(images, "columns"):
        if "image" not in images.columns:
            raise InputShapeError(f"expected a DataFrame with an 'image' column, got columns {list(images.columns)}")
        images = list(images["image"])
    if isinstance(images, (list, tuple)):
        shapes = {np.shape(im) for im in images}
        if len(shapes) != 1:
            raise InputShapeError(f"images have different shapes: {sorted(shapes)[:4]}")
        arr = np.stack([np.asarray(im, dtype=np.float32) for im in images])
    else:
        arr = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images, dtype=np.float32)
    if arr.ndim == 2 and image_shape is not None and arr.shape == tuple(image_shape):
        arr = arr[None]
    if image_shape is not None:
        shape = tuple(image_shape)
        n = int(np.prod(shape))
        if arr.shape[1:] != shape:
            if arr.ndim == 2 and arr.shape[1] == n:
                arr = arr.reshape(-1, *shape)
            elif arr.ndim == 1 and arr.size == n:
                arr = arr.reshape(1, *shape)
            else:
                got = arr.shape[1:] if arr.ndim >= 2 else arr.shape
                raise InputShapeError(
                    f"input has shape {tuple(got)} but the model takes {'x'.join(map(str, shape))} images "
                    f"({n} values); pass an image of the training data's size"
                )
    if scale is not None:
        arr = arr / float(scale)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _fingerprint(images: np.ndarray, labels: np.ndarray, **params) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels).astype(np.int64).tobytes())
    h.update(repr(sorted(params.items())).encode())
    return h.hexdigest()[:16]


def train(
    df,
    arch: str = "mlp",
    hidden: int | list[int] = 500,
    channels=(8, 16),
    epochs: int | None = None,
    batch_size: int = 128,
    lr: float | None = None,
    seed: int = 0,
    cache: bool = False,
    progress: bool = True,
    threads: int | None = 1,
):
    """Train an MLP (``arch="mlp"``) or the small CNN on a DataFrame of ``image`` / ``label`` rows (Adam, CPU).

    ``epochs=None`` aims at about 2,000 steps within 2-20 passes: 5 passes (2,345 steps) on MNIST's
    60,000 images, under a minute; the 20-pass cap gives only 240 steps on the 1,497 8x8 digits, seconds. ``threads=1`` trains on one CPU thread, which is faster for a model this small than
    torch's default (several threads contend badly on a busy machine); ``None`` keeps torch's setting.
    ``cache=True`` keeps the trained model in the kit cache keyed by the data and settings, so a
    notebook re-run loads it instead of training again.
    """
    import torch

    from . import config

    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; use one of {ARCHS}")
    if len(df) == 0:
        raise ValueError("no training examples")
    x = images_to_tensor(df)
    y = torch.from_numpy(np.array(df["label"], dtype=np.int64))
    scale = float(x.max()) if float(x.max()) > 1 else 1.0
    x = x / scale
    n_classes = max(10, int(y.max()) + 1)
    if lr is None:
        lr = 1e-3 if arch == "mlp" else 3e-3
    if epochs is None:
        epochs = int(min(20, max(2, math.ceil(2000 * batch_size / len(x)))))
    params = dict(arch=arch, hidden=hidden, channels=tuple(channels), epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    path = None
    if cache:
        key = _fingerprint(x.numpy(), y.numpy(), **params)
        path = config.cache_dir("mnist-graph") / f"{arch}-{key}.pt"
        if path.is_file():
            try:
                return load_model(path)
            except ModelFileError:
                path.unlink()
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        model = _fit(x, y, scale, n_classes, arch, hidden, channels, epochs, batch_size, lr, seed, progress)
    finally:
        torch.set_num_threads(old_threads)
    model.train_info["dataset"] = " / ".join(str(df.attrs[k]) for k in ("dataset", "source") if df.attrs.get(k))
    if path is not None:
        save_model(model, path)
    return model


def _fit(x, y, scale, n_classes, arch, hidden, channels, epochs, batch_size, lr, seed, progress):
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    shape = tuple(x.shape[1:])
    if arch == "mlp":
        model = build_mlp(int(np.prod(shape)), hidden, n_classes, image_shape=shape)
    else:
        model = build_cnn(shape, channels, n_classes)
    model.input_scale = scale
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    steps = epochs * math.ceil(len(x) / batch_size)
    bar = tqdm(total=steps, desc=f"training {arch}", disable=not progress, leave=False)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)
    bar.close()
    model.eval()
    model.train_info = {"epochs": epochs, "n_train": len(x), "final_loss": float(loss.detach())}
    return model


def predict(model, images):
    """Logits ``[N, classes]`` (numpy) for images in the training data's units (scaled like training)."""
    import torch

    x = images_to_tensor(images, model.input_scale, model.image_shape)
    with torch.no_grad():
        return model(x).numpy()


def accuracy(model, df) -> float:
    """Fraction of rows of ``df`` whose label is the model's top class."""
    return float((predict(model, df).argmax(1) == np.asarray(df["label"])).mean())


def save_model(model, path, **meta) -> Path:
    """Write ``model.pt``: the architecture, input shape and scale, extra ``meta``, and the state_dict."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": model.arch,
        "sizes": list(model.sizes),
        "channels": list(getattr(model, "channels", [])),
        "image_shape": list(model.image_shape),
        "input_scale": float(model.input_scale),
        "meta": {**getattr(model, "train_info", {}), **meta},
        "state_dict": model.state_dict(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)
    return path


def _from_bare_state_dict(sd: dict, name: str):
    """A model from ``torch.save(model.state_dict())`` of Linear layers (the original repository's way)."""
    weights = [(k, v) for k, v in sd.items() if k.endswith("weight")]
    if not weights or any(getattr(v, "ndim", 0) != 2 for _, v in weights):
        raise ModelFileError(f"{name}: not an interplab checkpoint, and not a state_dict of Linear layers")
    sizes = [int(weights[0][1].shape[1])] + [int(v.shape[0]) for _, v in weights]
    for (k, v), n_in in zip(weights, sizes[:-1]):
        if int(v.shape[1]) != n_in:
            raise ModelFileError(f"{name}: layer {k!r} takes {int(v.shape[1])} inputs but the previous layer has {n_in}")
    model = build_mlp(sizes[0], sizes[1:-1], sizes[-1])
    mine = [k for k in model.state_dict()]
    theirs = list(sd.keys())
    if len(mine) != len(theirs):
        raise ModelFileError(f"{name}: expected weight and bias for each of {len(weights)} Linear layers, found keys {theirs}")
    model.load_state_dict(dict(zip(mine, sd.values())))
    model.input_scale = 255.0 if sizes[0] == 784 else 16.0
    return model


def load_model(path):
    """Load ``model.pt`` written by ``save_model`` (or a bare Linear state_dict); ModelFileError if malformed."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file; run train.py first (it writes model.pt)")
    import zipfile

    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since PyTorch 1.6
        raise ModelFileError(f"{path}: not a readable PyTorch checkpoint (not a torch.save zip archive); re-run train.py")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and unpickler errors all mean the same thing here
        if "Weights only load failed" in str(exc):
            raise ModelFileError(
                f"{path}: holds a pickled Python object (e.g. torch.save(model)), which is not loaded for safety; "
                "save model.state_dict() instead, or re-run train.py"
            ) from None
        raise ModelFileError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    if not isinstance(ckpt, dict):
        raise ModelFileError(f"{path}: holds a {type(ckpt).__name__}, expected a checkpoint dict or a state_dict")
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        if ckpt and all(hasattr(v, "shape") for v in ckpt.values()):
            return _from_bare_state_dict(ckpt, str(path))
        raise ModelFileError(f"{path}: not an interplab mnist-graph checkpoint (no 'format': {CHECKPOINT_FORMAT!r})")
    missing = [k for k in ("arch", "sizes", "image_shape", "input_scale", "state_dict") if k not in ckpt]
    if missing:
        raise ModelFileError(f"{path}: checkpoint lacks {', '.join(missing)}")
    if ckpt["arch"] == "mlp":
        sizes = ckpt["sizes"]
        model = build_mlp(sizes[0], sizes[1:-1], sizes[-1], image_shape=ckpt["image_shape"])
    elif ckpt["arch"] == "cnn":
        model = build_cnn(ckpt["image_shape"], ckpt.get("channels") or ckpt["sizes"][1:-1], ckpt["sizes"][-1])
    else:
        raise ModelFileError(f"{path}: unknown architecture {ckpt['arch']!r}; expected one of {ARCHS}")
    try:
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()
        detail = next((line.strip() for line in first if "size mismatch" in line or "Missing" in line or "Unexpected" in line), first[0] if first else "")
        raise ModelFileError(f"{path}: weights do not fit a {ckpt['arch']} with sizes {ckpt['sizes']} ({detail[:160]})") from None
    model.input_scale = float(ckpt["input_scale"])
    model.train_info = dict(ckpt.get("meta") or {})
    model.eval()
    return model


def read_image(path, image_shape=None) -> np.ndarray:
    """An input image from a file: ``.npy``, ``.csv``/``.txt`` (numbers), or ``.png``/``.jpg`` (read as grayscale)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such input file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
    elif suffix in (".csv", ".txt"):
        arr = np.loadtxt(path, delimiter="," if suffix == ".csv" else None, ndmin=2)
    elif suffix in (".png", ".jpg", ".jpeg", ".bmp", ".gif"):
        from PIL import Image

        arr = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    else:
        raise ValueError(f"{path}: unsupported input format {suffix!r}; use .npy, .csv, .txt or .png")
    arr = np.asarray(arr, dtype=np.float32).squeeze()
    if image_shape is not None and arr.shape != tuple(image_shape) and arr.size != int(np.prod(image_shape)):
        raise InputShapeError(
            f"{path}: image has shape {arr.shape} but the model takes {tuple(image_shape)} images; "
            "resize it to the training data's size"
        )
    return arr.reshape(image_shape) if image_shape is not None else arr


# --------------------------------------------------------------------------------------------- tables
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
    """(vertices, edges) DataFrames of a model: the CSV schema (see the module docstring).

    MLP: one edge per weight, ``edges.weight[k] == W[to_index, from_index]``, listed by target then source.
    CNN: one vertex per channel and class, one edge per (input channel, output channel) kernel.
    """
    import pandas as pd

    layers = _weight_layers(model)
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
    for m in _weight_layers(model):
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


def parse_keep(text: str) -> int | float:
    """``"2000"`` -> 2000 edges, ``"5%"`` -> 0.05, ``"0.05"`` -> 0.05 (what ``--prune`` accepts)."""
    text = str(text).strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"--prune takes a number of edges (2000) or a fraction (0.05 or 5%), got {text!r}") from None
    if text.endswith("%") or value < 1:
        if not 0 < value < 1:
            raise ValueError(f"--prune fraction must be between 0 and 1 (exclusive), got {text!r}")
        return value
    if not value.is_integer():
        raise ValueError(f"--prune count must be a whole number, got {text!r}")
    return int(value)


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


# --------------------------------------------------------------------------------------------- networkx
def to_networkx(vertices, edges, drop_isolated: bool = False):
    """A ``networkx.DiGraph``: node = vertex id with its columns as attributes; edges carry their
    columns plus ``strength = |weight|`` (or ``|flow|`` when the edges have a flow column)."""
    import networkx as nx

    G = nx.DiGraph()
    vcols = [c for c in vertices.columns if c != "id"]
    for row in vertices.itertuples(index=False):
        d = row._asdict()
        G.add_node(int(d.pop("id")), **{k: (v.item() if hasattr(v, "item") else v) for k, v in d.items() if k in vcols})
    ecols = [c for c in edges.columns if c not in ("from_id", "to_id")]
    strength = np.abs(edges["flow" if "flow" in edges.columns else "weight"].to_numpy(dtype=np.float64))
    data = {c: edges[c].to_numpy() for c in ecols}
    src, dst = edges["from_id"].to_numpy(), edges["to_id"].to_numpy()
    G.add_edges_from(
        (int(src[i]), int(dst[i]), {**{c: float(data[c][i]) for c in ecols}, "strength": float(strength[i])})
        for i in range(len(edges))
    )
    if drop_isolated:
        G.remove_nodes_from([n for n in list(G.nodes) if G.degree(n) == 0])
    return G


def on_paths(G):
    """The subgraph of vertices that lie on some complete input -> output path (drops dangling hidden units
    and isolated vertices a pruning left behind): what a drawing of a pruned graph should show."""
    layers = [d.get("layer", 0) for _, d in G.nodes(data=True)]
    first, last = min(layers), max(layers)
    H = G.copy()
    while True:
        drop = [n for n, d in H.nodes(data=True)
                if (d.get("layer") != first and H.in_degree(n) == 0) or (d.get("layer") != last and H.out_degree(n) == 0)]
        if not drop:
            return H
        H.remove_nodes_from(drop)


def degree_table(G):
    """Per vertex: layer, in/out degree, and in/out strength (sum of |weight| or |flow|) as a DataFrame."""
    import pandas as pd

    rows = {
        "id": list(G.nodes),
        "layer": [G.nodes[n].get("layer") for n in G.nodes],
        "in_degree": [d for _, d in G.in_degree()],
        "out_degree": [d for _, d in G.out_degree()],
        "in_strength": [d for _, d in G.in_degree(weight="strength")],
        "out_strength": [d for _, d in G.out_degree(weight="strength")],
    }
    return pd.DataFrame(rows).set_index("id")


def communities(G, seed: int = 0, resolution: float = 1.0):
    """Louvain communities of the graph taken as undirected, weighted by ``strength``: Series vertex id -> community
    (numbered by size, largest 0). Isolated vertices are left out."""
    import networkx as nx
    import pandas as pd

    U = G.to_undirected(as_view=False)
    U.remove_nodes_from([n for n in list(U.nodes) if U.degree(n) == 0])
    parts = nx.community.louvain_communities(U, weight="strength", seed=seed, resolution=resolution)
    parts = sorted(parts, key=len, reverse=True)
    return pd.Series({n: i for i, part in enumerate(parts) for n in part}, name="community").sort_index()


def path_scores(vertices, edges, target: int, weight: str = "weight"):
    """For every vertex, the largest and smallest product of ``weight`` along a path from it to ``target``.

    Dynamic programming over the layers (exact, vectorised): a path's score is the product of its
    edge weights, so a large positive score means "this pixel excites that class through some unit".
    Returns a DataFrame indexed by vertex id with ``max``, ``min`` and the next vertex on each best path.
    """
    import pandas as pd

    layer_of = vertices.set_index("id")["layer"]
    n = int(vertices["id"].max()) + 1
    best_max = np.full(n, np.nan)
    best_min = np.full(n, np.nan)
    next_max = np.full(n, -1, dtype=np.int64)
    next_min = np.full(n, -1, dtype=np.int64)
    best_max[target] = best_min[target] = 1.0
    t_layer = int(layer_of[target])
    src_layer = layer_of.reindex(edges["from_id"]).to_numpy()
    for l in range(t_layer - 1, -1, -1):
        e = edges[src_layer == l]
        dst = e["to_id"].to_numpy()
        ok = ~np.isnan(best_max[dst])
        if not ok.any():
            break
        e, dst = e[ok], dst[ok]
        w = e[weight].to_numpy(dtype=np.float64)
        a, b = w * best_max[dst], w * best_min[dst]
        hi = np.maximum(a, b)
        lo = np.minimum(a, b)
        src = e["from_id"].to_numpy()
        frame = pd.DataFrame({"src": src, "dst": dst, "hi": hi, "lo": lo})
        i_hi = frame.groupby("src")["hi"].idxmax()
        i_lo = frame.groupby("src")["lo"].idxmin()
        best_max[i_hi.index] = frame.loc[i_hi, "hi"].to_numpy()
        next_max[i_hi.index] = frame.loc[i_hi, "dst"].to_numpy()
        best_min[i_lo.index] = frame.loc[i_lo, "lo"].to_numpy()
        next_min[i_lo.index] = frame.loc[i_lo, "dst"].to_numpy()
    ids = vertices["id"].to_numpy()
    return pd.DataFrame(
        {"max": best_max[ids], "min": best_min[ids], "next_max": next_max[ids], "next_min": next_min[ids]}, index=ids
    )


def strongest_paths(vertices, edges, target: int, k: int = 5, weight: str = "weight", sign: str = "positive"):
    """The ``k`` strongest paths from the input layer to ``target`` (one per input vertex), as a DataFrame
    with ``source``, ``path`` (list of vertex ids) and ``score`` (product of weights).

    ``sign="positive"`` ranks by the largest product (excitatory), ``"negative"`` by the smallest, ``"abs"``
    by the largest magnitude.
    """
    import pandas as pd

    if sign not in ("positive", "negative", "abs"):
        raise ValueError(f"sign must be 'positive', 'negative' or 'abs', got {sign!r}")
    ps = path_scores(vertices, edges, target, weight)
    inputs = vertices.loc[vertices["layer"] == 0, "id"].to_numpy()
    table = ps.loc[inputs].dropna(subset=["max"])
    if sign == "positive":
        chosen = table["max"].nlargest(k).index
        tags = ["max"] * len(chosen)
    elif sign == "negative":
        chosen = table["min"].nsmallest(k).index
        tags = ["min"] * len(chosen)
    else:
        mag = np.maximum(table["max"].abs(), table["min"].abs())
        chosen = mag.nlargest(k).index
        tags = ["max" if abs(table.at[c, "max"]) >= abs(table.at[c, "min"]) else "min" for c in chosen]
    w_lookup = edges.set_index(["from_id", "to_id"])[weight]
    rows = []
    for src, tag in zip(chosen, tags):
        path, node, state, score = [int(src)], int(src), tag, float(ps.at[src, tag])
        while node != target:
            nxt = int(ps.at[node, "next_" + state])
            if w_lookup[(node, nxt)] < 0:  # a negative edge turns the best max into the next vertex's min
                state = "min" if state == "max" else "max"
            node = nxt
            path.append(node)
        rows.append({"source": int(src), "path": path, "score": score})
    return pd.DataFrame(rows)


def _hidden_split(model, hidden: int):
    """(before, after): ``model[:i]`` ends with hidden layer ``hidden``'s ReLU, ``model[i:]`` is the rest."""
    from torch import nn

    if model.arch != "mlp":
        raise ValueError("influence and ablation tests need an MLP (arch='mlp')")
    relus = [i for i, m in enumerate(model) if isinstance(m, nn.ReLU)]
    if not -len(relus) <= hidden < len(relus):
        raise ValueError(f"hidden layer {hidden} does not exist: this MLP has {len(relus)} hidden layer(s)")
    cut = relus[hidden] + 1
    return model[:cut], model[cut:]


def class_influence(model, images, labels=None, hidden: int = -1):
    """How much each unit of hidden layer ``hidden`` (-1: the last) pushes each class: the mean over that
    class's examples of ``activation x d(class logit)/d(activation)`` (a DataFrame, unit x class).
    ``labels=None`` averages over all images instead of per class.

    For the last hidden layer the gradient is the unit's weight into the class, so the influence is exactly
    what the unit adds to the logit, and zeroing units lowers the logit by exactly their summed influence
    (an identity, not a test). For an earlier layer it is a first-order estimate of that drop: the ReLUs
    after it make the real effect of zeroing differ (see :func:`ablation_test`).
    """
    import pandas as pd
    import torch

    before, after = _hidden_split(model, hidden)
    x = images_to_tensor(images, model.input_scale, model.image_shape)
    with torch.no_grad():
        h = before(x)
    y = None if labels is None else np.asarray(labels)
    cols = {}
    for c in range(model.sizes[-1]):
        sel = h if y is None else h[torch.from_numpy(y == c)]
        if not len(sel):
            cols[c] = np.zeros(h.shape[1], dtype=np.float32)
            continue
        sel = sel.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(after(sel)[:, c].sum(), sel)
        cols[c] = (sel.detach() * grad).mean(0).numpy()
    df = pd.DataFrame(cols)
    df.index.name = "unit"
    df.columns.name = "class"
    return df


def ablation_test(model, df, k: int = 10, hidden: int = -1, n_random: int = 20, seed: int = 0, influence=None):
    """Does "influence" pick the units that matter? For each class: zero the ``k`` most influential units of
    hidden layer ``hidden`` (by :func:`class_influence` on the rows of ``df`` of that class), and compare with
    zeroing ``k`` random units of the same layer, ``n_random`` times.

    One row per class: ``logit`` (mean class logit), ``estimated drop`` (the summed influence of the top-k),
    ``drop (top-k)`` (the real drop in the mean logit), ``drop (random k)`` (mean over the random draws) and
    ``random 95th pct``, and the share of the class's images still classified as that class: ``accuracy``,
    ``accuracy (top-k zeroed)``, ``accuracy (random k zeroed)``. In the last hidden layer ``estimated drop``
    equals ``drop (top-k)`` by construction; accuracy, and earlier layers, can disagree.
    """
    import pandas as pd
    import torch

    before, after = _hidden_split(model, hidden)
    infl = class_influence(model, df, df["label"], hidden=hidden) if influence is None else influence
    x = images_to_tensor(df, model.input_scale, model.image_shape)
    y = np.asarray(df["label"])
    with torch.no_grad():
        h = before(x)
    n_units = h.shape[1]
    rng = np.random.default_rng(seed)

    def run(hc, c, units):
        hz = hc.clone()
        hz[:, list(units)] = 0
        with torch.no_grad():
            out = after(hz)
        return float(out[:, c].mean()), float((out.argmax(1) == c).float().mean())

    rows = []
    for c in range(model.sizes[-1]):
        sel = torch.from_numpy(y == c)
        if not bool(sel.any()):
            continue
        hc = h[sel]
        base, acc = run(hc, c, [])
        top_units = infl[c].nlargest(k).index.to_numpy()
        top, acc_top = run(hc, c, top_units)
        rand = [run(hc, c, rng.choice(n_units, k, replace=False)) for _ in range(n_random)]
        drops = base - np.array([r[0] for r in rand])
        rows.append({"class": c, "logit": base, "estimated drop": float(infl[c][top_units].sum()),
                     "drop (top-k)": base - top, "drop (random k)": float(drops.mean()),
                     "random 95th pct": float(np.percentile(drops, 95)), "accuracy": acc,
                     "accuracy (top-k zeroed)": acc_top,
                     "accuracy (random k zeroed)": float(np.mean([r[1] for r in rand]))})
    return pd.DataFrame(rows).set_index("class")


def ablate(model, units, layer: int = -1):
    """A copy of ``model`` with the outgoing weights of hidden ``units`` zeroed (``layer=-1``: the last hidden
    layer, i.e. the input units of the last Linear). Use it to test whether "influential" units matter."""
    import copy

    import torch

    m = copy.deepcopy(model)
    lin = _weight_layers(m)[layer]
    with torch.no_grad():
        lin.weight[:, [int(u) for u in units]] = 0
    return m


def as_image(values, image_shape):
    """Per-pixel values (input-layer order, e.g. a column of a table indexed by input vertex id) as a 2-D array."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size != int(np.prod(image_shape)):
        raise InputShapeError(f"{arr.size} values cannot fill a {'x'.join(map(str, image_shape))} image")
    return arr.reshape(image_shape)


def pixel_path_maps(vertices, edges, image_shape, weight: str = "weight"):
    """For each class, an image of the strongest excitatory path score from every input pixel (``path_scores``
    ``max`` over the input layer): ``{class index: 2-D array}``."""
    last = int(vertices["layer"].max())
    inputs = vertices.loc[vertices["layer"] == 0, "id"].to_numpy()
    maps = {}
    for vid, idx in vertices.loc[vertices["layer"] == last, ["id", "index"]].itertuples(index=False):
        ps = path_scores(vertices, edges, int(vid), weight)
        maps[int(idx)] = as_image(ps.loc[inputs, "max"].fillna(0).to_numpy(), image_shape)
    return maps


# --------------------------------------------------------------------------------------------- drawing
def layered_positions(vertices, image_shape=None, G=None) -> dict[int, tuple[float, float]]:
    """Node positions for drawing: input pixels as an image on the left (when ``image_shape`` is given),
    every other layer a column. With ``G``, a middle column holds only the vertices in ``G``, each placed
    near the (strength-weighted) mean height of its successors, so bundles of edges stay untangled."""
    pos = {}
    n_layers = int(vertices["layer"].max()) + 1
    for l in [0] + list(range(n_layers - 1, 0, -1)):
        layer = vertices[vertices["layer"] == l]
        if l == 0 and image_shape is not None and len(image_shape) == 2 and len(layer) == int(np.prod(image_shape)):
            h, w = image_shape
            for vid, idx in zip(layer["id"], layer["index"]):
                r, c = divmod(int(idx), w)
                pos[int(vid)] = (_PIXELS_X0 + (w / h) * c / max(w - 1, 1), 1 - r / max(h - 1, 1))
            continue
        ids = [int(i) for i in layer.sort_values("index")["id"]]
        if G is not None and 0 < l < n_layers - 1:
            ids = [i for i in ids if i in G]

            def key(i):
                succ = [(pos[j][1], G[i][j].get("strength", 1.0)) for j in G.successors(i) if j in pos]
                return -sum(y * s for y, s in succ) / sum(s for _, s in succ) if succ else 0.0

            ids = sorted(ids, key=key)
        n = len(ids)
        for rank, vid in enumerate(ids):
            pos[vid] = (_column_x(l, image_shape), 1 - (rank + 0.5) / max(n, 1))
    return pos


# Pixels fill a block of height 1 and width w/h (drawn with equal aspect, so the digit keeps its shape);
# every later layer is a column to its right.
_PIXELS_X0, _COLUMN_GAP = 0.0, 0.75


def _column_x(layer: int, image_shape=None) -> float:
    width = image_shape[1] / image_shape[0] if image_shape is not None and len(image_shape) == 2 else 0.0
    return _PIXELS_X0 + width + _COLUMN_GAP * layer


def draw(G, vertices=None, image_shape=None, ax=None, title: str = "", max_width: float = 2.0, node_size: float = 6,
         image=None):
    """Draw a (pruned) graph layer by layer: red edges positive, blue negative, width by strength.
    ``image`` (optional, ``image_shape``) is shown faintly under the input pixels."""
    import matplotlib.pyplot as plt
    import networkx as nx
    import pandas as pd

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.6))
    if vertices is None:
        vertices = pd.DataFrame([{"id": n, "layer": d.get("layer", 0), "index": d.get("index", 0)} for n, d in G.nodes(data=True)])
    pos = layered_positions(vertices, image_shape, G)
    if image is not None and image_shape is not None and len(image_shape) == 2:
        h, w = image_shape
        dx, dy = 0.5 * (w / h) / max(w - 1, 1), 0.5 / max(h - 1, 1)
        ax.imshow(np.asarray(image).reshape(h, w), cmap="gray_r", alpha=0.35,
                  extent=(_PIXELS_X0 - dx, _PIXELS_X0 + w / h + dx, -dy, 1 + dy), interpolation="nearest", zorder=0)
    edges = list(G.edges(data=True))
    if edges:
        sign_key = "flow" if "flow" in edges[0][2] else "weight"
        strength = np.array([d["strength"] for *_, d in edges])
        widths = max_width * strength / (strength.max() or 1)
        colors = ["tab:red" if d[sign_key] > 0 else "tab:blue" for *_, d in edges]
        nx.draw_networkx_edges(G, pos, ax=ax, edgelist=[(u, v) for u, v, _ in edges], width=widths, edge_color=colors,
                               alpha=0.5, arrows=False)
    nodes = [n for n in G.nodes if n in pos]
    layers = [G.nodes[n].get("layer", 0) for n in nodes]
    nx.draw_networkx_nodes(G, pos, nodelist=nodes, node_size=node_size, node_color=layers, cmap="viridis", ax=ax)
    out_nodes = [n for n in nodes if G.nodes[n].get("layer") == max(layers)] if nodes else []
    for n in out_nodes:
        x, y = pos[n]
        ax.text(x + 0.08, y, str(G.nodes[n].get("index")), va="center", fontsize=8)
    ax.set_title(title)
    ax.set_aspect("equal")  # pixels square, as in the image
    ax.axis("off")
    return ax
