"""The spending cap: stop a batch BEFORE it passes a token or dollar limit.

Before each API request the client reserves an upper bound of what it can cost (every prompt
byte counted as a token, plus ``max_tokens``); after the answer it books what the server says was
used. A request whose upper bound would pass the cap is not sent, so the cap is never passed, even
with many requests in flight. Local models (hf:, toy:) are free and not counted.

Prices are US dollars per million tokens (input, output), from OpenAI's price page (2025); set
``PRICES["my-model"] = (in, out)`` for any other model, e.g. a hosted vLLM.
"""
from __future__ import annotations

import os
import threading

from .errors import SpendingCapError

PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o4-mini": (1.10, 4.40),
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-3.5-turbo-instruct": (1.50, 2.00),
    "davinci-002": (2.00, 2.00),
    "babbage-002": (0.40, 0.40),
}


def price_of(model: str) -> tuple[float, float] | None:
    """(input, output) dollars per million tokens, or None when unknown (dated snapshots match their base)."""
    if model in PRICES:
        return PRICES[model]
    for name in sorted(PRICES, key=len, reverse=True):
        if model.startswith(name + "-"):
            return PRICES[name]
    return None


class Budget:
    """A running total of API tokens and dollars with an optional cap on either.

    ``Budget(tokens=100_000)`` or ``Budget(dollars=2.0)``; ``used_tokens`` / ``used_dollars`` say
    what has been spent. Shared by all threads of a batch (and by successive calls, if you pass
    the same object, or use the session default set with ``interplab.lm.set_budget``).
    """

    def __init__(self, tokens: int | None = None, dollars: float | None = None):
        self.max_tokens = tokens
        self.max_dollars = dollars
        self.used_tokens = 0
        self.used_dollars = 0.0
        self._reserved_tokens = 0
        self._reserved_dollars = 0.0
        self._cond = threading.Condition()

    @property
    def limited(self) -> bool:
        return self.max_tokens is not None or self.max_dollars is not None

    def summary(self) -> str:
        used = f"{self.used_tokens:,} tokens"
        if self.used_dollars or self.max_dollars is not None:
            used += f" (${self.used_dollars:.4f})"
        caps = []
        if self.max_tokens is not None:
            caps.append(f"{self.max_tokens:,} tokens")
        if self.max_dollars is not None:
            caps.append(f"${self.max_dollars:.4f}")
        return used + (" of the cap of " + " / ".join(caps) if caps else "")

    def cap_message(self, need: str) -> str:
        """The one-line message of a stopped batch: what was used, and what the next request needed."""
        return (f"spending cap reached: used {self.summary()}; stopped before a request that could cost up to "
                f"{need} (raise it with interplab.lm.set_budget(...) or budget=...; what was done is cached)")

    def _cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = price_of(model)
        if price is None:
            return 0.0
        return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6

    def check_model(self, model: str) -> None:
        if self.max_dollars is not None and price_of(model) is None:
            raise SpendingCapError(
                f"a dollar cap is set but no price is known for {model!r}: set "
                f"interplab.lm.PRICES[{model!r}] = (input, output) dollars per million tokens, or cap tokens instead"
            )

    def reserve(self, model: str, prompt_bound: int, completion_bound: int) -> tuple[int, float]:
        """Reserve an upper bound for one request, or raise SpendingCapError if it could pass the cap.

        While other requests are in flight, a request that does not fit waits for them to settle
        (their real cost is usually far below their bound); it is refused only when it could pass the
        cap on its own, with nothing else outstanding.
        """
        tokens = prompt_bound + completion_bound
        dollars = self._cost(model, prompt_bound, completion_bound)
        with self._cond:
            while True:
                over_t = self.max_tokens is not None and self.used_tokens + self._reserved_tokens + tokens > self.max_tokens
                over_d = (self.max_dollars is not None
                          and self.used_dollars + self._reserved_dollars + dollars > self.max_dollars)
                if not (over_t or over_d):
                    break
                if self._reserved_tokens > 0 or self._reserved_dollars > 0:
                    self._cond.wait(timeout=1.0)
                    continue
                need = f"{tokens:,} tokens" + (f" / ${dollars:.4f}" if self.max_dollars is not None else "")
                err = SpendingCapError(self.cap_message(need))
                err.need = need
                raise err
            self._reserved_tokens += tokens
            self._reserved_dollars += dollars
        return tokens, dollars

    def settle(self, reservation: tuple[int, float], model: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Replace a reservation by what the request actually used (0, 0 if it failed)."""
        with self._cond:
            self._reserved_tokens -= reservation[0]
            self._reserved_dollars -= reservation[1]
            if self._reserved_tokens <= 0:
                self._reserved_tokens, self._reserved_dollars = 0, 0.0
            self.used_tokens += int(prompt_tokens) + int(completion_tokens)
            self.used_dollars += self._cost(model, prompt_tokens, completion_tokens)
            self._cond.notify_all()

    def __repr__(self) -> str:
        return f"Budget({self.summary()})"


def _env_number(name: str, kind):
    value = os.environ.get(name, "").strip()
    return kind(value) if value else None


_SESSION = Budget(tokens=_env_number("INTERPLAB_LM_MAX_TOKENS", int),
                  dollars=_env_number("INTERPLAB_LM_MAX_DOLLARS", float))


def session_budget() -> Budget:
    """The default budget every call shares (INTERPLAB_LM_MAX_TOKENS / INTERPLAB_LM_MAX_DOLLARS set its cap)."""
    return _SESSION


def set_budget(tokens: int | None = None, dollars: float | None = None) -> Budget:
    """Set the session's spending cap (tokens and/or dollars); what was used so far is kept."""
    _SESSION.max_tokens = tokens
    _SESSION.max_dollars = dollars
    return _SESSION
