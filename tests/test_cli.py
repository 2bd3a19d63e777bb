"""The interplab command line: lazy subcommands, clear errors."""
import subprocess
import sys

from interplab import cli


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_unknown_command(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_every_command_resolves():
    import importlib

    for name, (module, func, _) in cli.COMMANDS.items():
        assert callable(getattr(importlib.import_module(module), func)), name


def test_console_script_installed():
    out = subprocess.run([sys.executable, "-m", "interplab.cli", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("interplab ")


def test_notebooks_list(capsys):
    assert cli.main(["notebooks", "list"]) == 0
    assert "notebooks/attention_bertviz.ipynb" in capsys.readouterr().out


def test_repository_tooling_is_not_a_public_module():
    """notebooks / gallery / starters / cli drive the command line; the kit's module list names only the themed
    and core modules, and every name in it is a real submodule (so the list cannot drift from the package)."""
    import importlib
    from pathlib import Path

    import interplab

    tooling = {"notebooks", "gallery", "starters", "cli"}
    public = set(interplab.__all__) - {"__version__", "explore"}
    assert not public & tooling and not set(dir(interplab)) & tooling
    package = Path(interplab.__file__).parent
    on_disk = {p.stem for p in package.glob("*.py") if not p.stem.startswith("_")} | {
        p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert public | tooling == on_disk
    for name in tooling:  # still reachable: a notebook's setup cell calls interplab.notebooks
        assert getattr(interplab, name) is importlib.import_module(f"interplab.{name}")
