"""Training the graph tools' MNIST networks (Adam on CPU), optionally kept in the kit cache."""
from __future__ import annotations

import hashlib
import math

import numpy as np

from ..torchutil import limit_threads
from .inputs import images_to_tensor
from .schema import ARCHS, ModelFileError


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

    from .. import config
    from .model import load_model, save_model

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
    with limit_threads(threads):
        model = _fit(x, y, scale, n_classes, arch, hidden, channels, epochs, batch_size, lr, seed, progress)
    model.train_info["dataset"] = " / ".join(str(df.attrs[k]) for k in ("dataset", "source") if df.attrs.get(k))
    if path is not None:
        save_model(model, path)
    return model


def _fit(x, y, scale, n_classes, arch, hidden, channels, epochs, batch_size, lr, seed, progress):
    import torch
    from tqdm.auto import tqdm

    from .model import build_cnn, build_mlp

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
