"""IMDB movie reviews (Maas et al. 2011): binary sentiment.

Schema: ``text`` (str, the review), ``label`` (int: 0 = negative, 1 = positive).
Splits: ``train`` (25,000), ``test`` (25,000), ``unsupervised`` (50,000, label -1; hub only).

Local ``source`` may be: the hub parquet file; a CSV with ``text``/``label`` (or Kaggle's
``review``/``sentiment`` with "positive"/"negative"); or the original ``aclImdb`` folder
(``aclImdb/<split>/{pos,neg}/*.txt``), passed as the ``aclImdb`` folder or the split folder.
"""
from __future__ import annotations

from pathlib import Path

from ._base import (CorruptFileError, HubFile, check_split, fetch_parse, find_file, mark, origin_label, read_csv, read_parquet,
                    resolve, sample_path)

REPO, REV = "stanfordnlp/imdb", "e6281661ce1c48d982bc483cf8a173c1bbeb5d31"
HUB_FILES = {
    "train": HubFile(REPO, "plain_text/train-00000-of-00001.parquet", REV,
                     "db47d16b5c297cc0dd625e519c81319c24c9149e70e8496de5475f6fa928342c"),
    "test": HubFile(REPO, "plain_text/test-00000-of-00001.parquet", REV,
                    "b52e26e2f872d282ffac460bf9770b25ac6f102cda0e6ca7158df98c94e8b3da"),
    "unsupervised": HubFile(REPO, "plain_text/unsupervised-00000-of-00001.parquet", REV,
                            "74d14fbfcbb39fb7d299c38ca9f0ae6d231bf97108da85d620027ba437b6d52e"),
}
SPLITS = ("train", "test", "unsupervised")
# Under INTERPLAB_DATA_DIR (see interplab.data._base): per split, the first that exists. A single file of
# real reviews with no split of its own (reviews-real.csv, the kit's test slice) serves both splits,
# cut by row: rows 0, 1, 2 of every 5 are "train", rows 3, 4 "test", so the two never share a review.
REAL_FILES = {s: [f"imdb/{s}.parquet", f"imdb/plain_text/{s}-00000-of-00001.parquet", "imdb/aclImdb", f"imdb/{s}.csv"]
              + (["imdb/reviews-real.csv"] if s != "unsupervised" else []) for s in SPLITS}
UNSPLIT = ("reviews-real.csv",)
LICENSE = "other (IMDB terms; research use)"

DATASETS = {
    "imdb": dict(
        title="IMDB movie reviews", what="50k movie reviews labelled positive/negative (sentiment)",
        license=LICENSE, rows={"train": 25_000, "test": 25_000, "unsupervised": 50_000},
        splits=SPLITS, default_split="train", columns={"text": "str", "label": "int (0 = negative, 1 = positive)"},
        hub=HUB_FILES, sample={"train": "imdb/train.csv", "test": "imdb/test.csv"},
    ),
}


def _normalise(df, where) -> "object":
    import pandas as pd

    cols = {c.lower(): c for c in df.columns}
    if "text" in cols and "label" in cols:
        out = pd.DataFrame({"text": df[cols["text"]].astype(str), "label": df[cols["label"]]})
    elif "review" in cols and "sentiment" in cols:
        lab = df[cols["sentiment"]].astype(str).str.strip().str.lower().map({"positive": 1, "negative": 0, "pos": 1, "neg": 0})
        if lab.isna().any():
            bad = int(lab.isna().to_numpy().nonzero()[0][0]) + 1
            raise CorruptFileError(f"{where}: row {bad}: sentiment must be positive/negative")
        out = pd.DataFrame({"text": df[cols["review"]].astype(str), "label": lab})
    else:
        raise CorruptFileError(f"{where}: expected columns text,label (or review,sentiment); got {list(df.columns)}")
    try:
        out["label"] = out["label"].astype("int64")
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(f"{where}: label must be an integer ({exc})") from exc
    return out.reset_index(drop=True)


def _read_acl(folder: Path, split: str):
    import pandas as pd

    base = folder / split if (folder / split / "pos").is_dir() else folder
    if not (base / "pos").is_dir() or not (base / "neg").is_dir():
        raise FileNotFoundError(f"imdb: {folder} is not an aclImdb folder (no {split}/pos and {split}/neg)")
    rows = []
    for label, sub in ((0, "neg"), (1, "pos")):
        for f in sorted((base / sub).glob("*.txt"), key=lambda p: p.name):
            rows.append((f.read_text(encoding="utf-8"), label))
    return pd.DataFrame(rows, columns=["text", "label"]).astype({"label": "int64"})


def _read_local(path: Path, split: str, cut: bool = False):
    if cut and path.is_file() and path.name in UNSPLIT:
        df = _normalise(read_csv(path), path)
        keep = (df.index % 5 < 3) if split == "train" else (df.index % 5 >= 3)
        return df[keep].reset_index(drop=True)
    if path.is_dir():
        if (path / split / "pos").is_dir() or (path / "pos").is_dir():
            return _read_acl(path, split)
        path = find_file(path, [f"{split}.parquet", f"plain_text/{split}-00000-of-00001.parquet", f"{split}.csv"], "imdb", split)
    if path.suffix == ".parquet":
        return _normalise(read_parquet(path), path)
    return _normalise(read_csv(path), path)


def load(name: str, split: str | None = None, source="auto"):
    split = check_split(name, split, SPLITS, "train")

    def sample():
        if split not in DATASETS[name]["sample"]:
            from ._base import DatasetError

            raise DatasetError(f"imdb: the bundled sample has only train/test, not {split!r}")
        return _normalise(read_csv(sample_path(DATASETS[name]["sample"][split])), "imdb sample")

    spec = HUB_FILES[split]
    df, origin, detail = resolve(name, split, source, hub=lambda: fetch_parse(spec, lambda p: _normalise(read_parquet(p), p)),
                         sample=sample, local=lambda p: _read_local(p, split), real=REAL_FILES[split],
                            read_real=lambda p: _read_local(p, split, cut=True))
    where = origin_label(origin, detail, spec.label, source)
    return mark(df, dataset=name, split=split, source=where, sample=origin == "sample", license=LICENSE, real=origin == "real")
