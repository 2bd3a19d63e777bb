"""The networks the graph tools read: a ReLU MLP and a small CNN as ``nn.Module`` subclasses, and ``model.pt``.

Each network keeps what the graph and its checkpoint need as attributes: ``arch``, ``sizes`` (units per
layer, input first; channels for the CNN), ``image_shape``, ``input_scale`` (training divided the images by
it) and ``train_info``. Its layers are named child modules (``fc1``, ``relu1``, ... / ``conv1``, ``pool1``, ...,
``fc``) run in order, so state_dict keys are those of the ``nn.Sequential`` the kit built before and older
checkpoints load unchanged.
"""
from __future__ import annotations

import math
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .inputs import images_to_tensor
from .schema import ARCHS, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, ModelFileError


class GraphNet(nn.Module):
    """A feed-forward net of named layers run in order (it iterates and slices like ``nn.Sequential``), plus
    what the graph and ``model.pt`` record about it."""

    arch = ""

    def __init__(self, layers, sizes, image_shape, input_scale: float = 1.0):
        super().__init__()
        for name, module in layers:
            self.add_module(name, module)
        self.sizes = [int(s) for s in sizes]
        self.image_shape = tuple(int(s) for s in image_shape)
        self.input_scale = float(input_scale)
        self.train_info: dict = {}

    def forward(self, x):
        for module in self.children():
            x = module(x)
        return x

    def __iter__(self):
        return iter(self.children())

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, idx):
        """Layer ``idx``; a slice is an ``nn.Sequential`` of those layers sharing this net's modules
        (``model[:k]`` runs the first ``k`` layers, as on the ``nn.Sequential`` these nets were before)."""
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return nn.Sequential(OrderedDict(items[idx]))
        return items[idx][1]

    def weight_layers(self) -> list[nn.Module]:
        """The Linear / Conv2d layers, in order: one per edge layer of the graph."""
        return [m for m in self.children() if isinstance(m, (nn.Linear, nn.Conv2d))]


class MLP(GraphNet):
    """A ReLU MLP ``flatten, fc1, relu1, ..., fcN`` with ``sizes`` units per layer; takes ``[N, H, W]`` or ``[N, n_in]``."""

    arch = "mlp"

    def __init__(self, sizes, image_shape=None, input_scale: float = 1.0):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"layer sizes must be positive, got {sizes}")
        layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
        for i in range(len(sizes) - 1):
            layers.append((f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1])))
            if i < len(sizes) - 2:
                layers.append((f"relu{i + 1}", nn.ReLU()))
        if image_shape is None:
            side = int(round(math.sqrt(sizes[0])))
            image_shape = (side, side) if side * side == sizes[0] else (sizes[0],)
        super().__init__(layers, sizes, image_shape, input_scale)


class ConvNet(GraphNet):
    """A small conv net: [conv -> ReLU -> maxpool 2] per entry of ``channels``, global average pool, linear.

    Global average pooling makes the last layer a plain weighted sum of channel means, so the channel
    graph's class scores are exact (logit = bias + sum of flows).
    """

    arch = "cnn"

    def __init__(self, image_shape=(28, 28), channels=(8, 16), n_out: int = 10, kernel_size: int = 3,
                 input_scale: float = 1.0):
        h, w = (int(s) for s in image_shape)
        chans = [int(c) for c in channels]
        layers: list[tuple[str, nn.Module]] = [("unflatten", nn.Unflatten(1, (1, h)))]
        prev = 1
        for i, c in enumerate(chans):
            layers += [
                (f"conv{i + 1}", nn.Conv2d(prev, c, kernel_size, padding=kernel_size // 2)),
                (f"relu{i + 1}", nn.ReLU()),
                (f"pool{i + 1}", nn.MaxPool2d(2, ceil_mode=True)),
            ]
            prev = c
        layers += [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(prev, int(n_out)))]
        super().__init__(layers, [1] + chans + [int(n_out)], (h, w), input_scale)
        self.channels = chans


def build_mlp(n_in: int = 784, hidden: int | list[int] = 500, n_out: int = 10, image_shape=None) -> MLP:
    """An :class:`MLP` ``n_in -> hidden... -> n_out`` (``hidden`` an int or a list of widths)."""
    hidden = [int(hidden)] if np.isscalar(hidden) else [int(h) for h in hidden]
    return MLP([int(n_in)] + hidden + [int(n_out)], image_shape)


def build_cnn(image_shape=(28, 28), channels=(8, 16), n_out: int = 10, kernel_size: int = 3) -> ConvNet:
    """A :class:`ConvNet` for ``image_shape`` images (3x3 convs by default)."""
    return ConvNet(image_shape, channels, n_out, kernel_size)


def hidden_split(model, hidden: int):
    """(before, after): ``before`` ends with hidden layer ``hidden``'s ReLU, ``after`` is the rest of the MLP."""
    if model.arch != "mlp":
        raise ValueError("influence and ablation tests need an MLP (arch='mlp')")
    relus = [i for i, m in enumerate(model) if isinstance(m, nn.ReLU)]
    if not -len(relus) <= hidden < len(relus):
        raise ValueError(f"hidden layer {hidden} does not exist: this MLP has {len(relus)} hidden layer(s)")
    cut = relus[hidden] + 1
    return model[:cut], model[cut:]


def predict(model, images):
    """Logits ``[N, classes]`` (numpy) for images in the training data's units (scaled like training)."""
    x = images_to_tensor(images, model.input_scale, model.image_shape)
    with torch.no_grad():
        return model(x).numpy()


def accuracy(model, df) -> float:
    """Fraction of rows of ``df`` whose label is the model's top class."""
    return float((predict(model, df).argmax(1) == np.asarray(df["label"])).mean())


def save_model(model, path, **meta) -> Path:
    """Write ``model.pt``: the architecture, input shape and scale, extra ``meta``, and the state_dict."""
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
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file; run train.py first (it writes model.pt)")
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
