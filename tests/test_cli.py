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
