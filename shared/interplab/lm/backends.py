"""Backends: where a model string's requests go.

* ``OpenAIBackend`` -- the official ``openai`` SDK against OpenAI or any OpenAI-compatible server
  (vLLM, Ollama, llama.cpp server, ``interplab.lm.loopback``): ``openai:MODEL`` with ``base_url=``
  or ``OPENAI_BASE_URL``. One request per prompt, many in flight (threads), retried with backoff.
* ``LocalBackend`` -- a causal LM in this process: ``"smollm2"`` (embedded), ``hf:ID`` / a Hugging
  Face id or folder (``transformers``), or ``toy:NAME`` (the kit's toy transformers); all come from
  ``interplab.models.load_causal_lm``. Prompts run in batches through one sampling loop; scores go
  through ``interplab.evals.scoring`` (one boundary rule for ``lm.score`` and ``evals``).

Every backend answers three kinds of request: ``generate`` (a completion), ``score`` (sum log-prob
of a continuation after a prompt) and ``first_token`` (log-probs of the next token).
"""
from __future__ import annotations

import json
import math
import os
import random
import time
import zlib
from urllib.parse import urlparse

from .errors import KeyRejectedError, LMError, MissingKeyError, ScoringNotSupportedError, redact

OPENAI_URL = "https://api.openai.com/v1"
# OpenAI models served by /v1/completions; only these two still return log-probs of an echoed prompt.
COMPLETION_MODELS = {"davinci-002", "babbage-002", "gpt-3.5-turbo-instruct"}
ECHO_MODELS = {"davinci-002", "babbage-002"}
SCORING_HELP = ("use a completions model that echoes prompt log-probs (openai:davinci-002, openai:babbage-002, or "
                "any model on a vLLM server via base_url=...), a local model ('hf:gpt2', 'toy:attn-only-2l'), "
                "or lm.first_token_logprobs(...) for a first-token approximation")


class Call:
    """One request: ``kind`` is "generate", "score" or "first_token"; ``params`` are its options."""

    __slots__ = ("kind", "prompt", "params")

    def __init__(self, kind: str, prompt, params: dict):
        self.kind, self.prompt, self.params = kind, prompt, params


class Retryable(Exception):
    """A transient failure (429, 5xx, timeout, malformed answer): try again after ``wait`` seconds."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


# --------------------------------------------------------------------------------------------- OpenAI
def _find_key(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    if not os.environ.get("OPENAI_API_KEY"):
        from dotenv import find_dotenv

        from .. import config

        found = find_dotenv(usecwd=True)
        if found:
            config.load_dotenv(found)
    return os.environ.get("OPENAI_API_KEY") or None


class OpenAIBackend:
    """``openai:MODEL`` through the official SDK; ``base_url`` points it at any compatible server."""

    paid = True
    default_concurrency = 16

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0):
        self.model_id = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        self.official = urlparse(self.base_url).hostname == "api.openai.com"
        self.id = "openai" if self.official else f"openai@{urlparse(self.base_url).netloc}{urlparse(self.base_url).path}"
        self.timeout = timeout
        self._explicit_key = api_key
        self._client = None
        self._key = None

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend(model={self.model_id!r}, base_url={self.base_url!r})"

    # -- client and errors
    def client(self):
        """The SDK client, rebuilt when the key changes (a key fixed in .env or the environment is picked up)."""
        key = _find_key(self._explicit_key)
        if key is None:
            if self.official:
                raise MissingKeyError(
                    "no OpenAI API key: put OPENAI_API_KEY=<your key> in a .env file in this folder or "
                    "export OPENAI_API_KEY in your shell (or pass api_key=...); for a local server pass base_url=...")
            key = "not-needed"  # local servers (vLLM, Ollama, llama.cpp) usually ignore it
        if self._client is None or key != self._key:
            import openai

            self._key = key
            self._client = openai.OpenAI(api_key=key, base_url=self.base_url, max_retries=0, timeout=self.timeout)
        return self._client

    def _fail(self, exc: Exception, what: str):
        """Turn an SDK exception into Retryable or a one-line LMError (never containing the key)."""
        import openai

        where = "OpenAI" if self.official else f"the server at {self.base_url}"
        msg = redact(getattr(exc, "message", None) or str(exc), self._key, self._explicit_key)
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return KeyRejectedError(
                f"{where} rejected the API key ({exc.status_code}): set a valid OPENAI_API_KEY in your environment "
                f"or .env file (or pass api_key=...)")
        if isinstance(exc, openai.RateLimitError) or (
                isinstance(exc, openai.APIStatusError) and exc.status_code >= 500):
            wait = None
            try:
                wait = float(exc.response.headers.get("retry-after"))
            except (TypeError, ValueError, AttributeError):
                pass
            return Retryable(f"{where} answered {exc.status_code} to {what}: {msg}", wait)
        if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
            return Retryable(f"{where} did not answer {what} ({type(exc).__name__})")
        if isinstance(exc, (openai.APIResponseValidationError, json.JSONDecodeError, KeyError, IndexError,
                            TypeError, AttributeError, ValueError)) and not isinstance(exc, openai.APIStatusError):
            return Retryable(f"{where} sent a malformed answer to {what} ({type(exc).__name__})")
        if isinstance(exc, openai.NotFoundError):
            return LMError(f"{where} has no model {self.model_id!r} for {what} (404): {msg}")
        if isinstance(exc, openai.APIStatusError):
            return LMError(f"{where} refused {what} ({exc.status_code}): {msg}")
        return LMError(f"{what} failed: {type(exc).__name__}: {msg}")

    def _request(self, what: str, fn):
        try:
            return fn(self.client())
        except LMError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to Retryable or LMError
            raise self._fail(exc, what) from None

    # -- what a request may cost (upper bound) and what it did cost
    def bounds(self, call: Call) -> tuple[int, int]:
        prompt = call.prompt if isinstance(call.prompt, str) else json.dumps(call.prompt)
        extra = call.params.get("continuation", "")
        completion = 1 if call.kind != "generate" else int(call.params.get("max_tokens") or 16)
        return len((prompt + extra).encode("utf-8")) + 8, completion

    def endpoint(self, call: Call) -> str:
        ep = call.params.get("endpoint", "auto")
        if ep in ("chat", "completions"):
            return ep
        if ep != "auto":
            raise ValueError(f"endpoint must be 'auto', 'chat' or 'completions', got {ep!r}")
        if not isinstance(call.prompt, str):
            return "chat"
        return "completions" if self.model_id in COMPLETION_MODELS else "chat"

    def key_params(self, call: Call) -> dict:
        params = {k: v for k, v in call.params.items() if v is not None}
        if call.kind == "generate":
            params["endpoint"] = self.endpoint(call)
        elif call.kind == "first_token":
            params.pop("candidates", None)  # the answer (top-k log-probs) does not depend on them
            params["endpoint"] = self.endpoint(call)
        return params

    def check(self, call: Call) -> None:
        """Refuse early what this backend can never do."""
        if call.kind == "score":
            if not isinstance(call.prompt, str):
                raise ScoringNotSupportedError("score() needs a text prompt, not chat messages: " + SCORING_HELP)
            if call.params.get("endpoint") == "chat" or (self.official and self.model_id not in ECHO_MODELS):
                raise ScoringNotSupportedError(
                    f"openai:{self.model_id} is served through a chat endpoint, which cannot give log-probs of "
                    f"arbitrary continuations; {SCORING_HELP}")

    # -- the three kinds
    def run(self, call: Call) -> dict:
        if call.kind == "generate":
            return self._generate(call)
        if call.kind == "score":
            return self._score(call)
        return self._first_token(call)

    def _chat_args(self, call: Call) -> dict:
        p = call.params
        messages = [{"role": "user", "content": call.prompt}] if isinstance(call.prompt, str) else list(call.prompt)
        args = {"model": self.model_id, "messages": messages}
        if p.get("max_tokens") is not None:
            args["max_completion_tokens" if self.official else "max_tokens"] = int(p["max_tokens"])
        for name in ("temperature", "top_p", "stop", "seed"):
            if p.get(name) is not None:
                args[name] = p[name]
        return args

    def _generate(self, call: Call) -> dict:
        p = call.params
        k = p.get("logprobs")
        if self.endpoint(call) == "chat":
            args = self._chat_args(call)
            if k is not None:
                args.update(logprobs=True, top_logprobs=int(k))
            resp = self._request("a chat completion", lambda c: c.chat.completions.create(**args))
            try:
                raw = resp.model_dump(exclude_none=True)
                choice = resp.choices[0]
                text = choice.message.content or ""
                tokens = lps = tops = None
                if k is not None and choice.logprobs is not None and choice.logprobs.content is not None:
                    content = choice.logprobs.content
                    tokens = [t.token for t in content]
                    lps = [float(t.logprob) for t in content]
                    tops = [{a.token: float(a.logprob) for a in (t.top_logprobs or [])} for t in content]
                return {"text": text, "tokens": tokens, "logprobs": lps, "top_logprobs": tops,
                        "finish_reason": choice.finish_reason, "usage": _usage(resp), "raw": raw}
            except Exception as exc:  # noqa: BLE001
                raise self._fail(exc, "a chat completion") from None
        if not isinstance(call.prompt, str):
            raise ValueError("the completions endpoint takes a text prompt, not chat messages")
        args = {"model": self.model_id, "prompt": call.prompt, "max_tokens": int(p.get("max_tokens") or 16)}
        for name in ("temperature", "top_p", "stop", "seed"):
            if p.get(name) is not None:
                args[name] = p[name]
        if k is not None:
            args["logprobs"] = int(k)
        resp = self._request("a completion", lambda c: c.completions.create(**args))
        try:
            choice = resp.choices[0]
            tokens = lps = tops = None
            if k is not None and choice.logprobs is not None and choice.logprobs.tokens is not None:
                tokens = list(choice.logprobs.tokens)
                lps = [float(x) for x in choice.logprobs.token_logprobs]
                tops = [dict(d or {}) for d in (choice.logprobs.top_logprobs or [None] * len(tokens))]
            return {"text": choice.text or "", "tokens": tokens, "logprobs": lps, "top_logprobs": tops,
                    "finish_reason": choice.finish_reason, "usage": _usage(resp),
                    "raw": resp.model_dump(exclude_none=True)}
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, "a completion") from None

    def _score(self, call: Call) -> dict:
        import openai

        prompt, cont = call.prompt, call.params["continuation"]
        full = prompt + cont
        try:
            resp = self.client().completions.create(
                model=self.model_id, prompt=full, max_tokens=1, temperature=0, echo=True, logprobs=1)
        except (openai.NotFoundError, openai.BadRequestError) as exc:
            if isinstance(exc, openai.NotFoundError) and "model" in str(exc).lower() and "chat" not in str(exc).lower():
                raise self._fail(exc, "a scoring request") from None
            raise ScoringNotSupportedError(
                f"the server at {self.base_url} refused a completions request with echo and logprobs for "
                f"{self.model_id!r} ({exc.status_code}), so it cannot score continuations; {SCORING_HELP}") from None
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, "a scoring request") from None
        try:
            lp = resp.choices[0].logprobs
            tokens, values = list(lp.tokens), list(lp.token_logprobs)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, "a scoring request") from None
        # An echoed answer starts with the prompt's own tokens, one log-prob each.
        pos, n_prompt = 0, None
        for i, tok in enumerate(tokens):
            if pos >= len(full):
                n_prompt = i
                break
            pos += len(tok)
        else:
            n_prompt = len(tokens) if pos >= len(full) else None
        echoed = "".join(tokens[:n_prompt]) if n_prompt is not None else ""
        usage = _usage(resp)
        if n_prompt is None or echoed != full or (usage["prompt_tokens"] and usage["prompt_tokens"] != n_prompt):
            raise ScoringNotSupportedError(
                f"the server at {self.base_url} ignored echo=True for {self.model_id!r} (no log-prob for each prompt "
                f"token), so it cannot score continuations; {SCORING_HELP}")
        total, picked, start = 0.0, [], 0
        for tok, value in zip(tokens[:n_prompt], values[:n_prompt]):
            end = start + len(tok)
            if end > len(prompt):  # the token covers continuation text
                if value is None:
                    raise ScoringNotSupportedError(
                        f"the server gave no log-prob for the first token of {full!r}; give a non-empty prompt")
                total += float(value)
                picked.append(tok)
            start = end
        return {"logprob": total, "tokens": picked, "usage": usage}

    def _first_token(self, call: Call) -> dict:
        k = int(call.params.get("top_k") or 20)
        if self.endpoint(call) == "chat":
            args = self._chat_args(Call("generate", call.prompt, {"max_tokens": 1, "temperature": 0}))
            args.update(logprobs=True, top_logprobs=k)
            resp = self._request("a first-token request", lambda c: c.chat.completions.create(**args))
            try:
                content = resp.choices[0].logprobs.content
                top = {a.token: float(a.logprob) for a in (content[0].top_logprobs or [])}
                top.setdefault(content[0].token, float(content[0].logprob))
            except Exception as exc:  # noqa: BLE001
                raise self._fail(exc, "a first-token request") from None
        else:
            resp = self._request("a first-token request", lambda c: c.completions.create(
                model=self.model_id, prompt=call.prompt, max_tokens=1, temperature=0, logprobs=k))
            try:
                top = {t: float(v) for t, v in (resp.choices[0].logprobs.top_logprobs[0] or {}).items()}
            except Exception as exc:  # noqa: BLE001
                raise self._fail(exc, "a first-token request") from None
        return {"top_logprobs": top, "usage": _usage(resp)}


def _usage(resp) -> dict:
    u = getattr(resp, "usage", None)
    return {"prompt_tokens": int(getattr(u, "prompt_tokens", 0) or 0),
            "completion_tokens": int(getattr(u, "completion_tokens", 0) or 0)}


# ---------------------------------------------------------------------------------------------- local
class LocalBackend:
    """A causal LM in this process (``hf:`` / ``toy:`` names, or a ``(model, tokenizer)`` pair)."""

    paid = False
    default_concurrency = 1

    def __init__(self, name: str | None = None, model=None, tokenizer=None, kind: str = "hf"):
        from ..models import kit_name

        self.name = name
        self.id = kind
        self._model, self._tok = model, tokenizer
        label = kit_name(model) if model is not None else None
        self.model_id = name.split(":", 1)[1] if name and ":" in name and kind == "toy" else (name or label)

    def __repr__(self) -> str:
        return f"LocalBackend({self.id}:{self.model_id})"

    @property
    def cacheable(self) -> bool:
        return self.model_id is not None

    def load(self):
        if self._model is None:
            from ..models import resolve

            self._model, self._tok = resolve(self.name, kind="causal")
            if hasattr(self._model, "eval"):
                self._model.eval()
        return self._model, self._tok

    def bounds(self, call: Call) -> tuple[int, int]:
        return 0, 0

    def key_params(self, call: Call) -> dict:
        params = {k: v for k, v in call.params.items() if v is not None}
        params.pop("endpoint", None)
        params.pop("top_k", None)
        return params

    def check(self, call: Call) -> None:
        if call.kind == "score" and not isinstance(call.prompt, str):
            raise ScoringNotSupportedError("score() needs a text prompt, not chat messages")

    # -- tokenizer helpers (HF tokenizers and the kit's toy tokenizers)
    def _encode(self, text: str) -> list[int]:
        """Token ids of ``text`` alone (no special tokens): a candidate answer's tokens."""
        tok = self._tok
        try:
            ids = tok(text, add_special_tokens=False)["input_ids"]
        except TypeError:
            ids = tok(text)["input_ids"]
        ids = list(ids)
        bos = getattr(tok, "bos_token_id", None)
        if ids and bos is not None and ids[0] == bos:
            ids = ids[1:]
        return ids

    def _prefix(self, text) -> list[int]:
        """A prompt's ids, by the one rule the kit's scorer uses (``interplab.evals.scoring.encode``): the
        text as the tokenizer encodes a whole document (a BOS only where the tokenizer adds one), or BOS
        alone for an empty prompt. Chat messages go through the tokenizer's chat template, whose special
        tokens are its own (nothing is added in front of them)."""
        from ..evals.scoring import encode

        if not isinstance(text, str):
            ids = self._chat_ids(text)
        else:
            ids = encode(self._tok, text) if text else []
        if not ids:
            bos = getattr(self._tok, "bos_token_id", None)
            if bos is None:
                raise ValueError("cannot run an empty prompt on a model whose tokenizer has no BOS token")
            ids = [bos]
        return ids

    def _chat_ids(self, messages) -> list[int]:
        tok = self._tok
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
            return list(tok(text, add_special_tokens=False)["input_ids"])
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        from ..evals.scoring import encode

        return encode(tok, "\n".join(lines) + "\nassistant:")

    def _decode(self, ids: list[int]) -> str:
        try:
            return self._tok.decode(ids, skip_special_tokens=True)
        except TypeError:
            return self._tok.decode(ids)

    def _ctx(self) -> int | None:
        from ..sites import context_length

        return context_length(self._model)

    def _is_hf(self) -> bool:
        return hasattr(self._model, "config") and hasattr(self._model, "generate")

    def _kv_arg(self) -> str:
        # transformers 5 calls the KV cache `cache`; 4.x (Colab) calls it `past_key_values`
        import inspect

        return "cache" if "cache" in inspect.signature(self._model.forward).parameters else "past_key_values"

    def _device(self):
        try:
            return next(self._model.parameters()).device
        except (StopIteration, AttributeError):
            return "cpu"

    def _logits(self, ids, mask=None):
        if self._is_hf():
            out = self._model(input_ids=ids, attention_mask=mask)
        else:
            out = self._model(ids)
        return out.logits if hasattr(out, "logits") else (out[0] if isinstance(out, tuple) else out)

    # -- batches
    def run_batch(self, calls: list[Call]) -> list[dict]:
        import torch

        self.load()
        with torch.inference_mode():
            if calls[0].kind == "generate":
                return self._generate(calls)
            if calls[0].kind == "score":
                return self._score(calls)
            return self._first_token(calls)

    def _score(self, calls: list[Call]) -> list[dict]:
        """Through the kit's one local scorer (``interplab.evals.scoring.continuation_logprobs``), so
        ``lm.score`` and ``interplab.evals`` tokenize the prompt/continuation boundary the same way:
        ``tokenize(prompt + continuation)`` after the prompt's tokens, trailing prompt whitespace moved
        onto the continuation. Calls that share a prompt run as one item (the prompt runs once)."""
        from ..evals.scoring import continuation_logprobs

        by_prompt: dict[str, list[int]] = {}
        for i, c in enumerate(calls):
            by_prompt.setdefault(c.prompt, []).append(i)
        prompts = list(by_prompt)
        conts = [[calls[i].params["continuation"] for i in by_prompt[p]] for p in prompts]
        values = continuation_logprobs(self._model, self._tok, prompts, conts, progress=False)
        out: list[dict | None] = [None] * len(calls)
        for p, vals in zip(prompts, values):
            for i, v in zip(by_prompt[p], vals):
                out[i] = {"logprob": float(v)}
        return out  # type: ignore[return-value]

    def prompt_logprobs(self, text: str) -> tuple[list[str], list[float | None]]:
        """Each token of ``text`` (as the text piece it covers; the pieces join back to ``text``) with its
        log-prob given the tokens before it, None for the first: what a completions server's
        ``echo=True, logprobs=k`` returns (``loopback`` serves it). Needs a fast tokenizer (offsets)."""
        import torch

        from ..evals.scoring import encode

        self.load()
        try:
            enc = self._tok(text, return_offsets_mapping=True)
            offsets = [tuple(o) for o in enc["offset_mapping"]]
        except (TypeError, KeyError, NotImplementedError, ValueError):
            raise ValueError("echoing prompt log-probs needs a fast (offset-giving) tokenizer") from None
        ids = encode(self._tok, text)
        if len(ids) != len(offsets):
            raise ValueError("the tokenizer's offsets do not match its tokens")
        keep = [i for i, (a, b) in enumerate(offsets) if b > a]  # special tokens cover no text
        starts = [offsets[i][0] for i in keep]
        if keep:
            starts[0] = 0
        pieces = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
        with torch.inference_mode():
            t = torch.tensor([ids], device=self._device())
            logp = torch.log_softmax(self._logits(t, torch.ones_like(t))[0].float(), dim=-1).cpu()
        values = [None if i == 0 else float(logp[i - 1, ids[i]]) for i in keep]
        return pieces, values

    def _first_token(self, calls: list[Call]) -> list[dict]:
        import torch

        out = []
        for c in calls:
            ids = self._prefix(c.prompt)[-(self._ctx() or 10**9):]
            t = torch.tensor([ids], device=self._device())
            logp = torch.log_softmax(self._logits(t, torch.ones_like(t))[0, -1].float(), dim=-1).cpu()
            cands = {}
            for cand in c.params["candidates"]:
                toks = self._encode(cand)
                cands[cand] = float(logp[toks[0]]) if toks else float("-inf")
            top = torch.topk(logp, min(int(c.params.get("top_k") or 20), logp.numel()))
            out.append({"candidates": cands,
                        "top_logprobs": {self._decode([int(i)]): float(v) for v, i in zip(top.values, top.indices)}})
        return out

    def _generate(self, calls: list[Call]) -> list[dict]:
        # One sampling loop for every row; rows of equal prompt length share a forward pass.
        prefixes = [self._prefix(c.prompt) for c in calls]
        results: list[dict | None] = [None] * len(calls)
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(prefixes):
            groups.setdefault(len(p) if not self._is_hf() else 0, []).append(i)
        for idx in groups.values():
            for i, r in zip(idx, self._sample([prefixes[i] for i in idx], [calls[i] for i in idx])):
                results[i] = r
        return results  # type: ignore[return-value]

    def _sample(self, prefixes: list[list[int]], calls: list[Call]) -> list[dict]:
        import torch

        dev = self._device()
        n = len(prefixes)
        max_new = max(int(c.params.get("max_tokens") or 16) for c in calls)
        temps = torch.tensor([float(c.params.get("temperature") or 0.0) for c in calls])
        top_ps = [c.params.get("top_p") for c in calls]
        ks = [c.params.get("logprobs") for c in calls]
        gens = []
        for c in calls:
            g = torch.Generator().manual_seed(
                (int(c.params.get("seed") or 0) * 1_000_003 + zlib.crc32(json.dumps(c.prompt).encode())) % 2**63)
            gens.append(g)
        eos = getattr(self._tok, "eos_token_id", None)
        ctx = self._ctx()
        width = max(map(len, prefixes))
        hf = self._is_hf()
        if hf:  # left padding + attention mask + explicit positions, with the KV cache
            pad = eos if eos is not None else 0
            ids = torch.full((n, width), pad, dtype=torch.long)
            mask = torch.zeros((n, width), dtype=torch.long)
            for i, p in enumerate(prefixes):
                ids[i, width - len(p):] = torch.tensor(p)
                mask[i, width - len(p):] = 1
            ids, mask = ids.to(dev), mask.to(dev)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            out = self._model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
            last = out.logits[:, -1].float()
            past = _kv(out)
        else:
            seq = torch.tensor(prefixes, dtype=torch.long, device=dev)
            last = self._logits(seq[:, -ctx:] if ctx else seq)[:, -1].float()
        new_ids = [[] for _ in range(n)]
        new_lps = [[] for _ in range(n)]
        new_tops = [[] for _ in range(n)]
        done = [False] * n
        limits = [int(c.params.get("max_tokens") or 16) for c in calls]
        t_col = temps.clamp(min=1e-6)[:, None]
        p_col = torch.tensor([1.0 if tp is None else float(tp) for tp in top_ps])[:, None]
        greedy_rows = temps <= 0
        for step in range(max_new):
            logp = torch.log_softmax(last.detach().float(), dim=-1).cpu()
            chosen_t = torch.argmax(logp, dim=-1)
            if not bool(greedy_rows.all()):
                # inverse-CDF sampling with one uniform draw per row from that row's own generator,
                # so a (prompt, seed) gives the same text whatever batch it is in
                probs = torch.softmax(logp / t_col, dim=-1)
                sp, si = torch.sort(probs, dim=-1, descending=True)
                keep = (sp.cumsum(-1) - sp) < p_col
                sp = sp * keep
                cdf = sp.cumsum(-1)
                u = torch.stack([torch.rand(1, generator=g) for g in gens]) * cdf[:, -1:]
                pick = torch.searchsorted(cdf, u).clamp(max=cdf.shape[-1] - 1)
                sampled = si.gather(-1, pick)[:, 0]
                chosen_t = torch.where(greedy_rows, chosen_t, sampled)
            chosen = chosen_t.tolist()
            picked_lp = logp.gather(-1, chosen_t[:, None])[:, 0].tolist()
            for i in range(n):
                if done[i]:
                    chosen[i] = pad if hf else 0
                    continue
                tok = chosen[i]
                if eos is not None and tok == eos:
                    done[i] = True
                    continue
                new_ids[i].append(tok)
                new_lps[i].append(picked_lp[i])
                if ks[i]:
                    top = torch.topk(logp[i], int(ks[i]))
                    new_tops[i].append({self._decode([int(j)]): float(v) for v, j in zip(top.values, top.indices)})
                if len(new_ids[i]) >= limits[i]:
                    done[i] = True
            if all(done):
                break
            nxt = torch.tensor(chosen, dtype=torch.long, device=dev)[:, None]
            if hf:
                mask = torch.cat([mask, torch.ones_like(nxt)], dim=1)
                pos = pos[:, -1:] + 1
                out = self._model(input_ids=nxt, attention_mask=mask, position_ids=pos, use_cache=True,
                                  **{self._kv_arg(): past})
                last, past = out.logits[:, -1].float(), _kv(out)
            else:
                seq = torch.cat([seq, nxt], dim=1)
                last = self._logits(seq[:, -ctx:] if ctx else seq)[:, -1].float()
        results = []
        for i, c in enumerate(calls):
            toks = [self._decode([t]) for t in new_ids[i]]
            text = self._decode(new_ids[i])
            finish = "length" if len(new_ids[i]) >= limits[i] else "stop"
            for s in c.params.get("stop") or []:
                cut = text.find(s)
                if cut >= 0:
                    text, finish = text[:cut], "stop"
            results.append({"text": text, "tokens": toks, "logprobs": new_lps[i],
                            "top_logprobs": new_tops[i] if ks[i] else None, "finish_reason": finish,
                            "usage": {"prompt_tokens": len(prefixes[i]), "completion_tokens": len(new_ids[i])}})
        return results


def _kv(out):
    kv = getattr(out, "cache", None)
    return kv if kv is not None else getattr(out, "past_key_values", None)


def backoff_delay(attempt: int, base: float, wait: float | None, cap: float = 30.0) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): exponential with jitter, or Retry-After."""
    if wait is not None and math.isfinite(wait) and 0 <= wait <= 60:
        return wait
    return min(cap, base * (2 ** attempt)) * (0.5 + random.random() / 2)


def sleep(seconds: float) -> None:
    time.sleep(seconds)
