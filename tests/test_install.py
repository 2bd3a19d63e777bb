"""The Colab install, reproduced: the kit's wheel in a fresh virtual environment, used from a folder
with no checkout nearby.

Builds the wheel from this checkout, installs it with ``--no-deps`` into a new venv that sees the
test environment's packages through a ``.pth`` line (so it stays fast and offline), and from a
temporary folder: imports every submodule; runs two notebooks whose setup cell takes the Colab
path (a faked ``google.colab`` module and a ``%pip`` that records its command instead of running
it); lists and creates every starter; loads every bundled sample and vendored asset.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

FAKE_COLAB = '''
import os, sys, types
google = types.ModuleType("google"); colab = types.ModuleType("google.colab")
google.colab = colab; sys.modules["google"] = google; sys.modules["google.colab"] = colab
def pip(line):
    """Record the command %pip would run (after IPython expanded {variables}); run nothing."""
    with open(os.environ["FAKE_PIP_LOG"], "a", encoding="utf-8") as f:
        f.write(line + "\\n")
get_ipython().register_magic_function(pip, "line", "pip")
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, a work folder far from the checkout, env) with the freshly built wheel installed."""
    base = tmp_path_factory.mktemp("install")
    dist = base / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(dist), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(dist.glob("interplab-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the test environment's packages, after the venv's own (its .pth files, e.g. an editable kit, are not read)
    (site / "zz-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr[-2000:]
    work = base / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", OMP_NUM_THREADS="1")
    return py, work, env, site


def run(installed, *args, timeout=300):
    py, work, env, _ = installed
    return subprocess.run([str(a) for a in args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)


def test_imports_every_submodule_from_the_wheel(installed):
    py, work, env, site = installed
    code = ("import importlib, pkgutil, interplab, interplab.config as c; "
            "names = [m.name for m in pkgutil.walk_packages(interplab.__path__, 'interplab.')]; "
            "[importlib.import_module(n) for n in names]; "
            "print(interplab.__file__); print(c.repo_root()); print(len(names))")
    out = run(installed, py, "-c", code)
    assert out.returncode == 0, out.stderr[-3000:]
    path, root, n = out.stdout.split()
    assert Path(path).is_relative_to(site) and root == "None"      # the wheel, not the checkout
    assert int(n) >= 40


def test_starters_list_and_create_from_the_installed_package(installed):
    py, work, env, _ = installed
    expected = sorted(p.parent.name for p in (ROOT / "starters").glob("*/starter.toml"))
    out = run(installed, "interplab", "new", "--list")
    assert out.returncode == 0, out.stderr
    assert sorted(line.split()[0] for line in out.stdout.splitlines() if line.strip()) == expected
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    for name in expected:
        out = run(installed, "interplab", "new", f"team-{name}", "--starter", name)
        assert out.returncode == 0, out.stderr
        made = work / f"team-{name}"
        src = ROOT / "starters" / name
        copied = {p.relative_to(made).as_posix() for p in made.rglob("*") if p.is_file()}
        originals = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        assert originals <= copied, originals - copied
        req = (made / "requirements.txt").read_text()
        assert "interplab @ git+https://github.com/" in req
        if commit:
            assert f"@{commit}" in req                                 # the commit the wheel was built from
    out = run(installed, "interplab", "new", f"team-{expected[0]}", "--starter", expected[0])
    assert out.returncode == 1 and "already exists" in out.stderr


def test_samples_assets_and_catalogue_from_package_data(installed):
    py, work, env, _ = installed
    code = """
import json
from importlib import resources
from interplab import data, notebooks
rows = {}
for name in data.names():
    rows[name] = len(data.load(name, source="sample"))
vendor = resources.files("interplab") / "static" / "vendor"
assets = {p.name: len(p.read_bytes()) for p in vendor.iterdir()}
assets["original_configs.json"] = len(json.loads((resources.files("interplab") / "toy" / "original_configs.json").read_text()))
print(json.dumps({"rows": rows, "assets": assets, "notebooks": len(notebooks.catalogue()),
                  "constraints": notebooks.constraints(), "no_deps": notebooks.no_deps_pins()}))
"""
    out = run(installed, py, "-c", code)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(got["rows"]) >= {"imdb", "hh-rlhf", "truthfulqa", "ethics-commonsense", "mnist"}
    assert all(0 < n <= 2000 for n in got["rows"].values()), got["rows"]
    assert {"d3.v5.min.js", "jquery.min.js", "LICENSE-d3.txt"} <= set(got["assets"]) and min(got["assets"].values()) > 0
    assert got["notebooks"] == len(re.findall(r"^\| \[[^\]]+\]\(notebooks/", (ROOT / "README.md").read_text(), re.M))
    pins = [l for l in (ROOT / "requirements.txt").read_text().splitlines() if re.match(r"^[A-Za-z0-9_.-]+==", l)]
    assert got["constraints"] == [p for p in pins if not p.startswith("torch==")]   # every pin but torch
    assert got["no_deps"] == re.findall(r"^# no-deps:\s*(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    out = run(installed, "interplab", "notebooks", "check")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "source checkout" in out.stderr


@pytest.mark.parametrize("nb", ["explanations_tabular", "network_graph"])
def test_notebook_runs_through_the_colab_setup_path(installed, nb, tmp_path):
    """The setup cell takes its Colab branch: the %pip commands it would run are the right ones (and
    the constraints agree with this environment); the rest of the notebook runs on the wheel."""
    import nbformat
    from nbclient import NotebookClient

    py, work, env, _ = installed
    ipython = tmp_path / "ipython"
    (ipython / "profile_default" / "startup").mkdir(parents=True)
    (ipython / "profile_default" / "startup" / "00-fake-colab.py").write_text(FAKE_COLAB, encoding="utf-8")
    kernels = tmp_path / "jupyter" / "kernels" / "wheel"
    kernels.mkdir(parents=True)
    log = tmp_path / "pip.log"
    kenv = {**env, "IPYTHONDIR": str(ipython), "FAKE_PIP_LOG": str(log), "MPLBACKEND": "Agg"}
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "wheel",
        "language": "python", "env": kenv}), encoding="utf-8")
    os.environ["JUPYTER_PATH"] = str(tmp_path / "jupyter")
    try:
        book = nbformat.read(ROOT / "notebooks" / f"{nb}.ipynb", as_version=4)
        copy = work / f"{nb}.ipynb"
        NotebookClient(book, kernel_name="wheel", timeout=600, resources={"metadata": {"path": str(work)}}).execute()
        nbformat.write(book, copy)
    finally:
        os.environ.pop("JUPYTER_PATH", None)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[0] == 'install -q --no-deps "interplab @ git+https://github.com/apartresearch/interplab"'
    m = re.fullmatch(r"install -q -c (\S+) interplab", lines[1])
    assert m, lines
    pins = [l for l in (ROOT / "requirements.txt").read_text().splitlines() if re.match(r"^[A-Za-z0-9_.-]+==", l)]
    assert Path(m.group(1)).read_text().split() == [p for p in pins if not p.startswith("torch==")]
    assert lines[2] == "install -q --no-deps " + " ".join(
        re.findall(r"^# no-deps:\s*(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    assert len(lines) == 3
    # what the second command would do here: nothing to change (every pin is what this env has)
    dry = run(installed, py, "-m", "pip", "install", "--no-index", "--dry-run", "-c", m.group(1), "interplab")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "Would install" not in dry.stdout, dry.stdout
