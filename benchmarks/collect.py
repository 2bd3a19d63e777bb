"""Run every ``benchmarks/bench_*.py`` and end with ONE table of every ratio against its target.

The contract: a benchmark prints each figure that has a target as one machine-readable line
``RATIO<TAB>name<TAB>value<TAB><= or >=<TAB>target`` (``ratio()`` below prints it; a benchmark may
also print the line itself). Everything else a benchmark prints is passed through as it runs.
By default the benchmarks run at their quick defaults (all of them together: under 15 minutes on 2
CPU cores); ``--full`` passes ``--full`` to every benchmark that takes it (longer, steadier figures).
A benchmark that crashes or runs past ``--timeout`` shows as a FAILED row; the exit code is 1 if any did.

    .venv/bin/python benchmarks/collect.py [--full] [--only evals smollm2] [--timeout 420]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OPS = {"<=": lambda v, t: v <= t, ">=": lambda v, t: v >= t}


def ratio(name: str, value: float, op: str, target: float) -> None:
    """Print one machine-readable ratio line for the summary table (``op`` is "<=" or ">=")."""
    if op not in OPS:
        raise ValueError(f"op must be '<=' or '>=', got {op!r}")
    print(f"RATIO\t{name}\t{value:.4g}\t{op}\t{target:g}", flush=True)


def parse(line: str):
    """(name, value, op, target) from a RATIO line, else None."""
    parts = line.rstrip("\n").split("\t")
    if len(parts) != 5 or parts[0] != "RATIO" or parts[3] not in OPS:
        return None
    try:
        return parts[1], float(parts[2]), parts[3], float(parts[4])
    except ValueError:
        return None


def run(path: Path, full: bool, timeout: float):
    """Run one benchmark, echoing its output; (ratio rows, return code or None on timeout, seconds)."""
    cmd = [sys.executable, str(path)]
    if full and "--full" in path.read_text(encoding="utf-8"):
        cmd.append("--full")
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    rows, t0 = [], time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=HERE.parent, start_new_session=True)
    # past its time the benchmark is stopped with the processes it started (servers, interpreters), silent or not
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        for line in proc.stdout:
            got = parse(line)
            if got:
                rows.append(got)
            sys.stdout.write(line)
        rc = proc.wait()
    finally:
        timer.cancel()
    if time.perf_counter() - t0 >= timeout:
        rc = None
    return rows, rc, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="pass --full to every benchmark that takes it")
    ap.add_argument("--only", nargs="*", default=None, help="run only bench_<NAME>.py for these names")
    ap.add_argument("--timeout", type=float, default=420.0, help="seconds one benchmark may run (default 420)")
    args = ap.parse_args(argv)
    paths = sorted(HERE.glob("bench_*.py"))
    if args.only:
        paths = [p for p in paths if p.stem.removeprefix("bench_") in args.only]
    table, failed, t_all = [], [], time.perf_counter()
    for path in paths:
        print(f"\n== {path.name}", flush=True)
        rows, rc, secs = run(path, args.full, args.timeout if not args.full else 10 * args.timeout)
        table += [(path.stem.removeprefix("bench_"), *r) for r in rows]
        if rc is None or (rc != 0 and not rows):
            failed.append(f"{path.name}: {'timed out' if rc is None else f'exit code {rc}'} after {secs:.0f} s")
        print(f"-- {path.name}: {secs:.0f} s", flush=True)
    total = time.perf_counter() - t_all
    width = max([len(n) for _, n, *_ in table] + [10])
    print(f"\n{'=' * 20} summary: {len(table)} ratios from {len(paths)} benchmarks in {total / 60:.1f} min "
          f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}) {'=' * 20}")
    print(f"{'benchmark':<14} {'ratio':<{width}} {'value':>10}  {'target':>10}  verdict")
    for bench, name, value, op, target in table:
        ok = OPS[op](value, target)
        print(f"{bench:<14} {name:<{width}} {value:>10.4g}  {op} {target:<7g}  {'OK' if ok else 'MISSED'}")
    missed = sum(not OPS[op](v, t) for _, _, v, op, t in table)
    print(f"{len(table) - missed} of {len(table)} targets met" + (f"; FAILED: {'; '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
