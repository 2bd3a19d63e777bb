"""One client for every language model: generate text, score continuations, with a cache and a cap.

Models are named by one string (``interplab.models.parse_model_name``)::

    from interplab import lm
    lm.generate("smollm2", "The capital of France is", max_tokens=8)          # the embedded real LM, offline
    lm.generate("smollm2", [{"role": "user", "content": "Hi"}])                # chat: the tokenizer's template
    lm.generate("hf:gpt2", "The capital of France is")                          # any local transformers model
    lm.generate("openai:gpt-4o-mini", [{"role": "user", "content": "Hi"}])      # OpenAI (OPENAI_API_KEY)
    lm.generate("openai:meta-llama/Llama-3.1-8B", "Hi", base_url="http://gpu-box:8000/v1")  # vLLM, Ollama...
    lm.score("smollm2", "The capital of France is", [" Paris", " London"])     # sum log-probs (evals' scorer)
    lm.generate_many(model, prompts, temperature=0.7)                            # threads/batches + progress bar

* Every answer goes into one SQLite cache (``cache.py``): a re-run costs nothing and works offline.
* ``Budget`` / ``set_budget`` cap spending in tokens or dollars; a batch stops BEFORE passing the cap.
* 429s, 5xx, timeouts and malformed answers are retried with exponential backoff.
* API keys come from the environment or a ``.env`` file and are never stored, logged or shown.
* ``loopback.LoopbackServer(model="smollm2")`` serves a local model through an OpenAI-compatible server
  on 127.0.0.1: a stand-in for an API (offline demos, starters, tests); ``LoopbackServer()`` is the protocol toy.
* ``compare_scores`` / ``repeat_probe`` / ``induction_gaps`` compare models on the same text, whatever their tokenizers.
* ``interplab run-csv prompts.csv --model ... -o results.csv`` fills a spreadsheet's Output column.
"""
from __future__ import annotations

from .budget import PRICES, Budget, price_of, session_budget, set_budget
from .cache import ResponseCache, default_cache
from .multimodel import RepeatProbe, compare_scores, induction_gaps, repeat_probe
from .core import (Completion, first_token_logprobs, generate, generate_many, get_backend, score, score_many)
from .errors import (BatchError, KeyRejectedError, LMError, MissingKeyError, ScoringNotSupportedError,
                     SpendingCapError)


def highlight(completion, title: str | None = None):
    """HTML view of a completion's tokens coloured by probability (generate it with ``logprobs=5``)."""
    return completion.highlight(title)


_LAZY = ("sentiment", "loopback", "csvrun", "render", "backends", "cache", "budget")


def __getattr__(name: str):
    """Submodules that pull in heavy or rarely needed code load on first use (``lm.sentiment``, ``lm.loopback``)."""
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "generate", "generate_many", "score", "score_many", "first_token_logprobs", "highlight", "Completion",
    "compare_scores", "repeat_probe", "RepeatProbe", "induction_gaps",
    "Budget", "set_budget", "session_budget", "PRICES", "price_of", "ResponseCache", "default_cache",
    "get_backend", "LMError", "MissingKeyError", "KeyRejectedError", "ScoringNotSupportedError",
    "SpendingCapError", "BatchError",
]
