"""TruthfulQA (Lin, Hilton & Evans 2021): questions that some humans answer falsely.

``load("truthfulqa")`` (generation task, split ``validation``, 817 rows). Columns are snake_case,
the Hub's names; the original CSV's names map one to one:

==================  =====================  ==========================================
column              CSV name               type
==================  =====================  ==========================================
type                Type                   str ("Adversarial" / "Non-Adversarial")
category            Category               str (38 categories, e.g. "Misconceptions")
question            Question               str
best_answer         Best Answer            str
correct_answers     Correct Answers        list[str] (the CSV's "; "-separated string)
incorrect_answers   Incorrect Answers      list[str]
source              Source                 str (URL backing the answer)
==================  =====================  ==========================================

``load("truthfulqa-mc")`` (multiple choice, 817 rows): ``question`` (str), ``mc1_targets`` and
``mc2_targets``, each ``{"choices": list[str], "labels": list[int]}`` (MC1: exactly one label 1;
MC2: every true answer labelled 1). Local sources: ``TruthfulQA.csv`` / ``mc_task.json`` (the
original repo files, with or without their UTF-8 BOM), the hub parquet, or their folder.
"""
from __future__ import annotations

from pathlib import Path

from ._base import (CorruptFileError, HubFile, check_split, fetch_parse, find_file, mark, origin_label, read_csv, read_json,
                    read_parquet, resolve, sample_path)

REPO, REV = "truthfulqa/truthful_qa", "741b8276f2d1982aa3d5b832d3ee81ed3b896490"
LICENSE = "Apache-2.0"
CSV_NAMES = {"Type": "type", "Category": "category", "Question": "question", "Best Answer": "best_answer",
             "Correct Answers": "correct_answers", "Incorrect Answers": "incorrect_answers", "Source": "source"}
COLUMNS = list(CSV_NAMES.values())
# Under INTERPLAB_DATA_DIR: the original repo files, or the hub parquet in its hub layout.
REAL_FILES = {"truthfulqa": ["truthfulqa/TruthfulQA.csv", "truthfulqa/generation/validation-00000-of-00001.parquet"],
              "truthfulqa-mc": ["truthfulqa/mc_task.json", "truthfulqa/multiple_choice/validation-00000-of-00001.parquet"]}

DATASETS = {
    "truthfulqa": dict(
        title="TruthfulQA (generation)", what="817 questions built to elicit imitative falsehoods, with true/false answers",
        license=LICENSE, rows={"validation": 817}, splits=("validation",), default_split="validation",
        columns={c: ("list[str]" if c.endswith("answers") else "str") for c in COLUMNS},
        hub={"validation": HubFile(REPO, "generation/validation-00000-of-00001.parquet", REV)},
        sample={"validation": "truthfulqa/TruthfulQA.csv"},
    ),
    "truthfulqa-mc": dict(
        title="TruthfulQA (multiple choice)", what="the same 817 questions as MC1/MC2 choices with 0/1 labels",
        license=LICENSE, rows={"validation": 817}, splits=("validation",), default_split="validation",
        columns={"question": "str", "mc1_targets": "{choices: list[str], labels: list[int]}",
                 "mc2_targets": "{choices: list[str], labels: list[int]}"},
        hub={"validation": HubFile(REPO, "multiple_choice/validation-00000-of-00001.parquet", REV)},
        sample={"validation": "truthfulqa/mc_task.json"}, card="truthfulqa",
    ),
}


def split_answers(text) -> list[str]:
    """``"A; B; C"`` → ``["A", "B", "C"]`` (the CSV's answer lists)."""
    if not isinstance(text, str):
        return []
    return [a.strip() for a in text.split(";") if a.strip()]


def _gen_from_csv(path: Path):
    df = read_csv(path, dtype=str, keep_default_na=False)
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in CSV_NAMES if c not in df.columns and CSV_NAMES[c] not in df.columns]
    if missing:
        raise CorruptFileError(f"{path}: missing TruthfulQA column(s) {missing}; got {list(df.columns)}")
    df = df.rename(columns=CSV_NAMES)[COLUMNS].copy()
    for c in ("correct_answers", "incorrect_answers"):
        df[c] = df[c].map(split_answers)
    return df.reset_index(drop=True)


def _gen_from_parquet(path: Path):
    df = read_parquet(path)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise CorruptFileError(f"{path}: missing column(s) {missing}")
    df = df[COLUMNS].copy()
    for c in ("correct_answers", "incorrect_answers"):
        df[c] = df[c].map(lambda v: [str(x) for x in v] if v is not None else [])
    return df.reset_index(drop=True)


def _targets(value, where, i):
    """mc_task.json's {choice: label} or the hub's {choices, labels} → {choices, labels}."""
    if isinstance(value, dict) and "choices" in value and "labels" in value:
        choices, labels = [str(c) for c in value["choices"]], [int(x) for x in value["labels"]]
    elif isinstance(value, dict):
        choices, labels = [str(k) for k in value], [int(v) for v in value.values()]
    else:
        raise CorruptFileError(f"{where}: record {i}: targets must be a mapping, got {type(value).__name__}")
    if len(choices) != len(labels) or not choices:
        raise CorruptFileError(f"{where}: record {i}: choices and labels differ in length or are empty")
    return {"choices": choices, "labels": labels}


def _mc_records(records, where):
    import pandas as pd

    if not isinstance(records, list):
        raise CorruptFileError(f"{where}: expected a JSON list of questions")
    rows = []
    for i, r in enumerate(records, 1):
        if not isinstance(r, dict) or "question" not in r:
            raise CorruptFileError(f"{where}: record {i} has no 'question'")
        rows.append({"question": str(r["question"]), "mc1_targets": _targets(r.get("mc1_targets"), where, i),
                     "mc2_targets": _targets(r.get("mc2_targets"), where, i)})
    return pd.DataFrame(rows, columns=["question", "mc1_targets", "mc2_targets"])


def _mc_from_parquet(path: Path):
    df = read_parquet(path)
    recs = [{"question": q, "mc1_targets": {"choices": list(a["choices"]), "labels": list(a["labels"])},
             "mc2_targets": {"choices": list(b["choices"]), "labels": list(b["labels"])}}
            for q, a, b in zip(df["question"], df["mc1_targets"], df["mc2_targets"])]
    return _mc_records(recs, path)


def _read_gen(path: Path):
    if path.is_dir():
        path = find_file(path, ["TruthfulQA.csv", "generation/validation-00000-of-00001.parquet"], "truthfulqa", "TruthfulQA.csv")
    return _gen_from_parquet(path) if path.suffix == ".parquet" else _gen_from_csv(path)


def _read_mc(path: Path):
    if path.is_dir():
        path = find_file(path, ["mc_task.json", "multiple_choice/validation-00000-of-00001.parquet"], "truthfulqa-mc", "mc_task.json")
    return _mc_from_parquet(path) if path.suffix == ".parquet" else _mc_records(read_json(path), path)


def load(name: str, split: str | None = None, source="auto"):
    meta = DATASETS[name]
    split = check_split(name, split, meta["splits"], "validation")
    spec = meta["hub"][split]
    reader = _read_gen if name == "truthfulqa" else _read_mc
    hub_parse = _gen_from_parquet if name == "truthfulqa" else _mc_from_parquet
    df, origin, detail = resolve(name, split, source, hub=lambda: fetch_parse(spec, hub_parse),
                                 sample=lambda: reader(sample_path(meta["sample"][split])), local=reader,
                                 real=REAL_FILES[name])
    where = origin_label(origin, detail, spec.label, source)
    return mark(df, dataset=name, split=split, source=where, sample=origin == "sample", license=LICENSE, real=origin == "real")
