"""The benchmarks run (a benchmark that crashes shows as a FAILED row in ``make bench``): the quick ones
here at a tiny size, checking that they end with their machine-readable ratio lines."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _collect():
    import importlib.util

    spec = importlib.util.spec_from_file_location("collect", BENCH / "collect.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ratio_lines_round_trip_and_bad_ops_are_refused(capsys):
    collect = _collect()
    collect.ratio("x / y items/s", 2.5, ">=", 3)
    line = capsys.readouterr().out
    assert collect.parse(line) == ("x / y items/s", 2.5, ">=", 3.0)
    assert collect.parse("RATIO\tname\tnot-a-number\t>=\t1") is None and collect.parse("plain output") is None
    with pytest.raises(ValueError, match="op must be"):
        collect.ratio("x", 1.0, "<", 1)


@pytest.mark.slow
def test_lm_benchmark_runs_against_the_protocol_toy_server(tmp_path):
    """bench_lm times the client against a latency-only server; it broke when the loopback server's default
    became the real smollm2 (which has no 'loopback-chat' model)."""
    proc = subprocess.run([sys.executable, str(BENCH / "bench_lm.py"), "--n", "40", "--latency", "0.01"],
                          cwd=BENCH.parent, capture_output=True, text=True, timeout=300)
    # exit code 1 means a goal missed (at this tiny size the speed-up is small), not a crash
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [r for r in map(_collect().parse, proc.stdout.splitlines()) if r]
    assert rows and all(r[1] > 0 for r in rows), proc.stdout


@pytest.mark.slow
def test_explain_benchmark_runs_where_the_kit_is_float32():
    """bench_explain crashed at its end (a KeyError, before that a ValueError) wherever the kit's precision is
    float32, which is every CPU without AMX: the float32 twins of the kit's runs share their names."""
    proc = subprocess.run([sys.executable, str(BENCH / "bench_explain.py"), "--samples", "30", "--repeats", "1",
                           "--precision", "float32"], cwd=BENCH.parent, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]
    names = [r[0] for r in map(_collect().parse, proc.stdout.splitlines()) if r]
    assert names == ["LIME unbatched / kit", "LIME kit / raw encoder floor"], proc.stdout
    assert "kit precision: float32" in proc.stdout and "LIME weights, kit vs float32 one-at-a-time" in proc.stdout
