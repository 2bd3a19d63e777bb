"""MNIST handwritten digits (LeCun et al.), and scikit-learn's 8x8 digits as its offline stand-in.

Schema: ``image`` (2-D ``numpy.uint8`` array, 0 = background ... 255 = ink; 28x28 for MNIST),
``label`` (int 0-9). Splits: ``train`` (60,000), ``test`` (10,000).

Offline (``source="sample"``, or ``"auto"`` with no network and nothing cached) the loader returns
scikit-learn's bundled UCI digits under the same interface: **8x8** images (1,797 in all; the last
300 are ``test``, the rest ``train``), rescaled from 0-16 to 0-255 uint8. Such a frame has
``df.attrs["source"] == "sklearn-digits-8x8"`` and shows a banner saying it is not MNIST; check
``df.attrs["image_shape"]`` instead of assuming 28x28.

Local ``source``: the original IDX files (``train-images-idx3-ubyte[.gz]`` + labels, or their
folder) or the hub parquet.
"""
from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

from ._base import CorruptFileError, HubFile, check_split, fetch_parse, mark, origin_label, read_parquet, resolve

REPO, REV = "ylecun/mnist", "77f3279092a1c1579b2250db8eafed0ad422088c"
HUB_FILES = {
    "train": HubFile(REPO, "mnist/train-00000-of-00001.parquet", REV,
                     "f2c01285a9f89399335b00ee4e8d499dc4e46db5e39c74903ce5618d895eb3bf"),
    "test": HubFile(REPO, "mnist/test-00000-of-00001.parquet", REV,
                    "d49fcf556ce25b002b302e318ce4a11098bbfe5d4499c3f35d7c72297c52374b"),
}
SPLITS = ("train", "test")
LICENSE = "MIT (hub card); sklearn digits: CC BY 4.0 (UCI)"
DIGITS_TEST = 300

DATASETS = {
    "mnist": dict(
        title="MNIST handwritten digits", what="70k 28x28 grayscale digits; offline: sklearn's 8x8 digits",
        license="MIT", rows={"train": 60_000, "test": 10_000}, splits=SPLITS, default_split="train",
        columns={"image": "numpy uint8 array (28x28; 8x8 offline)", "label": "int 0-9"},
        hub=HUB_FILES, sample={"train": "(sklearn digits)", "test": "(sklearn digits)"},
    ),
}


def _digits(split: str):
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    sl = slice(None, -DIGITS_TEST) if split == "train" else slice(-DIGITS_TEST, None)
    return pd.DataFrame({"image": list(imgs[sl]), "label": d.target[sl].astype("int64")})


def _from_parquet(path: Path):
    import numpy as np
    import pandas as pd
    from PIL import Image

    df = read_parquet(path)
    if "image" not in df.columns or "label" not in df.columns:
        raise CorruptFileError(f"{path}: expected columns image,label; got {list(df.columns)}")
    images = []
    for i, v in enumerate(df["image"], 1):
        raw = v.get("bytes") if isinstance(v, dict) else v
        try:
            images.append(np.asarray(Image.open(io.BytesIO(raw)).convert("L"), dtype=np.uint8))
        except Exception as exc:
            raise CorruptFileError(f"{path}: row {i}: image is not a readable PNG ({exc})") from exc
    return pd.DataFrame({"image": images, "label": df["label"].astype("int64").to_numpy()})


def _idx(path: Path):
    import numpy as np

    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError) as exc:
            raise CorruptFileError(f"{path}: truncated or corrupt gzip ({exc}); nothing was loaded") from exc
    if len(raw) < 8 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise CorruptFileError(f"{path}: not an IDX uint8 file")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise CorruptFileError(f"{path}: truncated IDX file ({data.size} of {int(np.prod(dims))} values); nothing was loaded")
    return data.reshape(dims)


def _read_local(path: Path, split: str):
    import pandas as pd

    if path.is_file() and path.suffix == ".parquet":
        return _from_parquet(path)
    folder = path if path.is_dir() else path.parent
    stem = "train" if split == "train" else "t10k"
    if path.is_dir() and (path / HUB_FILES[split].filename).is_file():
        return _from_parquet(path / HUB_FILES[split].filename)

    def pick(kind):
        for name in (f"{stem}-{kind}-idx{3 if kind == 'images' else 1}-ubyte", f"{stem}-{kind}.idx{3 if kind == 'images' else 1}-ubyte"):
            for suffix in ("", ".gz"):
                if (folder / (name + suffix)).is_file():
                    return folder / (name + suffix)
        raise FileNotFoundError(f"mnist: no {stem}-{kind}-idx*-ubyte[.gz] file in {folder}")

    images, labels = _idx(pick("images")), _idx(pick("labels"))
    if len(images) != len(labels):
        raise CorruptFileError(f"mnist: {len(images)} images but {len(labels)} labels in {folder}")
    return pd.DataFrame({"image": list(images), "label": labels.astype("int64")})


def load(name: str, split: str | None = None, source="auto"):
    split = check_split(name, split, SPLITS, "train")
    spec = HUB_FILES[split]
    stem = "train" if split == "train" else "t10k"
    real = [f"mnist/{spec.filename}", f"mnist/{stem}-images-idx3-ubyte.gz", f"mnist/{stem}-images-idx3-ubyte"]
    df, origin, detail = resolve(name, split, source, hub=lambda: fetch_parse(spec, _from_parquet),
                                 sample=lambda: _digits(split), local=lambda p: _read_local(p, split),
                                 what="stand-in: scikit-learn's 8x8 digits, NOT MNIST", real=real)
    shape = tuple(df["image"].iloc[0].shape) if len(df) else None
    if origin == "sample":
        return mark(df, dataset=name, split=split, source="sklearn-digits-8x8", sample=True,
                    license="CC BY 4.0 (UCI optical digits, bundled with scikit-learn)", image_shape=shape,
                    description=f"STAND-IN for MNIST ({split}): scikit-learn's bundled 8x8 digits, {len(df)} images "
                                "(not MNIST; use source='hub' online for 28x28 MNIST)")
    where = origin_label(origin, detail, spec.label, source)
    return mark(df, dataset=name, split=split, source=where, sample=False, license="MIT", image_shape=shape,
                real=origin == "real")
