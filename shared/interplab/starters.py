"""Team starters: ``interplab new my-team --starter NAME`` copies one into a folder that runs on its own.

A starter is a folder in ``starters/`` with a ``starter.toml``::

    title = "Attention-head hunt"
    summary = "one line shown by `interplab new --list`"
    question = "the concrete first question the team starts from"
    builds_on = "notebooks/attention_bertviz.ipynb"
    smoke = ["python hunt.py --quick"]        # how the tests run it with its smallest settings

``new`` copies the starter's files (not its results or caches), and adds a ``requirements.txt``
that pins the kit version it was made with, a ``.gitignore`` that keeps ``.env`` and caches out,
and an empty ``results/`` folder. It never overwrites an existing folder and needs no network.

Repository tooling behind the ``interplab`` command, not one of the kit's public modules (``interplab.__all__``).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, config

_SKIP = {"results", "__pycache__", ".ipynb_checkpoints", ".venv", ".env", "build"}
GITIGNORE = """# keep secrets, caches and environments out of git
.env
.venv/
__pycache__/
.ipynb_checkpoints/
*.egg-info/
build/
# results you want to share: commit them deliberately (git add -f results/...)
results/*
!results/.gitkeep
"""


@dataclass
class Starter:
    name: str
    path: Path
    title: str
    summary: str
    question: str
    builds_on: str = ""
    smoke: list[str] = field(default_factory=list)


def starters_dir() -> Path:
    """The starters: ``starters/`` of the source checkout, or the copy an installed wheel carries."""
    path = config.kit_path("starters")
    if path is None or not path.is_dir():
        raise RuntimeError("this interplab install has no starters/ (built without setup.py's kit files): "
                           "pip install \"interplab @ git+<repository URL>\" or clone the repository")
    return path


def load_starter(folder: Path) -> Starter:
    meta_path = folder / "starter.toml"
    if not meta_path.is_file():
        raise ValueError(f"{folder} has no starter.toml")
    meta = tomllib.loads(meta_path.read_text(encoding="utf-8"))
    missing = [k for k in ("title", "summary", "question") if not meta.get(k)]
    if missing:
        raise ValueError(f"{meta_path} lacks {', '.join(missing)}")
    return Starter(folder.name, folder, meta["title"], meta["summary"], meta["question"], meta.get("builds_on", ""), list(meta.get("smoke", [])))


def available() -> list[Starter]:
    """Every starter on disk, sorted by name."""
    return [load_starter(p) for p in sorted(starters_dir().iterdir()) if (p / "starter.toml").is_file()]


def get(name: str) -> Starter:
    found = {s.name: s for s in available()}
    if name not in found:
        raise KeyError(f"unknown starter {name!r}; available: {', '.join(found)}")
    return found[name]


def kit_requirement() -> str:
    """The pip requirement for the kit version this starter was made with (commit if known, else version tag)."""
    from .notebooks import repo_url

    ref = f"v{__version__}"
    built = config.kit_path("COMMIT")  # the commit a wheel was built from
    if built is not None:
        ref = built.read_text(encoding="utf-8").strip() or ref
    root = config.repo_root()
    if root is not None and (root / ".git").exists():
        try:
            ref = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10).stdout.strip() or ref
        except (OSError, subprocess.SubprocessError):
            pass
    return f"interplab @ git+{repo_url()}@{ref}"


def new(dest: str | Path, starter: str) -> Path:
    """Copy ``starter`` into a new folder ``dest``; refuses if ``dest`` exists (nothing is touched)."""
    s = get(starter)
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} already exists; choose a new folder name (nothing was changed)")
    tmp = dest.with_name(f".{dest.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(s.path, tmp, ignore=lambda d, names: [n for n in names if n in _SKIP])
    (tmp / "results").mkdir(exist_ok=True)
    (tmp / "results" / ".gitkeep").touch()
    (tmp / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    extra = tmp / "requirements.txt"
    lines = [f"# {s.title}: made with interplab {__version__}. Install: pip install -r requirements.txt", kit_requirement()]
    if extra.exists():  # a starter's own extra needs (names pinned in the kit's requirements.txt)
        lines += [l for l in extra.read_text(encoding="utf-8").splitlines() if l.strip() and not l.startswith("#")]
    extra.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.rename(dest)
    return dest


def cli(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="interplab new", description="Copy a starter project into a new team folder.")
    p.add_argument("folder", nargs="?", help="the new folder to create (must not exist)")
    p.add_argument("--starter", "-s", help="which starter (see --list)")
    p.add_argument("--list", action="store_true", help="list the starters")
    args = p.parse_args(argv)
    try:
        items = available()
    except RuntimeError as exc:
        print(f"interplab new: {exc}", file=sys.stderr)
        return 2
    if args.list or not args.folder:
        width = max((len(s.name) for s in items), default=0)
        for s in items:
            print(f"{s.name.ljust(width)}  {s.summary}")
        if not args.list:
            print("\nusage: interplab new FOLDER --starter NAME", file=sys.stderr)
            return 2
        return 0
    if not args.starter:
        print("interplab new: choose a starter with --starter NAME (see 'interplab new --list')", file=sys.stderr)
        return 2
    try:
        dest = new(args.folder, args.starter)
    except (FileExistsError, KeyError) as exc:
        print(f"interplab new: {exc.args[0]}", file=sys.stderr)
        return 1
    s = get(args.starter)
    print(f"created {dest}/ from starter '{s.name}' ({s.title})")
    print(f"first question: {s.question}")
    print(f"next: cd {dest} && read README.md")
    return 0
