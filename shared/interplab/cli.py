"""The ``interplab`` command line.

Each subcommand lives in the module it belongs to and is imported only when used, so
``interplab --help`` is instant. A module adds a command by one line in ``COMMANDS``:
``name: ("module", "function", "one-line help")``; the function takes the remaining argv
(a list of strings) and returns an exit code.

Repository tooling behind the ``interplab`` command, not one of the kit's public modules (``interplab.__all__``).
"""
from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str, str]] = {
    "datasets": ("interplab.data", "cli", "list the kit's datasets, show one's schema and card, or download it from the hub"),
    "gallery": ("interplab.gallery", "cli", "execute every notebook headless and write build/gallery/index.html"),
    "new": ("interplab.starters", "cli", "copy a starter into a new team folder (interplab new --list)"),
    "notebooks": ("interplab.notebooks", "cli", "list the kit's notebooks, or check/sync their setup cells and badges"),
    "toy": ("interplab.toy.zoo", "cli", "build (train on CPU and cache) or list the 12 toy transformers"),
    "run-csv": ("interplab.lm.csvrun", "cli", "fill the Output column of a CSV of prompts with a model's answers"),
}


def _usage() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = ["usage: interplab COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, _, help_) in sorted(COMMANDS.items())]
    lines += ["", "Run 'interplab COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"interplab {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"interplab: unknown command {name!r}; commands: {', '.join(sorted(COMMANDS))}", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[name]
    try:
        return int(getattr(importlib.import_module(module), func)(rest) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
