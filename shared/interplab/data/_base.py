"""Plumbing shared by the dataset loaders: where a table comes from, how files are read, how it is labelled.

Every loader resolves ``source`` the same way (:func:`resolve`):

* ``"sample"``: the project-written sample bundled in ``interplab/data/samples/``;
* ``"hub"``: the pinned Hugging Face Hub file (cache first, download if allowed), else an error;
* ``"auto"``: like ``"hub"``, but when the hub cannot be reached (offline, nothing cached) it logs
  ONE line on the ``interplab.data`` logger and returns the sample. When the environment variable
  ``INTERPLAB_DATA_DIR`` names a folder laid out like the kit's shared datasets folder
  (``imdb/reviews-real.csv``, ``hh-rlhf/harmless-base/test.jsonl.gz``, ``ethics-commonsense/cm_test.csv``,
  ... see each family's ``REAL_FILES``), ``auto`` reads the real file from there instead, logs ONE
  line saying ``REAL`` and the path, and never falls back to a sample;
* anything else: a local file or folder in the dataset's original format.

Files are parsed completely before a DataFrame is built, so a truncated or corrupt file raises
:class:`CorruptFileError` and never yields half a table; a corrupt hub file is removed from the
cache and fetched once more.
"""
from __future__ import annotations

import gzip
import json
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import InterplabError

log = logging.getLogger("interplab.data")

SOURCES = ("auto", "hub", "sample")
DATA_DIR_ENV = "INTERPLAB_DATA_DIR"


def data_dir() -> Path | None:
    """The folder named by ``INTERPLAB_DATA_DIR`` (real files in their original formats), or None.

    Set it to run notebooks on real data without editing them, e.g. the kit's CI points it at
    ``../shared/datasets``. A set but missing folder is an error, not a silent sample.
    """
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DatasetError(f"{DATA_DIR_ENV}={value!r} is not a folder; unset it or point it at a folder of real data files")
    return path


class DatasetError(InterplabError, ValueError):
    """A dataset request that cannot be served (unknown name, split or option)."""


class CorruptFileError(InterplabError, ValueError):
    """A data file is truncated or malformed; nothing was parsed from it."""


@dataclass(frozen=True)
class HubFile:
    """One pinned file in a Hugging Face dataset repo (sha256 where a public source states it)."""

    repo_id: str
    filename: str
    revision: str
    sha256: str | None = None

    @property
    def label(self) -> str:
        return f"hub:{self.repo_id}@{self.revision[:7]}/{self.filename}"


# ---------------------------------------------------------------- samples

def sample_path(*parts: str) -> Path:
    """Path of a bundled sample file (inside the installed package, so it works from a wheel too)."""
    return Path(__file__).resolve().parent.joinpath("samples", *parts)


def mark(df, *, dataset: str, split: str | None, source: str, sample: bool, license: str = "",
         description: str = "", **extra):
    """Attach provenance to ``df.attrs``; sample frames become :class:`SampleFrame` (a banner when shown)."""
    if sample:
        from ._frame import SampleFrame

        df = SampleFrame(df)
        banner = description or (f"SAMPLE of {dataset}" + (f" ({split})" if split else "")
                                 + f": {len(df)} project-written rows in the real schema, not the real dataset")
        df.attrs["banner"] = banner
        df.attrs["description"] = banner
    else:
        df.attrs["description"] = description or f"{dataset}" + (f" ({split})" if split else "") + f" from {source}"
    if extra.pop("real", False):
        df.attrs["description"] = f"REAL: {dataset}" + (f" ({split})" if split else "") + f", {len(df)} rows from {source}"
    df.attrs.update({"dataset": dataset, "split": split, "source": source, "sample": bool(sample), "license": license})
    df.attrs.update(extra)
    return df


# ---------------------------------------------------------------- readers (all-or-nothing)

def _open_text(path: Path):
    """Text handle for a plain or gzip file (decided by magic bytes), BOM stripped."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, "r", encoding="utf-8-sig")


def read_text(path: Path) -> str:
    try:
        with _open_text(path) as f:
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CorruptFileError(f"{path}: truncated or corrupt file ({type(exc).__name__}: {exc}); nothing was loaded") from exc
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{path}: not UTF-8 text ({exc}); nothing was loaded") from exc


def read_jsonl(path: Path) -> list[dict]:
    """Every record of a JSON-lines file (plain or .gz); a bad line raises with its line number."""
    rows = []
    for i, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise CorruptFileError(f"{path}: line {i} is not valid JSON ({exc.msg}); nothing was loaded") from exc
    return rows


def read_json(path: Path):
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); nothing was loaded") from exc


def read_csv(path: Path, **kwargs):
    """pandas.read_csv on a plain or gzip CSV, tolerant of a UTF-8 BOM, strict about truncation."""
    import io

    import pandas as pd

    text = read_text(path)
    try:
        return pd.read_csv(io.StringIO(text), **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CorruptFileError(f"{path}: malformed CSV ({exc}); nothing was loaded") from exc


def read_parquet(path: Path):
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for truncated files
        raise CorruptFileError(f"{path}: truncated or corrupt parquet ({type(exc).__name__}: {exc}); nothing was loaded") from exc


def local_path(source, name: str) -> Path:
    path = Path(os.fspath(source)).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{name}: local path {str(path)!r} does not exist "
                                f"(source must be 'auto', 'hub', 'sample' or an existing file/folder)")
    return path


def find_file(folder: Path, candidates: list[str], name: str, what: str) -> Path:
    """First of ``candidates`` (relative names) that exists under ``folder``."""
    for c in candidates:
        if (folder / c).is_file():
            return folder / c
    raise FileNotFoundError(f"{name}: no {what} file in {folder} (looked for {', '.join(candidates)})")


# ---------------------------------------------------------------- hub

def _remove_cached(path: Path) -> None:
    from ..hub import _remove_cached as remove  # the snapshot link and the blob it points to

    remove(path)


def fetch_parse(spec: HubFile, parse: Callable[[Path], object]):
    """Fetch ``spec`` through :func:`interplab.hub.fetch` and parse it; a file that fails to parse
    (truncated download, bad gzip) is removed from the cache and fetched once more."""
    from .. import hub

    path = hub.fetch(spec.repo_id, spec.filename, revision=spec.revision, sha256=spec.sha256)
    try:
        return parse(path)
    except CorruptFileError as exc:
        log.warning("%s: cached file is corrupt (%s); removing it and fetching again", spec.label, str(exc)[:120])
        _remove_cached(path)
        path = hub.fetch(spec.repo_id, spec.filename, revision=spec.revision, sha256=spec.sha256)
        return parse(path)


def is_cached(spec: HubFile) -> bool:
    """True when the pinned file is in the Hugging Face cache (no network call)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        hit = try_to_load_from_cache(spec.repo_id, spec.filename, revision=spec.revision, repo_type="dataset")
    except Exception:
        return False
    return isinstance(hit, str) and Path(hit).is_file()


def fallback_note(name: str, split: str | None, reason: str, df, what: str = "project-written SAMPLE") -> None:
    """The ONE line logged when ``auto`` falls back to the bundled sample."""
    n = len(df) if hasattr(df, "__len__") else "?"
    log.warning("%s%s: %s; fell back to the bundled %s (%s rows)", name, f" [{split}]" if split else "", reason, what, n)


def _hub_errors() -> tuple[type[Exception], ...]:
    """Hub answers that mean "this pinned file is not there" (moved repo, wrong name): auto falls back."""
    try:
        from huggingface_hub import errors
    except ImportError:  # pragma: no cover
        return ()
    return tuple(getattr(errors, n) for n in ("EntryNotFoundError", "RepositoryNotFoundError",
                                              "RevisionNotFoundError", "HfHubHTTPError") if hasattr(errors, n))


def _reason(exc: Exception) -> str:
    from ..hub import CorruptCacheError, HubNotFoundError, NotCachedError, OfflineError

    if isinstance(exc, CorruptCacheError):
        return "cached hub file failed its checksum and the hub is unreachable"
    if isinstance(exc, NotCachedError):
        return "hub unreachable and file not cached"
    if isinstance(exc, OfflineError):
        return f"hub unreachable ({str(exc)[:160]})"
    if isinstance(exc, HubNotFoundError):
        return f"hub file not available ({exc})"
    if isinstance(exc, CorruptFileError):
        return f"hub file unusable ({str(exc)[:80]})"
    return f"hub file not available ({type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''})"


def find_real(name: str, split: str | None, candidates: list[str] | tuple[str, ...]) -> Path | None:
    """The first of ``candidates`` (paths relative to ``INTERPLAB_DATA_DIR``) that exists, or None when
    the variable is unset; raises :class:`DatasetError` when it is set but holds none of them."""
    root = data_dir()
    if root is None:
        return None
    for c in candidates:
        if (root / c).exists():
            return root / c
    what = f"{name}" + (f" [{split}]" if split else "")
    raise DatasetError(f"{what}: {DATA_DIR_ENV}={str(root)!r} has no file for it (looked for "
                       f"{', '.join(candidates) or 'nothing: no real file is known for this split'}); "
                       f"unset {DATA_DIR_ENV} or pass source='sample'")


def real_note(name: str, split: str | None, path: Path, df) -> None:
    """The ONE line logged when ``auto`` reads a real file from ``INTERPLAB_DATA_DIR``."""
    n = len(df) if hasattr(df, "__len__") else "?"
    log.warning("%s%s: REAL data from %s (%s rows, %s)", name, f" [{split}]" if split else "", path, n, DATA_DIR_ENV)


def resolve(name: str, split: str | None, source, *, hub: Callable[[], object] | None,
            sample: Callable[[], object], local: Callable[[Path], object], note: bool = True,
            what: str = "project-written SAMPLE", real: list[str] | tuple[str, ...] = (),
            read_real: Callable[[Path], object] | None = None):
    """Return ``(table, origin, detail)``; origin is "hub", "sample", "local" or "real" (a file under
    ``INTERPLAB_DATA_DIR``, tried first by ``auto`` from the relative paths ``real``); detail says why a
    fallback happened, or is the real file's path ("" otherwise). With ``note`` the fallback or the
    real file is logged in one line. ``read_real`` reads a real file (default: ``local``)."""
    from ..hub import HubError

    if isinstance(source, str) and source in SOURCES:
        if source == "auto":
            path = find_real(name, split, real)
            if path is not None:
                df = (read_real or local)(path)
                if note:
                    real_note(name, split, path, df)
                return df, "real", str(path)
        if source == "sample":
            return sample(), "sample", ""
        if hub is None:
            if source == "hub":
                raise DatasetError(f"{name}: split {split!r} has no copy on the Hugging Face Hub; "
                                   "use source='sample' or a local path")
            df, reason = sample(), "no copy on the Hugging Face Hub"
        elif source == "hub":
            return hub(), "hub", ""
        else:
            try:
                return hub(), "hub", ""
            except (HubError, CorruptFileError, *_hub_errors()) as exc:
                df, reason = sample(), _reason(exc)
        if note:
            fallback_note(name, split, reason, df, what)
        return df, "sample", reason
    if source is None or not isinstance(source, (str, os.PathLike)):
        raise DatasetError(f"{name}: source must be 'auto', 'hub', 'sample' or a local path, got {source!r}")
    return local(local_path(source, name)), "local", ""


def origin_label(origin: str, detail: str, hub_label: str, source) -> str:
    """``df.attrs["source"]`` for a table that came from ``origin`` (see :func:`resolve`)."""
    return {"hub": hub_label, "sample": "sample", "local": str(source), "real": detail}[origin]


def check_split(name: str, split: str | None, splits: tuple[str, ...], default: str) -> str:
    split = default if split is None else split
    if split not in splits:
        raise DatasetError(f"{name}: unknown split {split!r}; splits: {', '.join(splits)}")
    return split
