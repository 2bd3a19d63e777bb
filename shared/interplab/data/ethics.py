"""ETHICS commonsense morality (Hendrycks et al. 2021): is what the narrator did clearly wrong?

Schema (splits ``train``, ``test``, ``test_hard``): ``label`` (int: 1 = the narrator's action is
morally wrong, 0 = not wrong), ``input`` (str: a one-sentence scenario, or a long Reddit AITA post
"title | body"), ``is_short`` (bool: True = short MTurk scenario, False = long AITA post),
``edited`` (bool). Split ``ambiguous``: one column ``input`` and NO label (scenarios people
disagree on; the original file has no header). Clear-cut vs ambiguous is one call each::

    clear = load("ethics-commonsense", split="test")
    ambig = load("ethics-commonsense", split="ambiguous")

Split names follow the original release (``cm_train.csv``, ``cm_test.csv``, ``cm_test_hard.csv``,
``cm_ambig.csv``); on the Hub the same files are ``data/commonsense/{train,test,test_hard}.csv``
(the hub's own split names are train/validation/test). The ambiguous set is not on the Hub, so
``auto`` gives its sample unless you pass the local ``cm_ambig.csv`` (or its folder).
"""
from __future__ import annotations

from pathlib import Path

from ._base import CorruptFileError, HubFile, check_split, fetch_parse, find_file, mark, origin_label, read_csv, resolve, sample_path

REPO, REV = "hendrycks/ethics", "b8b47c589f8bee77175b8648e5497278b68da48a"
SPLITS = ("train", "test", "test_hard", "ambiguous")
LICENSE = "MIT (long scenarios come from Reddit)"
HUB_FILES = {s: HubFile(REPO, f"data/commonsense/{s}.csv", REV) for s in ("train", "test", "test_hard")}
LOCAL_NAMES = {"train": ["cm_train.csv", "train.csv"], "test": ["cm_test.csv", "test.csv"],
               "test_hard": ["cm_test_hard.csv", "test_hard.csv"], "ambiguous": ["cm_ambig.csv", "ambig.csv"]}
REAL_FILES = {s: [f"ethics-commonsense/{n}" for n in names] for s, names in LOCAL_NAMES.items()}  # under INTERPLAB_DATA_DIR

DATASETS = {
    "ethics-commonsense": dict(
        title="ETHICS commonsense morality", what="scenarios labelled morally wrong / not wrong, plus an ambiguous set",
        license=LICENSE, rows={"train": 13_910, "test": 3_885, "test_hard": 3_964, "ambiguous": 995},
        splits=SPLITS, default_split="train",
        columns={"label": "int (1 = wrong, 0 = not wrong; absent in 'ambiguous')", "input": "str",
                 "is_short": "bool", "edited": "bool"},
        hub=HUB_FILES, sample={s: f"ethics-commonsense/{n[0]}" for s, n in LOCAL_NAMES.items()},
    ),
}

_BOOL = {"true": True, "false": False, "1": True, "0": False}


def _to_bool(series, col, where):
    vals = series.astype(str).str.strip().str.lower().map(_BOOL)
    if vals.isna().any():
        row = int(vals.isna().to_numpy().nonzero()[0][0]) + 1
        raise CorruptFileError(f"{where}: row {row}: {col} must be True/False, got {series.iloc[row - 1]!r}")
    return vals.astype(bool)


def _read(path: Path, split: str):
    import pandas as pd

    if split == "ambiguous":
        df = read_csv(path, header=None, dtype=str, keep_default_na=False)
        if df.shape[1] != 1:
            raise CorruptFileError(f"{path}: the ambiguous set has one text column and no header; got {df.shape[1]} columns")
        return pd.DataFrame({"input": df[0].astype(str)})
    df = read_csv(path, dtype=str, keep_default_na=False)
    need = ["label", "input", "is_short", "edited"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise CorruptFileError(f"{path}: missing column(s) {missing}; expected header label,input,is_short,edited")
    try:
        label = df["label"].astype("int64")
    except ValueError as exc:
        raise CorruptFileError(f"{path}: label must be 0 or 1 ({exc})") from exc
    if not label.isin([0, 1]).all():
        row = int((~label.isin([0, 1])).to_numpy().nonzero()[0][0]) + 1
        raise CorruptFileError(f"{path}: row {row}: label must be 0 or 1")
    return pd.DataFrame({"label": label, "input": df["input"], "is_short": _to_bool(df["is_short"], "is_short", path),
                         "edited": _to_bool(df["edited"], "edited", path)})


def _read_local(path: Path, split: str):
    if path.is_dir():
        path = find_file(path, LOCAL_NAMES[split], "ethics-commonsense", split)
    return _read(path, split)


def load(name: str, split: str | None = None, source="auto"):
    split = check_split(name, split, SPLITS, "train")
    spec = HUB_FILES.get(split)
    df, origin, detail = resolve(name, split, source,
                         hub=None if spec is None else (lambda: fetch_parse(spec, lambda p: _read(p, split))),
                         sample=lambda: _read(sample_path(DATASETS[name]["sample"][split]), split),
                         local=lambda p: _read_local(p, split), real=REAL_FILES[split])
    where = origin_label(origin, detail, spec.label if spec else "", source)
    return mark(df, dataset=name, split=split, source=where, sample=origin == "sample", license=LICENSE, real=origin == "real")
