"""`interplab new`: every starter copies into a folder that runs on its own."""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from interplab import cli, notebooks, starters

ROOT = Path(__file__).resolve().parents[1]
ON_DISK = sorted(p.name for p in (ROOT / "starters").iterdir() if p.is_dir() and not p.name.startswith("."))


def test_every_starter_has_metadata_and_is_listed(capsys):
    names = [s.name for s in starters.available()]
    assert names == ON_DISK, "every folder in starters/ needs a starter.toml"
    assert cli.main(["new", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    for s in starters.available():
        line = next(l for l in out if l.startswith(s.name))
        assert s.summary in line
        assert (ROOT / s.builds_on).is_file(), f"{s.name} builds on missing {s.builds_on}"
        assert s.smoke, f"{s.name} has no smoke command for the tests"


def test_every_starter_is_in_the_readme_table():
    starter_cells = " ".join(e.starter for e in notebooks.catalogue())
    for name in ON_DISK:
        assert f"starters/{name}" in starter_cells, f"starter {name} is missing from README.md's notebook table"


def test_new_creates_a_self_contained_folder(tmp_path):
    name = ON_DISK[0]
    dest = starters.new(tmp_path / "my-team", name)
    src = ROOT / "starters" / name
    for f in src.iterdir():
        if f.name not in ("results", "__pycache__", "requirements.txt"):
            assert (dest / f.name).exists(), f.name
    req = (dest / "requirements.txt").read_text()
    assert re.search(r"^interplab @ git\+https://github\.com/\S+@\S+$", req, re.M), req
    gi = (dest / ".gitignore").read_text().splitlines()
    assert ".env" in gi and "__pycache__/" in gi
    assert (dest / "results").is_dir() and not any(p.name != ".gitkeep" for p in (dest / "results").iterdir())
    assert not list(tmp_path.glob(".*partial"))


def test_new_refuses_to_overwrite(tmp_path, capsys):
    dest = tmp_path / "team"
    dest.mkdir()
    (dest / "notes.md").write_text("our work")
    assert cli.main(["new", str(dest), "--starter", ON_DISK[0]]) == 1
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in dest.iterdir()] == ["notes.md"] and (dest / "notes.md").read_text() == "our work"


def test_unknown_starter_lists_the_names(tmp_path, capsys):
    assert cli.main(["new", str(tmp_path / "t"), "--starter", "nope"]) == 1
    err = capsys.readouterr().err
    assert "unknown starter 'nope'" in err and ON_DISK[0] in err
    assert not (tmp_path / "t").exists()


SECONDS = {"r-starter": 70, "explain-classifier": 50, "mnist-graph": 27}  # measured on 2 cores; others ~10 s


def _smoke(name: str, dest: Path, env: dict) -> str | None:
    """Run a starter's smoke commands in its fresh copy ``dest``: None when they pass, else what failed
    (``"skip: ..."`` where R is missing and not required)."""
    for cmd in starters.get(name).smoke:
        args = shlex.split(cmd)
        if args[0] == "nbval":
            args = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider", "-q", *args[1:]]
        elif args[0] == "python":
            args = [sys.executable, *args[1:]]
        if "Rscript" in args and not shutil.which("Rscript") and os.environ.get("INTERPLAB_REQUIRE_R") != "1":
            return "skip: R is not installed (apt-get install r-base-core r-cran-httr r-cran-jsonlite)"
        proc = subprocess.run(args, cwd=dest, capture_output=True, text=True, timeout=900, env=env)
        if proc.returncode != 0:
            return f"{cmd} failed in a fresh copy:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return None


def background_runs(items) -> list:
    """Every selected starter copied with ``interplab new`` and its smoke commands run, in the session's
    background runs (``conftest.BackgroundRuns``, each on its share of the cores): ``None | failure``."""
    from conftest import params_of, selected

    root = ROOT / "build" / "test-starters"  # the copies stay there for inspection, as the notebooks' do
    shutil.rmtree(root, ignore_errors=True)

    def run(name):
        def one(base, threads):
            from interplab import gallery

            return _smoke(name, starters.new(root / name, name), gallery.kernel_env(threads, base=base))
        return one

    names = set(params_of(items, "test_starter_runs_where_it_was_copied", "name"))
    if selected(items, "test_python_starter_answers_are_smollm2s_own"):
        names.add("python-starter")
    return [(("starter", n), SECONDS.get(n, 10.0), run(n)) for n in sorted(names)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ON_DISK)
def test_starter_runs_where_it_was_copied(name, background):
    failure = background.result(("starter", name))
    if failure and failure.startswith("skip: "):
        pytest.skip(failure[6:])
    assert failure is None, failure


@pytest.mark.slow
def test_python_starter_answers_are_smollm2s_own(background):
    """The Python starter's smoke run (its copy above) on its default model, the embedded real LM: the
    first 4 prompts at 2 temperatures, and a greedy answer is smollm2's own greedy continuation."""
    import pandas as pd

    from interplab import lm

    failure = background.result(("starter", "python-starter"))
    assert failure is None, failure
    work = ROOT / "build" / "test-starters" / "python-starter"
    df = pd.read_csv(work / "results" / "results.csv", keep_default_na=False)
    first = list(pd.read_csv(work / "prompts.csv")["Prompt"][:4])  # --quick: the first 4 prompts, 2 temperatures
    assert len(df) == 4 * 2 and set(df["model"]) == {"smollm2"} and sorted(set(df["prompt"])) == sorted(first)
    assert set(df["temperature"]) == {0.0, 1.0} and df["p_positive"].between(0, 1).all()
    greedy = df[df["temperature"] == 0].iloc[0]
    assert greedy["output"] == lm.generate("smollm2", greedy["prompt"], max_tokens=20, seed=0, cache=False)
    assert (work / "results" / "sentiment_by_temperature.png").stat().st_size > 10_000
