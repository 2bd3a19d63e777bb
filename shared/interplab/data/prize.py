"""Inverse Scaling Prize format: the 11 winning tasks by name, and any task file in the prize format.

API (what evals and starters call)::

    from interplab.data import load, load_prize_task
    df = load_prize_task("my_task.csv")            # CSV, JSONL(.gz), JSON list or parquet; or a DataFrame
    df.attrs["task_type"]                          # "classification", "sequence_prob", "logodds", ...
    df = load("inverse-scaling/memo-trap")         # a prize winner (hub mirror, else bundled sample)
    df = load("inverse-scaling", task="memo-trap") # the same

``load_prize_task(path_or_frame, task_type=None, errors="raise") -> pandas.DataFrame``

Task types and the columns they need (detected from the columns when ``task_type`` is None):

=====================  ==============================================  ===========================
task_type              columns                                         detected when the file has
=====================  ==============================================  ===========================
``classification``     prompt, classes, answer_index                   classes + answer_index
``logodds``            prompt, other_prompt, classes, answer_index     other_prompt as well
``absolute_logodds``   same as logodds                                 never (pass task_type)
``sequence_prob``      prompt, completion                              completion
``numeric``            prompt, true_answer [, anchor]                  true_answer
=====================  ==============================================  ===========================

Output columns come in that order, followed by any extra columns (e.g. ``round``, ``part``).
``prompt``/``other_prompt``/``completion`` are str; ``classes`` is a ``list[str]`` (>= 2 entries)
whether the file holds a real list (JSONL, hub) or a string holding a Python list (CSV:
``"[' Yes', ' No']"``, parsed with ``ast.literal_eval``, never ``eval``); ``answer_index`` is an
int indexing ``classes``; ``true_answer``/``anchor`` are floats. Older eval-pipeline column names
are accepted: ``filled_template`` -> prompt, ``answer_ix`` -> answer_index, ``biased_prompt`` ->
other_prompt; a pandas index column (``Unnamed: 0``) is dropped.

Malformed rows (empty prompt, ``classes`` not a list of strings, ``answer_index`` out of range,
...) raise :class:`PrizeFormatError` naming each row ("row 3" = third data row of a CSV, "line 3"
of a JSONL) and the reason; ``errors="skip"`` drops them instead, logs one line and lists them in
``df.attrs["rejected"]``. ``df.attrs``: ``task_type``, ``source``, ``dataset``, ``sample``.

Cognitive-bias tasks in the same format (anchoring, conjunction fallacy, halo effect, ...) load
the same way from their CSV path.
"""
from __future__ import annotations

import ast
import math
import re
from pathlib import Path

from ._base import (CorruptFileError, DatasetError, HubFile, check_split, fetch_parse, log, mark, origin_label, read_csv,
                    read_json, read_jsonl, read_parquet, resolve, sample_path)

TASK_TYPES = ("classification", "sequence_prob", "logodds", "absolute_logodds", "numeric")
REQUIRED = {
    "classification": ("prompt", "classes", "answer_index"),
    "logodds": ("prompt", "other_prompt", "classes", "answer_index"),
    "absolute_logodds": ("prompt", "other_prompt", "classes", "answer_index"),
    "sequence_prob": ("prompt", "completion"),
    "numeric": ("prompt", "true_answer"),
}
ALIASES = {"filled_template": "prompt", "answer_ix": "answer_index", "biased_prompt": "other_prompt"}

MIRROR, MIRROR_REV = "pminervini/inverse-scaling", "c751144a58179c09aa8fbcdc2c6616881b8ae80a"
LICENSE = "CC BY 4.0 (Inverse Scaling Prize data release)"
# task name -> (mirror config, rows in the final release, round, what it tests)
TASKS = {
    "memo-trap": ("memo-trap", 936, 2, "write a famous phrase with a changed ending; memorised endings win"),
    "redefine-math": ("redefine", 1_244, 1, "redefine a symbol or constant, then use it; the usual meaning wins"),
    "hindsight-neglect": ("hindsight-neglect", 315, 1, "judge a bet by its expected value, not its lucky outcome"),
    "neqa": ("neqa", 300, 1, "multiple-choice questions with a negation that flips the answer"),
    "quote-repetition": ("resisting-correction", 7_344, 1, "repeat a famous quote with a changed word (final: resisting-correction)"),
    "modus-tollens": ("modus-tollens", 1_236, 2, "valid modus tollens inferences; models answer 'No'"),
    "pattern-matching-suppression": ("pattern-matching-suppression", 1_428, 2, "continue a pattern that was told to end unexpectedly"),
    "into-the-unknown": ("into-the-unknown", 1_824, 2, "pick the new information that explains an event, not the redundant one"),
    "repetitive-algebra": ("repetitive-algebra", 1_000, 2, "few-shot arithmetic whose repeated answer is wrong for the last question"),
    "sig-figs": ("sig-figs", 20_897, 2, "round to significant figures, not decimal places"),
    "prompt-injection": ("prompt-injection", 1_000, 2, "follow the task, not instructions injected in the input (sequence_prob)"),
}
ALIAS_TASKS = {"resisting-correction": "quote-repetition", "redefine": "redefine-math", "hindsight-neglect-10shot": "hindsight-neglect"}

DATASETS = {
    f"inverse-scaling/{t}": dict(
        title=f"Inverse Scaling Prize: {t}", what=what, license=LICENSE, rows={"train": rows}, splits=("train",),
        default_split="train", round=rnd,
        columns=({"prompt": "str", "completion": "str"} if t == "prompt-injection" else
                 {"prompt": "str", "classes": "list[str]", "answer_index": "int"}),
        hub={"train": HubFile(MIRROR, f"{cfg}/data-00000-of-00001.parquet", MIRROR_REV)},
        sample={"train": f"inverse-scaling/{t}.jsonl"},
    )
    for t, (cfg, rows, rnd, what) in TASKS.items()
}


class PrizeFormatError(DatasetError):
    """A prize-format file with missing columns or malformed rows; ``.problems`` lists (row, reason)."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.problems = problems or []


# ---------------------------------------------------------------- parsing one value

def parse_classes(value) -> list[str]:
    """``"[' Yes', ' No']"`` or ``[' Yes', ' No']`` -> ``[' Yes', ' No']``; raises ValueError otherwise."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("classes is empty")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise ValueError(f"classes is not a Python list literal ({type(exc).__name__}): {text[:60]!r}") from None
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()  # numpy array from parquet
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"classes must be a list, got {type(value).__name__}")
    if len(value) < 2:
        raise ValueError(f"classes needs at least 2 entries, got {len(value)}")
    if not all(isinstance(c, str) for c in value):
        raise ValueError("every class must be a string")
    return list(value)


def _as_int(value) -> int:
    if isinstance(value, bool):
        raise ValueError("answer_index must be an integer, got a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"answer_index must be an integer, got {value!r}")
    if hasattr(value, "item"):
        return _as_int(value.item())
    text = str(value).strip()
    if re.fullmatch(r"[+-]?\d+(\.0+)?", text):
        return int(float(text))
    raise ValueError(f"answer_index must be an integer, got {text[:30]!r}")


def _as_float(value, col: str) -> float:
    try:
        out = float(str(value).strip().replace(",", "")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{col} must be a number, got {str(value)[:30]!r}") from None
    if math.isnan(out):
        raise ValueError(f"{col} is empty")
    return out


def _text(value, col: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"{col} is empty")
    if not isinstance(value, str):
        raise ValueError(f"{col} must be text, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{col} is empty")
    return value


# ---------------------------------------------------------------- whole table

def detect_task_type(columns) -> str:
    """Task type implied by a set of (already normalised) column names; raises PrizeFormatError."""
    cols = set(columns)
    if {"classes", "answer_index"} <= cols:
        return "logodds" if "other_prompt" in cols else "classification"
    if "completion" in cols:
        return "sequence_prob"
    if "true_answer" in cols:
        return "numeric"
    need = "; ".join(f"{t}: {', '.join(c)}" for t, c in REQUIRED.items() if t != "absolute_logodds")
    raise PrizeFormatError(f"cannot tell the prize task type from columns {sorted(cols)}; expected one of: {need}")


def _normalise_columns(df):
    drop = [c for c in df.columns if re.fullmatch(r"Unnamed: \d+", str(c)) or str(c).strip() == ""]
    df = df.drop(columns=drop)
    df.columns = [str(c).strip() for c in df.columns]
    renames = {a: b for a, b in ALIASES.items() if a in df.columns and b not in df.columns}
    return df.rename(columns=renames)


def _read_any(path: Path):
    """(frame, row-label kind) from a CSV / JSONL / JSON / parquet file."""
    import pandas as pd

    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        return pd.DataFrame(read_jsonl(path)), "line"
    if name.endswith((".json", ".json.gz")):
        data = read_json(path)
        if not isinstance(data, list):
            raise CorruptFileError(f"{path}: expected a JSON list of examples")
        return pd.DataFrame(data), "record"
    if name.endswith(".parquet"):
        return read_parquet(path), "row"
    if name.endswith((".csv", ".csv.gz", ".tsv")):
        return read_csv(path, dtype=str, keep_default_na=False, sep="\t" if name.endswith(".tsv") else ","), "row"
    raise DatasetError(f"{path}: unsupported prize task file type (use .csv, .jsonl, .json or .parquet)")


def validate(df, task_type: str | None = None, *, where: str = "task", row_kind: str = "row", errors: str = "raise"):
    """Normalise and check a prize-format frame; returns a new frame (see the module docstring)."""
    import pandas as pd

    if errors not in ("raise", "skip"):
        raise DatasetError(f"errors must be 'raise' or 'skip', got {errors!r}")
    df = _normalise_columns(df)
    if task_type is None:
        try:
            task_type = detect_task_type(df.columns)
        except PrizeFormatError as exc:
            raise PrizeFormatError(f"{where}: {exc}") from None
    elif task_type in ("classification_acc", "classification_loss"):
        task_type = "classification"
    if task_type not in TASK_TYPES:
        raise PrizeFormatError(f"{where}: unknown task_type {task_type!r}; task types: {', '.join(TASK_TYPES)}")
    missing = [c for c in REQUIRED[task_type] if c not in df.columns]
    if missing:
        raise PrizeFormatError(f"{where}: a {task_type} task needs column(s) {missing}; got {list(df.columns)}")
    wanted = list(REQUIRED[task_type]) + (["anchor"] if task_type == "numeric" and "anchor" in df.columns else [])
    extra = [c for c in df.columns if c not in wanted]

    rows, problems = [], []
    for i, rec in enumerate(df.to_dict("records"), 1):
        try:
            out = {}
            for col in wanted:
                v = rec[col]
                if col == "classes":
                    out[col] = parse_classes(v)
                elif col == "answer_index":
                    out[col] = _as_int(v)
                elif col in ("true_answer", "anchor"):
                    out[col] = _as_float(v, col)
                else:
                    out[col] = _text(v, col)
            if "answer_index" in out and not 0 <= out["answer_index"] < len(out["classes"]):
                raise ValueError(f"answer_index {out['answer_index']} is out of range for {len(out['classes'])} classes")
            out.update({c: rec[c] for c in extra})
            rows.append(out)
        except ValueError as exc:
            problems.append((f"{row_kind} {i}", str(exc)))
    if problems and errors == "raise":
        shown = "; ".join(f"{r}: {why}" for r, why in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise PrizeFormatError(f"{where}: {len(problems)} malformed {row_kind}(s): {shown}{more}; nothing was loaded", problems)
    if problems:
        log.warning("%s: skipped %d malformed %s(s), first: %s: %s", where, len(problems), row_kind, *problems[0])
    out = pd.DataFrame(rows, columns=wanted + extra)
    if "answer_index" in out:
        out["answer_index"] = out["answer_index"].astype("int64")
    out.attrs["task_type"] = task_type
    out.attrs["rejected"] = problems
    return out


def load_prize_task(path, task_type: str | None = None, errors: str = "raise"):
    """Load a task in the Inverse Scaling Prize format from a file path (or validate a DataFrame)."""
    import pandas as pd

    if isinstance(path, pd.DataFrame):
        df = validate(path, task_type, where="DataFrame", errors=errors)
        return mark(df, dataset="prize-task", split=None, source="DataFrame", sample=bool(path.attrs.get("sample")),
                    task_type=df.attrs["task_type"], rejected=df.attrs["rejected"])
    from ._base import local_path

    p = local_path(path, "prize task")
    if p.is_dir():
        raise DatasetError(f"prize task: {p} is a folder; pass one .csv/.jsonl file")
    raw, kind = _read_any(p)
    df = validate(raw, task_type, where=str(p), row_kind=kind, errors=errors)
    return mark(df, dataset=p.name.split(".")[0], split=None, source=str(p), sample=False,
                task_type=df.attrs["task_type"], rejected=df.attrs["rejected"])


def load(name: str, split: str | None = None, source="auto", task_type: str | None = None, errors: str = "raise"):
    task = name.split("/", 1)[1]
    split = check_split(name, split, ("train",), "train")
    meta = DATASETS[name]
    spec = meta["hub"]["train"]

    def parse(p: Path, kind: str = "row"):
        raw = _read_any(p)[0]
        return validate(raw, task_type, where=f"{name} ({p.name})", row_kind="line" if p.suffix == ".jsonl" else kind,
                        errors=errors)

    def local(p: Path):
        if p.is_dir():
            for cand in (f"{task}.jsonl", f"{task}.csv", f"{meta['hub']['train'].filename}"):
                if (p / cand).is_file():
                    return parse(p / cand)
            raise FileNotFoundError(f"{name}: no {task}.jsonl / {task}.csv in {p}")
        return parse(p)

    # Under INTERPLAB_DATA_DIR: the prize's data-release jsonl (or a CSV) by task name, or the mirror's parquet.
    cfg = TASKS[task][0]
    real = list(dict.fromkeys([f"inverse-scaling/{task}.jsonl", f"inverse-scaling/{cfg}.jsonl", f"inverse-scaling/{task}.csv",
                               f"inverse-scaling/{cfg}/data-00000-of-00001.parquet"]))
    df, origin, detail = resolve(name, split, source, hub=lambda: fetch_parse(spec, parse),
                                 sample=lambda: parse(sample_path(meta["sample"]["train"])), local=local, real=real)
    where = origin_label(origin, detail, spec.label, source)
    return mark(df, dataset=name, split=split, source=where, sample=origin == "sample", license=LICENSE, real=origin == "real",
                task_type=df.attrs["task_type"], rejected=df.attrs.get("rejected", []), task=task)


def resolve_task_name(task: str) -> str:
    """``"memo-trap"`` / ``"redefine"`` / ``"inverse-scaling/neqa"`` -> ``"inverse-scaling/<task>"``."""
    t = task.split("/", 1)[1] if task.startswith("inverse-scaling/") else task
    t = ALIAS_TASKS.get(t, t)
    return f"inverse-scaling/{t}"
