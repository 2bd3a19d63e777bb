"""generate / score / first_token_logprobs over any backend, through the cache and the spending cap."""
from __future__ import annotations

import math
import threading
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from . import backends as _b
from .budget import Budget, session_budget
from .cache import ResponseCache, default_cache, request_key
from .errors import BatchError, LMError, SpendingCapError

DEFAULT_MAX_TOKENS = 64


class Completion(str):
    """A generated text (it *is* a ``str``) that also carries what the backend said about it.

    ``.text`` the text; ``.tokens`` / ``.logprobs`` / ``.top_logprobs`` per generated token when asked
    for with ``logprobs=k`` (local backends always give ``.tokens`` and ``.logprobs``);
    ``.finish_reason``; ``.usage`` (prompt and completion tokens); ``.cached`` (True if replayed
    from the cache); ``.model``; ``.raw`` the server's JSON answer (API backends).
    """

    def __new__(cls, text: str, **meta):
        obj = super().__new__(cls, text)
        obj.tokens = meta.get("tokens")
        obj.logprobs = meta.get("logprobs")
        obj.top_logprobs = meta.get("top_logprobs")
        obj.finish_reason = meta.get("finish_reason")
        obj.usage = meta.get("usage") or {}
        obj.cached = bool(meta.get("cached"))
        obj.model = meta.get("model")
        obj.raw = meta.get("raw")
        return obj

    @property
    def text(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"Completion({str(self)!r}, model={self.model!r}, cached={self.cached})"

    def __reduce__(self):
        return (_rebuild, (str(self), {k: getattr(self, k) for k in (
            "tokens", "logprobs", "top_logprobs", "finish_reason", "usage", "cached", "model", "raw")}))

    def openai_logprobs(self):
        """The token log-probs as an ``openai`` ``ChoiceLogprobs`` (what ``eli5.explain_prediction`` takes)."""
        from openai.types.chat.chat_completion import ChoiceLogprobs

        if self.tokens is None or self.logprobs is None:
            raise LMError("this completion has no token log-probs: generate it with logprobs=5 (or any k)")
        content = []
        for i, (tok, lp) in enumerate(zip(self.tokens, self.logprobs)):
            tops = (self.top_logprobs or [None] * len(self.tokens))[i] or {}
            content.append({"token": tok, "logprob": lp, "bytes": list(tok.encode("utf-8")),
                            "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode("utf-8"))}
                                             for t, v in tops.items()]})
        return ChoiceLogprobs.model_validate({"content": content})

    def highlight(self, title: str | None = None):
        """An HTML view of the generated tokens coloured by probability (renders offline)."""
        from .render import highlight_tokens

        if self.tokens is None or self.logprobs is None:
            raise LMError("this completion has no token log-probs: generate it with logprobs=5 (or any k)")
        return highlight_tokens(self.tokens, self.logprobs, self.top_logprobs, title=title or self.model)


def _rebuild(text, meta):
    return Completion(text, **meta)


# ------------------------------------------------------------------------------------------- backends
_BACKENDS: dict[tuple, object] = {}
_BACKENDS_LOCK = threading.Lock()


def get_backend(model, *, base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0):
    """The backend for a model string (``openai:``, ``hf:``/HF id/folder, ``toy:``) or a ``(model, tokenizer)`` pair.

    Backends are kept per process, so a local model is loaded once.
    """
    if isinstance(model, (_b.OpenAIBackend, _b.LocalBackend)):
        return model
    from ..models import require_causal, resolve

    if isinstance(model, tuple) and len(model) == 2:
        m, tok = resolve(model, kind="causal")
        return _b.LocalBackend(model=m, tokenizer=tok, kind="local")

    spec = require_causal(model, online="'hf:gpt2' or 'openai:gpt-4o-mini' online")
    key = (str(spec), base_url, api_key, timeout) if spec.backend == "openai" else (str(spec),)
    with _BACKENDS_LOCK:
        if key not in _BACKENDS:
            if spec.backend == "openai":
                _BACKENDS[key] = _b.OpenAIBackend(spec.id, base_url=base_url, api_key=api_key, timeout=timeout)
            else:
                _BACKENDS[key] = _b.LocalBackend(
                    name=f"toy:{spec.id}" if spec.backend == "toy" else spec.id, kind=spec.backend)
        return _BACKENDS[key]


def _cache_of(cache) -> ResponseCache | None:
    if cache is False or cache is None:
        return None
    if cache is True or cache == "refresh":
        return default_cache()
    if isinstance(cache, ResponseCache):
        return cache
    return ResponseCache(cache)


# ---------------------------------------------------------------------------------------------- engine
def run_calls(backend, calls: list, *, cache=True, budget: Budget | None = None, concurrency: int | None = None,
              batch_size: int = 16, progress: bool = True, max_retries: int = 6, backoff: float = 0.5,
              on_error: str = "raise", desc: str = "prompts") -> list[dict | None]:
    """Answer every call: cached answers first, then the rest (threads for APIs, batches for local models).

    Each answer is written to the cache the moment it arrives, so an interrupted or capped run loses nothing.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError("on_error must be 'raise' or 'skip'")
    for c in calls:
        backend.check(c)
    store = _cache_of(cache) if getattr(backend, "cacheable", True) else None
    refresh = cache == "refresh"
    keys = [request_key(backend.id, backend.model_id, c.kind, c.prompt, backend.key_params(c)) for c in calls]
    results: list[dict | None] = [None] * len(calls)
    if store is not None and not refresh:
        found = store.get_many(keys)
        for i, k in enumerate(keys):
            if k in found:
                results[i] = dict(found[k], cached=True)
    todo: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        if results[i] is None:
            todo.setdefault(k, []).append(i)
    if not todo:
        return results
    budget = budget or session_budget()
    bar = None
    if progress and len(calls) > 1:
        tqdm = _tqdm()

        bar = tqdm(total=len(calls), initial=len(calls) - sum(map(len, todo.values())), desc=desc, leave=False)

    def store_answer(key: str, call, answer: dict) -> None:
        if store is not None:
            u = answer.get("usage") or {}
            store.put(key, backend=backend.id, model=backend.model_id, kind=call.kind,
                      request={"prompt": call.prompt, "params": backend.key_params(call)}, response=answer,
                      prompt_tokens=u.get("prompt_tokens", 0), completion_tokens=u.get("completion_tokens", 0))
        for i in todo[key]:
            results[i] = dict(answer, cached=False)
        if bar is not None:
            bar.update(len(todo[key]))

    errors: dict[int, Exception] = {}
    try:
        if backend.paid:
            if not getattr(backend, "official", True):
                pass  # self-hosted: dollars are not counted unless PRICES knows the model
            elif budget.max_dollars is not None:
                budget.check_model(backend.model_id)
            _run_threads(backend, calls, todo, store_answer, errors, budget, concurrency or backend.default_concurrency,
                         max_retries, backoff)
        else:
            items = list(todo.items())
            for start in range(0, len(items), batch_size):
                chunk = items[start:start + batch_size]
                by_kind: dict[str, list] = {}
                for key, idx in chunk:
                    by_kind.setdefault(calls[idx[0]].kind, []).append((key, idx))
                for group in by_kind.values():
                    answers = backend.run_batch([calls[idx[0]] for _, idx in group])
                    for (key, idx), answer in zip(group, answers):
                        store_answer(key, calls[idx[0]], answer)
    finally:
        if bar is not None:
            bar.close()
    cap = next((e for e in errors.values() if isinstance(e, SpendingCapError)), None)
    if cap is not None:  # the message says what was used once every request in flight has settled
        msg = budget.cap_message(cap.need) if getattr(cap, "need", None) else str(cap)
        raise SpendingCapError(msg, results=results)
    if errors:
        first = next(iter(errors.values()))
        if not isinstance(first, _Failed):
            raise first  # a missing or rejected key, a refusal, a bad request: retrying cannot help
        msg = f"{len(errors)} of {len(calls)} {desc} failed after retries (the rest are cached): {first}"
        if on_error == "skip":
            warnings.warn(msg, stacklevel=3)
            return results
        if len(calls) == 1:
            raise first
        raise BatchError(msg, results=results, errors=errors)
    return results


def _tqdm():
    """tqdm.auto's widget bar where ipywidgets is installed, the text bar otherwise (no IProgress warning)."""
    try:
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm


class _Failed(LMError):
    """A request that still failed after every retry."""


def _run_threads(backend, calls, todo, store_answer, errors, budget, concurrency, max_retries, backoff):
    stop = threading.Event()

    def work(key: str):
        call = calls[todo[key][0]]
        for attempt in range(max_retries + 1):
            if stop.is_set():
                return
            reservation = budget.reserve(backend.model_id, *backend.bounds(call))
            try:
                answer = backend.run(call)
            except _b.Retryable as exc:
                budget.settle(reservation, backend.model_id, 0, 0)
                if attempt == max_retries:
                    raise _Failed(f"{exc} (gave up after {max_retries + 1} tries)") from None
                _b.sleep(_b.backoff_delay(attempt, backoff, exc.wait))
                continue
            except BaseException:
                budget.settle(reservation, backend.model_id, 0, 0)
                raise
            u = answer.get("usage") or {}
            budget.settle(reservation, backend.model_id, u.get("prompt_tokens", 0), u.get("completion_tokens", 0))
            store_answer(key, call, answer)
            return

    keys = list(todo)
    pool = ThreadPoolExecutor(max_workers=max(1, int(concurrency)), thread_name_prefix="interplab-lm")
    pending = {}
    it = iter(keys)
    try:
        # Submit lazily (at most 2x concurrency queued) so a stop leaves the rest unsent.
        def top_up():
            for key in it:
                pending[pool.submit(work, key)] = key
                if len(pending) >= 2 * concurrency:
                    break

        top_up()
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                key = pending.pop(fut)
                exc = fut.exception()
                if exc is not None:
                    for i in todo[key]:
                        errors[i] = exc
                    if isinstance(exc, SpendingCapError) or (
                            isinstance(exc, LMError) and not isinstance(exc, _Failed)):
                        stop.set()  # the cap, a missing key or a refusal: no point sending the rest
            if not stop.is_set():
                top_up()
    except KeyboardInterrupt:
        stop.set()
        for fut in pending:
            fut.cancel()
        running = sum(1 for f in pending if f.running())
        if running:
            print(f"interrupted: waiting for {running} request(s) in flight so they are cached, not paid twice")
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _opts(kw: dict) -> tuple[dict, dict]:
    """Split keyword arguments into backend options and engine options; anything else is a TypeError."""
    backend_opts = {k: kw.pop(k) for k in ("base_url", "api_key", "timeout") if k in kw}
    engine_opts = {k: kw.pop(k) for k in ("cache", "budget", "concurrency", "batch_size", "progress", "max_retries",
                                          "backoff", "on_error") if k in kw}
    if kw:
        raise TypeError(f"unknown option(s): {', '.join(sorted(kw))}")
    return backend_opts, engine_opts


def _prompt(prompt, system: str | None):
    if isinstance(prompt, str):
        return prompt if system is None else [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    if isinstance(prompt, (list, tuple)) and all(isinstance(m, dict) and "role" in m and "content" in m for m in prompt):
        msgs = [dict(m) for m in prompt]
        return msgs if system is None else [{"role": "system", "content": system}] + msgs
    raise TypeError(f"a prompt is a string or a list of {{'role', 'content'}} messages, got {type(prompt).__name__}")


def _to_completion(answer: dict | None, model: str):
    if answer is None:
        return None
    return Completion(answer.get("text", ""), model=model, **{k: v for k, v in answer.items() if k != "text"})


# ---------------------------------------------------------------------------------------------- public
def generate_many(model, prompts, *, temperature: float = 0.0, max_tokens: int = DEFAULT_MAX_TOKENS,
                  top_p: float | None = None, stop: list[str] | str | None = None, seed: int | None = None,
                  logprobs: int | None = None, system: str | None = None, endpoint: str = "auto",
                  **options) -> list[Completion]:
    """Completions for many prompts (strings or chat message lists), in the order given.

    ``temperature``, ``max_tokens``, ``seed`` may also be lists (one value per prompt). Options:
    ``base_url``/``api_key``/``timeout`` (API), ``cache`` (True, False, "refresh" or a path),
    ``budget`` (an ``interplab.lm.Budget``), ``concurrency`` (requests in flight, API; default 16),
    ``batch_size`` (local), ``progress``, ``max_retries``, ``backoff``, ``on_error`` ("raise" or "skip").
    """
    backend_opts, engine_opts = _opts(options)
    backend = get_backend(model, **backend_opts)
    prompts = list(prompts)
    n = len(prompts)

    def per(value, name):
        if isinstance(value, (list, tuple)) and name != "stop":
            if len(value) != n:
                raise ValueError(f"{name} has {len(value)} values for {n} prompts")
            return list(value)
        return [value] * n

    temps, maxes, seeds = per(temperature, "temperature"), per(max_tokens, "max_tokens"), per(seed, "seed")
    stops = [stop] if isinstance(stop, str) else stop
    calls = []
    for p, t, m, s in zip(prompts, temps, maxes, seeds):
        if t is not None and not (0 <= float(t) <= 2):
            raise ValueError(f"temperature must be between 0 and 2, got {t}")
        if m is not None and int(m) < 1:
            raise ValueError(f"max_tokens must be at least 1, got {m}")
        calls.append(_b.Call("generate", _prompt(p, system), {
            "temperature": None if t is None else float(t), "max_tokens": None if m is None else int(m),
            "top_p": top_p, "stop": list(stops) if stops else None, "seed": s, "logprobs": logprobs,
            "endpoint": endpoint}))
    label = _label(model, backend)
    try:
        answers = run_calls(backend, calls, desc="prompts", **engine_opts)
    except (SpendingCapError, BatchError) as exc:
        exc.results = [_to_completion(a, label) for a in (exc.results or [])]  # what was done, as Completions
        raise
    return [_to_completion(a, label) for a in answers]


def generate(model, prompt, **kwargs) -> Completion:
    """One completion: ``generate("toy:attn-only-2l", "Once upon a time", max_tokens=20)``.

    ``prompt`` is a string or a list of chat messages. Same options as ``generate_many``; the answer
    is a ``Completion`` (a ``str`` with ``.tokens``, ``.logprobs``, ``.cached``...).
    """
    kwargs.setdefault("progress", False)
    return generate_many(model, [prompt], **kwargs)[0]


def score_many(model, prompts, continuations, **options) -> list[list[float]]:
    """Log-probs of continuations after each prompt: ``continuations`` is one list shared by every
    prompt, or one list per prompt. Returns one list of floats per prompt (see ``score``)."""
    endpoint = options.pop("endpoint", "auto")
    backend_opts, engine_opts = _opts(options)
    backend = get_backend(model, **backend_opts)
    prompts = list(prompts)
    if continuations and all(isinstance(c, str) for c in continuations):
        per_prompt = [list(continuations)] * len(prompts)
    else:
        per_prompt = [list(c) for c in continuations]
        if len(per_prompt) != len(prompts):
            raise ValueError(f"{len(per_prompt)} lists of continuations for {len(prompts)} prompts")
    calls, shape = [], []
    for p, conts in zip(prompts, per_prompt):
        if not isinstance(p, str):
            raise TypeError("score() needs text prompts")
        if not conts:
            raise ValueError(f"no continuations to score after {p!r}")
        for c in conts:
            if not isinstance(c, str) or not c:
                raise ValueError(f"each continuation must be a non-empty string, got {c!r}")
            calls.append(_b.Call("score", p, {"continuation": c, "endpoint": endpoint}))
        shape.append(len(conts))
    def nest(answers):
        flat = [None if a is None else float(a["logprob"]) for a in answers]
        out, i = [], 0
        for n in shape:
            out.append(flat[i:i + n])
            i += n
        return out

    try:
        answers = run_calls(backend, calls, desc="scores", **engine_opts)
    except (SpendingCapError, BatchError) as exc:
        exc.results = nest(exc.results or [None] * len(calls))
        raise
    return nest(answers)


def score(model, prompt: str, continuations, **options) -> list[float]:
    """Sum log-prob (natural log) of each continuation's tokens after ``prompt``.

    ``score("hf:gpt2", "The capital of France is", [" Paris", " London"])`` -> two floats; higher is
    more likely. Continuations usually start with a space. Works on local models (exact) and on
    API models served by a completions endpoint that echoes prompt log-probs (vLLM,
    ``openai:davinci-002``); a chat-only model raises ``ScoringNotSupportedError`` naming those.
    """
    if isinstance(continuations, str):
        continuations = [continuations]
    options.setdefault("progress", False)
    return score_many(model, [prompt], [list(continuations)], **options)[0]


def first_token_logprobs(model, prompt, candidates, *, top_k: int = 20, missing: float = float("-inf"),
                         endpoint: str = "auto", **options) -> dict[str, float]:
    """Log-prob of each candidate answer's FIRST token as the next token after ``prompt``.

    The cheap multiple-choice score: ``first_token_logprobs(m, "Answer A or B:", ["A", "B"])``.
    On local models it is exact (the candidate's first token under the model). On API models
    (chat or completions endpoints) it is an approximation from the server's ``top_k`` most likely
    next tokens (OpenAI returns at most 20): a candidate matches the tokens that equal it after
    stripping spaces (their probabilities are added, so "Yes" and " Yes" both count); a candidate
    absent from the top ``top_k`` gets ``missing`` (default -inf). ``prompt`` may be chat messages.
    """
    backend_opts, engine_opts = _opts(options)
    engine_opts.setdefault("progress", False)
    backend = get_backend(model, **backend_opts)
    candidates = list(candidates)
    if not candidates or not all(isinstance(c, str) and c.strip() for c in candidates):
        raise ValueError("candidates must be non-empty strings")
    call = _b.Call("first_token", _prompt(prompt, None), {"candidates": candidates, "top_k": top_k,
                                                          "endpoint": endpoint})
    answer = run_calls(backend, [call], **engine_opts)[0]
    if "candidates" in answer:
        return {c: answer["candidates"][c] for c in candidates}
    top = answer["top_logprobs"]
    out = {}
    for c in candidates:
        matches = [v for t, v in top.items() if t.strip() == c.strip()]
        out[c] = math.log(sum(math.exp(v) for v in matches)) if matches else missing
    return out


def _label(model, backend) -> str:
    if isinstance(model, str):
        return model
    return f"{backend.id}:{backend.model_id}" if backend.model_id else "local model"
