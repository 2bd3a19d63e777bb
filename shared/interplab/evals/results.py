"""Results tables in the prize pipeline's per-model CSV layout, parameter counts and summaries.

A results folder holds one CSV per model (``gpt2.csv``, ``ada.csv``, ...) with the columns
``index,loss,correct,total_logprob`` (logodds tasks: ``logodds_difference`` instead of ``loss``;
sequence_prob: ``index,loss``), where ``index`` points into the task file (``data.csv`` beside them).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# Nominal parameter counts (as published / as the prize pipeline's plot_loss.py used them).
# GPT-3 API engines: EleutherAI's estimates (https://blog.eleuther.ai/gpt3-model-sizes/).
PARAM_COUNTS: dict[str, int] = {
    "gpt2": 124_000_000, "gpt2-medium": 355_000_000, "gpt2-large": 774_000_000, "gpt2-xl": 1_500_000_000,
    "ada": 350_000_000, "babbage": 1_300_000_000, "curie": 6_700_000_000, "davinci": 175_000_000_000,
    "gpt-neo-125m": 125_000_000, "gpt-neo-1.3b": 1_300_000_000, "gpt-neo-2.7b": 2_700_000_000,
    "gpt-j-6b": 6_000_000_000, "gpt-neox-20b": 20_000_000_000,
    "opt-125m": 125_000_000, "opt-350m": 350_000_000, "opt-1.3b": 1_300_000_000, "opt-2.7b": 2_700_000_000,
    "opt-6.7b": 6_700_000_000, "opt-13b": 13_000_000_000, "opt-30b": 30_000_000_000, "opt-66b": 66_000_000_000,
    "opt-175b": 175_000_000_000,
    "pythia-14m": 14_000_000, "pythia-31m": 31_000_000, "pythia-70m": 70_000_000, "pythia-160m": 160_000_000,
    "pythia-410m": 410_000_000, "pythia-1b": 1_000_000_000, "pythia-1.4b": 1_400_000_000,
    "pythia-2.8b": 2_800_000_000, "pythia-6.9b": 6_900_000_000, "pythia-12b": 12_000_000_000,
}
_ALIASES = {"text-ada-001": "ada", "text-babbage-001": "babbage", "text-curie-001": "curie",
            "babbage-002": "babbage", "gpt-j": "gpt-j-6b"}
FAMILIES = (("gpt2", "GPT-2"), ("gpt-neo", "GPT-Neo/J"), ("gpt-j", "GPT-Neo/J"), ("opt-", "OPT"),
            ("pythia", "Pythia"))
_GPT3 = {"ada", "babbage", "curie", "davinci"}


def _key(name: str) -> str:
    s = str(name).strip()
    for prefix in ("hf:", "openai:", "toy:"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    s = s.rstrip("/").split("/")[-1].lower()
    s = re.sub(r"-deduped$", "", s)
    return _ALIASES.get(s, s)


def param_count(model) -> int | None:
    """Parameters of a model: counted from a loaded model, else looked up by name (``"gpt2-xl"``,
    ``"EleutherAI/pythia-160m"``, ``"curie"``); None when unknown."""
    if not isinstance(model, str):
        from ..models import n_params

        return n_params(model)
    return PARAM_COUNTS.get(_key(model))


def model_family(name: str) -> str:
    """The family a model belongs to on the scaling plot: GPT-2, GPT-3, GPT-Neo/J, OPT, Pythia, toy kinds."""
    s = str(name)
    if s.startswith("toy:"):
        kind = re.sub(r"-\d+l$", "", s[4:])
        return f"toy {kind}"
    k = _key(s)
    if k in _GPT3 or k.endswith("-002") or k.startswith(("text-ada", "text-babbage", "text-curie", "text-davinci")):
        return "GPT-3"
    for prefix, fam in FAMILIES:
        if k.startswith(prefix):
            return fam
    return k.split("-")[0]


def read_results(path):
    """One per-model results CSV (``index,loss,correct,total_logprob``) as a DataFrame indexed by ``index``.

    ``attrs["model"]`` is the file stem (``gpt2-xl``). Raises ValueError naming what is wrong.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file at {path}")
    df = pd.read_csv(path)
    if "index" not in df.columns:
        first = df.columns[0]
        if str(first).startswith("Unnamed") or first == "":
            df = df.rename(columns={first: "index"})
        else:
            raise ValueError(f"{path.name}: not a results file (no 'index' column; columns {list(df.columns)})")
    metric = [c for c in ("loss", "logodds_difference") if c in df.columns]
    if not metric:
        raise ValueError(f"{path.name}: a results file needs a 'loss' or 'logodds_difference' column; "
                         f"it has {list(df.columns)}")
    if df["index"].duplicated().any():
        raise ValueError(f"{path.name}: the 'index' column repeats rows {df['index'][df['index'].duplicated()].tolist()[:5]}")
    for col in [c for c in ("loss", "logodds_difference", "correct", "total_logprob") if c in df.columns]:
        bad = pd.to_numeric(df[col], errors="coerce").isna() & df[col].notna()
        if bad.any():
            raise ValueError(f"{path.name}: non-numeric {col} in rows {df.index[bad].tolist()[:5]}")
        df[col] = pd.to_numeric(df[col])
    if "correct" in df:
        df["correct"] = df["correct"].astype(int)
    df = df.set_index("index")
    df.attrs.update({"model": path.stem, "task_type": "classification" if "loss" in df and "correct" in df else
                     ("sequence_prob" if "loss" in df else "logodds"), "path": str(path)})
    return df


def write_results(df, path) -> Path:
    """Write one model's results in the pipeline's layout (``index`` first, then the metric columns)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = [c for c in ("loss", "logodds_difference", "correct", "total_logprob") if c in df.columns]
    if not cols:
        raise ValueError(f"nothing to write: no loss/logodds_difference/correct/total_logprob in {list(df.columns)}")
    out = df[cols].copy()
    out.index = out.index.rename("index")
    out.to_csv(path, index=True)
    return path


def read_results_dir(folder) -> dict:
    """Every per-model CSV in a results folder (``data.csv``, the task, is skipped): {model: DataFrame}."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no results folder at {folder}")
    out = {}
    for f in sorted(folder.glob("*.csv")):
        if f.stem == "data" or f.stem.endswith("-data"):
            continue
        out[f.stem] = read_results(f)
    if not out:
        raise ValueError(f"{folder}: no per-model results CSVs")
    return out


def _metric_values(df, metric: str) -> np.ndarray:
    if metric == "accuracy":
        return df["correct"].to_numpy(dtype=float)
    return df[metric].to_numpy(dtype=float)


def bootstrap_ci(values, *, n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (items resampled with replacement)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(lo), float(hi)


def summarize(results: dict, *, params: dict | None = None, families: dict | None = None,
              n_boot: int = 1000, ci: float = 0.95, seed: int = 0):
    """One row per model: family, n_params, n_items, mean loss / accuracy / logodds with bootstrap CIs.

    ``results`` maps a model name to its results DataFrame; ``params`` / ``families`` override the
    looked-up parameter counts and families (needed for models the table does not know).
    """
    import pandas as pd

    rows = []
    for name, df in results.items():
        n = (params or {}).get(name) or df.attrs.get("n_params") or param_count(name)
        row = {"model": name, "family": (families or {}).get(name) or model_family(df.attrs.get("model") or name),
               "n_params": n, "n_items": len(df)}
        for metric in ("loss", "logodds_difference", "accuracy"):
            if metric == "accuracy" and "correct" not in df:
                continue
            if metric != "accuracy" and metric not in df:
                continue
            v = _metric_values(df, metric)
            lo, hi = bootstrap_ci(v, n_boot=n_boot, ci=ci, seed=seed)
            key = "mean_loss" if metric == "loss" else ("mean_logodds" if metric == "logodds_difference" else "accuracy")
            row.update({key: float(v.mean()), f"{key}_lo": lo, f"{key}_hi": hi})
        rows.append(row)
    out = pd.DataFrame(rows)
    missing = out["model"][out["n_params"].isna()].tolist()
    if missing:
        raise ValueError(f"unknown parameter count for {missing}: pass params={{name: count}} "
                         "(param_count(model) counts a loaded model)")
    out["n_params"] = out["n_params"].astype("int64")
    return out.sort_values(["family", "n_params"]).reset_index(drop=True)


# ---------------------------------------------------------------- the published per-model results, fetched

#: the prize organisers' eval pipeline (no license declared: the kit does not ship these files; it
#: downloads them at this pinned commit and checks every file's sha256)
PUBLISHED_REPO = "naimenz/inverse-scaling-eval-pipeline"
PUBLISHED_COMMIT = "34c8c7b066c5134fd26d6658ffa1522d2785d1d4"
_DATA_SHA = "d1c3d9e1a6e80e8ec7e88c5eb2cbbaf6e3c380231a30ca160f8d67f5d0085602"
PUBLISHED_FILES: dict[str, dict[str, str]] = {
    "conjunction-fallacy-0shot-gpt2": {
        "gpt2.csv": "8045360c90d2e0ea7f79ef8b63f3caea18eb6c96346a432e39fb9478142d1db2",
        "gpt2-medium.csv": "f51801ff9e28ce96f277d26a90d9ae4068a6bf5b346f62c98a2961aa1dea7ff4",
        "gpt2-large.csv": "b51a3681988761f9e39787b0ce5e0abc38d6272cf11dc586168778e7ed7e4c4f",
        "gpt2-xl.csv": "9a41298975b386b731510a61e5e7f6b5b8c8fed1f23cb41c00056ef4ab7c5076",
        "data.csv": _DATA_SHA,
    },
    "conjunction-fallacy-0shot-gpt3": {
        "ada.csv": "191755ba8a066d7616b5cd862aa4a8bbb16242aeeabda0e419031cf99226b129",
        "babbage.csv": "25a208164d45354758c45212a3b616f03d613a2374e39630baeddb843327b576",
        "curie.csv": "452827b53699cbeda538d50bd3183f8b0ccdf74e2f2cd027a23d7b3a982c44b8",
        "davinci.csv": "37449b8f986c5be9fe8039cea372c771bd83702fe2af8da0dbb1b03f5687ea17",
        "data.csv": _DATA_SHA,
    },
}


def _local_mirror(folder: str) -> Path | None:
    """A copy of the pipeline's ``results/<folder>`` beside the kit's source checkout (the developers'
    ../shared/datasets, or INTERPLAB_TEST_DATA); its files are checked like downloads."""
    import os

    from ..config import repo_root

    roots = [Path(os.environ["INTERPLAB_TEST_DATA"])] if os.environ.get("INTERPLAB_TEST_DATA") else []
    if repo_root() is not None:
        roots.append(repo_root().parent / "shared" / "datasets")
    for r in roots:
        d = r / "inverse-scaling-eval-pipeline" / "results" / folder
        if d.is_dir():
            return d
    return None


def _copy_checked(src: Path, target: Path, sha256: str) -> None:
    """Copy ``src`` to ``target`` only if its sha256 is the pinned one (else leave nothing)."""
    import shutil

    from .. import hub

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial")
    shutil.copyfile(src, tmp)
    if hub.sha256_of(tmp) == sha256:
        tmp.replace(target)
    else:
        tmp.unlink()


def published_results_dir(task: str = "conjunction-fallacy-0shot", family: str = "gpt3", *, quiet: bool = False):
    """Folder of the prize pipeline's published per-model CSVs for ``task`` and ``family`` ("gpt2"/"gpt3")
    in the kit's cache (``config.cache_dir("published")``), downloaded once from GitHub at the pinned
    :data:`PUBLISHED_COMMIT` with every file's sha256 checked; read from the cache after that, offline too.

    Offline with nothing cached it returns None after printing ONE line that says what to run once online
    (also when the download fails: nothing half-downloaded is kept)."""
    from .. import config, hub

    folder = f"{task}-{family}"
    if folder not in PUBLISHED_FILES:
        raise ValueError(f"no published results for {folder!r}; known: {', '.join(PUBLISHED_FILES)}")
    dest = config.cache_dir("published") / PUBLISHED_REPO.replace("/", "--") / PUBLISHED_COMMIT[:12] / folder
    mirror = _local_mirror(folder)
    try:
        for name, sha in PUBLISHED_FILES[folder].items():
            target = dest / name
            if mirror is not None and not target.is_file():
                src = mirror / name
                if name == "data.csv" and not src.is_file():  # the shared copy keeps it as results/<task>-data.csv
                    src = mirror.parent / f"{task}-data.csv"
                if src.is_file():
                    _copy_checked(src, target, sha)
            hub.fetch_github(PUBLISHED_REPO, PUBLISHED_COMMIT, f"results/{folder}/{name}", target, sha256=sha)
    except hub.HubError as exc:
        if not quiet:
            how = ("run it once online (HF_HUB_OFFLINE/INTERPLAB_OFFLINE unset): "
                   f"python -c \"from interplab import evals; evals.published_results_dir('{task}', '{family}')\"")
            print(f"Published {folder} results not available ({exc}); {how}" if config.network_allowed()
                  else f"Published {folder} results are not cached and downloads are off; {how}")
        return None
    return dest
