"""How long interplab.data takes to load each dataset from local files and from the Hugging Face cache.

Targets (issue 3): TruthfulQA under 0.5 s, HH-RLHF test subset under 2 s. Real files come from
../shared/datasets (INTERPLAB_TEST_DATA overrides); the hub-cache rows copy the real file into a
temporary Hugging Face cache at the pinned revision, so they time exactly what a user with a warm
cache gets (fetch from cache + parse), offline. Each time is the best of 3 runs.
Run: .venv/bin/python benchmarks/bench_data.py
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from collect import ratio

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INTERPLAB_TEST_DATA", ROOT.parent / "shared" / "datasets"))


def best_of(fn, n: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> int:
    import huggingface_hub.constants as hfc

    from interplab import data
    from interplab.data import hh_rlhf

    logging.getLogger("interplab.data").setLevel(logging.ERROR)  # no fallback lines in the table
    t0 = time.perf_counter()
    import pandas  # noqa: F401  (import cost reported separately, not charged to the first loader)
    print(f"import pandas: {time.perf_counter() - t0:.2f} s (once per process)")

    rows: list[tuple[str, str, float, int, float | None]] = []

    def bench(label, where, fn, target=None):
        secs, df = best_of(fn)
        rows.append((label, where, secs, len(df), target))

    for name in ("imdb", "hh-rlhf", "ethics-commonsense", "truthfulqa", "truthfulqa-mc", "inverse-scaling/memo-trap", "mnist"):
        bench(name, "bundled sample" if name != "mnist" else "sklearn digits", lambda n=name: data.load(n, source="sample"))

    if SHARED.is_dir():
        tqa = SHARED / "truthfulqa"
        bench("truthfulqa", "local TruthfulQA.csv", lambda: data.load("truthfulqa", source=tqa / "TruthfulQA.csv"), 0.5)
        bench("truthfulqa-mc", "local mc_task.json", lambda: data.load("truthfulqa-mc", source=tqa / "mc_task.json"), 0.5)
        eth = SHARED / "ethics-commonsense"
        for split in ("test", "test_hard", "ambiguous"):
            bench(f"ethics-commonsense [{split}]", "local csv", lambda s=split: data.load("ethics-commonsense", split=s, source=eth))
        hh = SHARED / "hh-rlhf" / "harmless-base" / "test.jsonl.gz"
        bench("hh-rlhf [harmless-base test]", "local .jsonl.gz", lambda: data.load("hh-rlhf", split="test", source=hh), 2.0)
        bench("hh-rlhf [harmless-base test] parsed", "local .jsonl.gz",
              lambda: data.load("hh-rlhf", split="test", source=hh, parsed=True), 2.0)
        isp = SHARED / "inverse-scaling-eval-pipeline" / "data"
        for f in ("conjunction_fallacy-0shot.csv", "scope-neglect-0shot.csv", "QA_bias-v2.csv"):
            bench(f"prize task {f}", "load_prize_task", lambda f=f: data.load_prize_task(isp / f))

        # Warm Hugging Face cache at the pinned revision (what `interplab datasets download` leaves behind).
        cache = Path(tempfile.mkdtemp(prefix="bench-hf-"))
        old = hfc.HF_HUB_CACHE
        hfc.HF_HUB_CACHE = str(cache)
        try:
            spec = hh_rlhf.DATASETS["hh-rlhf"]["hub"]["harmless-base/test"]
            dest = cache / f"datasets--{spec.repo_id.replace('/', '--')}" / "snapshots" / spec.revision / spec.filename
            dest.parent.mkdir(parents=True)
            shutil.copy(hh, dest)
            bench("hh-rlhf [harmless-base test]", "HF cache (pinned rev)", lambda: data.load("hh-rlhf", split="test"), 2.0)
        finally:
            hfc.HF_HUB_CACHE = old
            shutil.rmtree(cache, ignore_errors=True)
    else:
        print(f"(real data folder {SHARED} absent: only the bundled samples are timed)")

    width = max(len(r[0]) for r in rows)
    wwhere = max(len(r[1]) for r in rows)
    print(f"\n{'dataset'.ljust(width)}  {'from'.ljust(wwhere)}  {'rows':>6}  {'seconds':>8}  target")
    failed = 0
    for label, where, secs, n, target in rows:
        verdict = ""
        if target is not None:
            ok = secs < target
            failed += not ok
            verdict = f"< {target:g} s {'ok' if ok else 'MISSED'}"
            ratio(f"load {label} from {where} (s)", secs, "<=", target)
        print(f"{label.ljust(width)}  {where.ljust(wwhere)}  {n:>6}  {secs:>8.3f}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
