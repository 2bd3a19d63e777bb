"""The errors interplab.lm raises: each message is one line that says what to do."""
from __future__ import annotations

import re

from ..errors import InterplabError


class LMError(InterplabError, RuntimeError):
    """Base class: something went wrong getting responses out of a model."""


class MissingKeyError(LMError):
    """No API key was found in the environment or a .env file."""


class KeyRejectedError(LMError):
    """The server answered 401/403: the key is wrong, revoked or lacks access."""


class ScoringNotSupportedError(LMError):
    """The backend cannot give log-probs of arbitrary continuations (e.g. a chat endpoint)."""


class SpendingCapError(LMError):
    """The next request would pass the spending cap; nothing beyond the cap was sent.

    ``results`` holds what the batch got before stopping (None where not done); all of it is cached.
    """

    def __init__(self, message: str, results: list | None = None):
        super().__init__(message)
        self.results = results


class BatchError(LMError):
    """Some prompts of a batch failed after every retry; ``results`` has None in their places."""

    def __init__(self, message: str, results: list | None = None, errors: dict | None = None):
        super().__init__(message)
        self.results = results
        self.errors = errors or {}


_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{3,}|Bearer\s+\S+)")


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every secret (and anything shaped like an OpenAI key) replaced by '***'."""
    text = str(text)
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return _KEYLIKE.sub("***", text)
