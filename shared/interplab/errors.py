"""The kit's one error family: every exception ``interplab`` raises on purpose derives from ``InterplabError``.

``except interplab.errors.InterplabError`` catches any of them (a notebook or starter can tell the kit's
one-line, fix-naming errors from a bug). Each subclass also keeps the built-in base it always had
(``ValueError``, ``KeyError``, ``RuntimeError`` ...), so existing ``except ValueError`` code still works.
"""
from __future__ import annotations


class InterplabError(Exception):
    """Base of every error the kit raises on purpose; its message says what to do."""
