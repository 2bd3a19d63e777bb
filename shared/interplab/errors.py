"""The kit's one error family: every exception ``interplab`` raises on purpose derives from ``InterplabError``.

``except interplab.errors.InterplabError`` catches any of them (a notebook or starter can tell the kit's
one-line, fix-naming errors from a bug). Each subclass also keeps the built-in base it always had
(``ValueError``, ``KeyError``, ``RuntimeError`` ...), so existing ``except ValueError`` code still works.
"""
from __future__ import annotations


class InterplabError(Exception):
    """Base of every error the kit raises on purpose; its message says what to do."""


class EmptyTextError(InterplabError, ValueError):
    """A text with no words where the tool needs at least one (attention, the explorer, explanations)."""


class NoTermsError(InterplabError, ValueError):
    """Counting terms left none: the texts are empty or only stop words (``interplab.text``)."""


class TooFewTermsError(InterplabError, ValueError):
    """More topics were asked for than the texts have distinct terms; ``n_terms`` is how many they have."""

    def __init__(self, message: str, n_terms: int):
        super().__init__(message)
        self.n_terms = n_terms
