"""The hackathon's datasets as pandas DataFrames with a stable, documented schema.

::

    from interplab import data
    data.names()                                   # every dataset name
    df = data.load("imdb", split="test")           # text, label (0 = neg, 1 = pos)
    df = data.load("hh-rlhf", subset="harmless-base", parsed=True)
    df = data.load("ethics-commonsense", split="ambiguous")
    df = data.load("inverse-scaling/memo-trap")    # or load("inverse-scaling", task="memo-trap")
    task = data.load_prize_task("my_task.csv")     # any prize-format CSV/JSONL (see interplab.data.prize)

``source`` decides where rows come from:

* ``"auto"`` (default): the pinned Hugging Face Hub file (from the HF cache, downloaded if the
  network is allowed); offline with nothing cached it logs ONE line and returns the bundled sample;
* ``"hub"``: the hub file or an error (``interplab.hub.OfflineError`` when offline);
* ``"sample"``: the bundled project-written sample (<= 200 rows, real schema);
* a path: a local file or folder in the dataset's ORIGINAL format (e.g. ``TruthfulQA.csv``,
  ``cm_test.csv``, ``test.jsonl.gz``, ``aclImdb/``, MNIST IDX files, a prize-format CSV).

Real data without editing a notebook: set ``INTERPLAB_DATA_DIR`` to a folder laid out like the kit's
shared datasets folder (``imdb/reviews-real.csv`` or ``imdb/<split>.parquet``,
``hh-rlhf/<subset>/<split>.jsonl.gz``, ``ethics-commonsense/cm_<split>.csv``, ``truthfulqa/TruthfulQA.csv``,
``inverse-scaling/<task>.jsonl``, ...). ``auto`` then reads from there (one log line: ``REAL`` and the
path) and raises :class:`DatasetError` for a split the folder lacks, instead of giving a sample.
:func:`notice` is the one line a notebook prints about where its rows came from.

Every frame carries ``df.attrs``: ``dataset``, ``split``, ``source``, ``sample`` (bool),
``license``, ``description``. Sample frames (and MNIST's sklearn stand-in) print a SAMPLE banner
above the table wherever they are shown. Schemas: each family's module docstring
(``interplab.data.imdb``, ``hh_rlhf``, ``ethics``, ``truthfulqa``, ``mnist``, ``prize``) and the
data cards in ``datasets/<name>/README.md``.
"""
from __future__ import annotations

import difflib
import importlib
import inspect

from ._base import CorruptFileError, DatasetError, data_dir

__all__ = ["load", "names", "info", "notice", "data_dir", "parse_hh", "load_prize_task", "PrizeFormatError", "DatasetError",
           "CorruptFileError", "UnknownDatasetError"]

# Family modules, each with a DATASETS dict (name -> metadata) and load(name, split, source, **options).
_FAMILIES = ("imdb", "hh_rlhf", "ethics", "truthfulqa", "mnist", "prize")
_REGISTRY: dict[str, tuple[str, dict]] | None = None


class UnknownDatasetError(DatasetError, KeyError):
    """``load``/``info`` got a name that is not in :func:`names`."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _registry() -> dict[str, tuple[str, dict]]:
    global _REGISTRY
    if _REGISTRY is None:
        reg = {}
        for fam in _FAMILIES:
            mod = importlib.import_module(f"{__name__}.{fam}")
            for name, meta in mod.DATASETS.items():
                reg[name] = (fam, meta)
        _REGISTRY = reg
    return _REGISTRY


def names() -> list[str]:
    """Every dataset name ``load`` accepts (prize tasks as ``inverse-scaling/<task>``)."""
    return sorted(_registry())


def _lookup(name: str) -> tuple[str, dict]:
    reg = _registry()
    if not isinstance(name, str) or name not in reg:
        close = difflib.get_close_matches(str(name), list(reg), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownDatasetError(f"unknown dataset {name!r}{hint}; available: {', '.join(sorted(reg))}")
    return reg[name]


def load(name: str, split: str | None = None, source="auto", **options):
    """Load dataset ``name`` as a pandas DataFrame (see the module docstring for ``source``).

    ``split=None`` means the dataset's default split (``info(name)["default_split"]``). Options
    depend on the dataset: ``subset=``/``parsed=`` for ``hh-rlhf``; ``task=`` for
    ``inverse-scaling``. An unknown name raises :class:`UnknownDatasetError` listing the names.
    """
    if name == "inverse-scaling" or (isinstance(name, str) and name.startswith("inverse-scaling/")):
        from .prize import TASKS, resolve_task_name

        if name == "inverse-scaling":
            if "task" not in options:
                raise DatasetError(f"inverse-scaling: pass task=...; tasks: {', '.join(TASKS)}")
            name = options.pop("task")
        name = resolve_task_name(name)
    fam, _ = _lookup(name)
    mod = importlib.import_module(f"{__name__}.{fam}")
    accepted = inspect.signature(mod.load).parameters
    if set(options) - set(accepted):  # checked before the call, so a TypeError inside a loader stays one
        raise DatasetError(f"{name}: unsupported option(s) {sorted(options)}; see help(interplab.data.{fam})")
    return mod.load(name, split=split, source=source, **options)


def info(name: str) -> dict:
    """Metadata for ``name``: title, what, license, rows per split, splits, default split, columns,
    pinned hub files (repo, file, revision, sha256), bundled sample files, data card path, cached."""
    from ._base import is_cached

    fam, meta = _lookup(name)
    hub = meta.get("hub", {})
    out = {"name": name, "family": fam, **{k: v for k, v in meta.items() if k not in ("hub",)}}
    out["hub"] = {k: {"repo_id": f.repo_id, "filename": f.filename, "revision": f.revision, "sha256": f.sha256}
                  for k, f in hub.items()}
    out["cached"] = {k: is_cached(f) for k, f in hub.items()}
    out["card"] = f"datasets/{meta.get('card', name.split('/')[0])}/README.md"
    return out


def notice(df) -> str:
    """One line for the top of a notebook saying what ``df``'s rows are and what that means for its numbers.

    A sample: ``"SAMPLE: ... project-written rows ...: the numbers below show that the code runs, not what
    the real dataset shows ..."``; real rows: ``"REAL: <dataset> (<split>), N rows from <source>"``.
    """
    attrs = getattr(df, "attrs", {}) or {}
    name = attrs.get("dataset", "this table")
    split = f" ({attrs['split']})" if attrs.get("split") else ""
    n = len(df) if hasattr(df, "__len__") else "?"
    if attrs.get("sample"):
        what = "stand-in rows, not the dataset" if str(attrs.get("source", "")).startswith("sklearn") else \
            "project-written rows in the real schema"
        return (f"SAMPLE: {name}{split} is {n} {what}; the numbers below show that the code runs, not what the "
                f"real dataset shows (go online, pass source= a real file, or set INTERPLAB_DATA_DIR)")
    if not attrs.get("source"):
        return f"{name}: {n} rows of unrecorded origin (not loaded by interplab.data)"
    return f"REAL: {name}{split}, {n} rows from {attrs['source']}"


def parse_hh(df):
    """Parsed view of HH-RLHF pairs; see :func:`interplab.data.hh_rlhf.parse_hh`."""
    from .hh_rlhf import parse_hh as _parse

    return _parse(df)


def load_prize_task(path, task_type: str | None = None, errors: str = "raise"):
    """Load any Inverse-Scaling-Prize-format CSV/JSONL; see :func:`interplab.data.prize.load_prize_task`."""
    from .prize import load_prize_task as _load

    return _load(path, task_type=task_type, errors=errors)


def __getattr__(name: str):
    if name == "PrizeFormatError":
        from .prize import PrizeFormatError

        return PrizeFormatError
    raise AttributeError(f"module 'interplab.data' has no attribute {name!r}")


def cli(argv: list[str]) -> int:
    """``interplab datasets list | info NAME | download NAME`` (see ``interplab datasets --help``)."""
    from ._cli import main

    return main(argv)
