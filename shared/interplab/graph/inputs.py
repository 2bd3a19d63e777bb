"""Input images for the graph tools: from DataFrames, arrays and files, checked against the model's shape."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .schema import InputShapeError


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



def as_image(values, image_shape):
    """Per-pixel values (input-layer order, e.g. a column of a table indexed by input vertex id) as a 2-D array."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size != int(np.prod(image_shape)):
        raise InputShapeError(f"{arr.size} values cannot fill a {'x'.join(map(str, image_shape))} image")
    return arr.reshape(image_shape)
