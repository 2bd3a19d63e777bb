"""Lazy re-exports for a package's ``__init__`` (PEP 562), so importing the package stays fast."""
from __future__ import annotations

import importlib
import sys


def exports(package: str, homes: dict[str, str]):
    """(``__getattr__``, ``__dir__``) for ``package``: a public name is read from its submodule ``homes[name]``
    on first access (importing only that submodule), then kept in the package's namespace."""

    def __getattr__(name: str):
        if name in homes:
            value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(homes)

    return __getattr__, __dir__
