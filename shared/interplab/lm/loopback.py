"""A small OpenAI-compatible server on 127.0.0.1: a local stand-in for an API, for demos, tests and benchmarks.

It speaks ``GET /v1/models``, ``POST /v1/chat/completions`` (with ``logprobs``/``top_logprobs``)
and ``POST /v1/completions`` (with ``logprobs``, ``echo`` and ``max_tokens=0``), like vLLM or
OpenAI, so the official ``openai`` SDK (and R's httr) talk to it unchanged. It serves one of two models:

* ``LoopbackServer(model="smollm2")`` -- a **real** local causal LM (any name ``interplab.lm``
  takes: ``"smollm2"``, ``"hf:gpt2"``, a folder) through the kit's local backend, under that
  name: ``lm.generate("openai:smollm2", ..., base_url=srv.base_url)`` returns the same text as
  ``lm.generate("smollm2", ...)`` (chat messages go through the model's chat template). This is
  what notebooks and starters use offline: a stand-in for an API, not an API.
* ``LoopbackServer()`` -- the **protocol toy** (``loopback-chat``, ``loopback-base``,
  ``loopback-noecho``): words picked by a seeded hash of the prompt, with made-up log-probs that
  :func:`token_logprob` reproduces. Its text means nothing; it exists so tests can check the HTTP
  path, retries, caching and echo scoring exactly and fast.

On cue it misbehaves the way real servers do: ``inject("429" | "500" | "malformed" | "slow" |
"401", times=n, match="text in the prompt")`` makes the next ``n`` matching requests fail that
way (also over HTTP: ``POST /_loopback/inject``). ``stats()`` counts requests, answers per
prompt and the most requests ever in flight at once. ``latency`` delays every answer.

    with LoopbackServer(model="smollm2") as srv:
        lm.generate("openai:smollm2", "Hi", base_url=srv.base_url)

Command line: ``python -m interplab.lm.loopback --model smollm2 --port 8011`` (serves until Ctrl-C;
``--model toy`` for the protocol toy; ``--exec Rscript run.R`` runs a command against it, then stops).
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHAT_MODELS = ("loopback-chat",)
COMPLETION_MODELS = ("loopback-base",)
NOECHO_MODELS = ("loopback-noecho",)  # a completions model whose server ignores echo=True
# 20 words, so a top_logprobs=20 answer lists every word the model can say
WORDS = "the movie was good great wonderful fun bad boring awful terrible and I it really not loved hated plot .".split()
_TOKEN = re.compile(r"\s*\S+|\s+")


def tokenize(text: str) -> list[str]:
    """The loopback model's tokens: words with their leading whitespace (they join back to ``text``)."""
    return _TOKEN.findall(text)


def _h(*parts) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


def token_logprob(context: str, token: str) -> float:
    """The made-up log-prob the loopback model gives ``token`` after ``context`` (always < 0)."""
    return -0.05 - (_h("lp", context[-200:], token) % 400) / 100


class _Fault:
    def __init__(self, kind: str, times: int, match: str | None, seconds: float, retry_after: str | None):
        self.kind, self.times, self.match, self.seconds, self.retry_after = kind, times, match, seconds, retry_after


class LoopbackServer:
    """An OpenAI-compatible HTTP server in a background thread (see the module docstring)."""

    FAULTS = ("429", "500", "malformed", "slow", "401")

    def __init__(self, *, model=None, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0,
                 api_key: str | None = None):
        self.latency = latency
        self.backend, self.model_name = None, None
        if model is not None:  # a real model, loaded lazily on the first request, answered one request at a time
            from .core import get_backend

            self.backend = get_backend(model)
            self.model_name = model if isinstance(model, str) else (self.backend.model_id or "local-model")
        self._model_lock = threading.Lock()
        self.api_key = api_key
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._counter = 0
        self.reset_stats()
        self._conns: set = set()
        self._httpd = ThreadingHTTPServer((host, port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "LoopbackServer":
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            daemon=True, name="interplab-loopback")
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections (a stopped server answers nothing)."""
        import socket

        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- cues and counters
    def inject(self, kind: str, times: int = 1, *, match: str | None = None, seconds: float = 2.0,
               retry_after: str | None = "0") -> None:
        """Make the next ``times`` requests (whose prompt contains ``match``, if given) fail as ``kind``."""
        if kind not in self.FAULTS:
            raise ValueError(f"fault must be one of {self.FAULTS}, got {kind!r}")
        with self._lock:
            self._faults.append(_Fault(kind, int(times), match, float(seconds), retry_after))

    def reset_stats(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self._stats = {"requests": 0, "served": 0, "faults": Counter(), "by_endpoint": Counter(),
                           "by_prompt": Counter(), "in_flight": 0, "max_in_flight": 0, "log": []}

    def stats(self) -> dict:
        """Counters: requests, served (200 answers), faults by kind, by_endpoint, by_prompt, max_in_flight,
        and ``log``: one dict per served request (endpoint, model, prompt, temperature, max_tokens, seed)."""
        with self._lock:
            s = dict(self._stats)
            for k in ("faults", "by_endpoint", "by_prompt"):
                s[k] = dict(s[k])
            s["log"] = list(s["log"])
            return s

    def _take_fault(self, prompt_text: str) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.times > 0 and (f.match is None or f.match in prompt_text):
                    f.times -= 1
                    self._stats["faults"][f.kind] += 1
                    if f.times == 0:
                        self._faults.remove(f)
                    return f
        return None

    def _served(self, path: str, model: str, prompt: str, body: dict, n: int) -> None:
        """Count a 200 answer and log what was asked (for ``stats()``)."""
        with self._lock:
            self._stats["served"] += 1
            self._stats["by_prompt"][prompt] += 1
            if len(self._stats["log"]) < 100_000:
                self._stats["log"].append({"endpoint": path, "model": model, "prompt": prompt,
                                           "temperature": body.get("temperature"), "max_tokens": n,
                                           "seed": body.get("seed"), "echo": bool(body.get("echo"))})

    @property
    def models(self) -> tuple[str, ...]:
        """The model ids this server answers to."""
        if self.backend is not None:
            return (self.model_name,)
        return CHAT_MODELS + COMPLETION_MODELS + NOECHO_MODELS

    # -- the real model
    def _real(self, prompt, n: int, body: dict) -> dict:
        """One completion from the served model through ``interplab.lm`` (uncached: a server answers afresh)."""
        from .core import generate

        stop = body.get("stop")
        k = body.get("top_logprobs") if "messages" in body else body.get("logprobs")
        if "messages" in body and not body.get("logprobs"):
            k = None
        temperature = body.get("temperature")
        with self._model_lock:
            c = generate(self.backend, prompt, max_tokens=max(1, n), cache=False, progress=False,
                         temperature=1.0 if temperature is None else float(temperature), top_p=body.get("top_p"),
                         seed=body.get("seed"), stop=[stop] if isinstance(stop, str) else stop,
                         logprobs=None if k is None else max(1, int(k)))
        return {"text": c.text, "tokens": c.tokens or [], "logprobs": c.logprobs or [],
                "top_logprobs": c.top_logprobs, "finish_reason": c.finish_reason, "usage": c.usage, "k": k}

    # -- the toy model
    def _continue(self, prompt: str, n: int, temperature: float, seed, stop) -> tuple[list[str], str]:
        if temperature and temperature > 0:
            if seed is None:
                with self._lock:
                    self._counter += 1
                    seed = f"r{self._counter}"
            rng = random.Random(_h("gen", prompt, seed, temperature))
            width = max(1, min(len(WORDS), int(2 + temperature * 10)))
        else:
            rng, width = random.Random(_h("gen", prompt)), 1
        tokens, context = [], prompt
        start = _h("start", prompt) % len(WORDS)
        for i in range(n):
            word = WORDS[(start + i * 7 + rng.randrange(width)) % len(WORDS)]
            tok = " " + word
            tokens.append(tok)
            context += tok
        text, finish = "".join(tokens), "length"
        for s in stop or []:
            cut = text.find(s)
            if cut >= 0:
                text, finish = text[:cut], "stop"
                tokens = tokenize(text)
        return tokens, finish

    def _top(self, context: str, token: str, k: int) -> list[tuple[str, float]]:
        alts = [token] + [" " + w for w in WORDS if " " + w != token]
        alts = sorted(alts[1:], key=lambda t: _h("alt", context[-50:], t))[: max(0, k - 1)]
        return [(token, token_logprob(context, token))] + [(t, token_logprob(context, t) - 1.0) for t in alts]


def _handler(server: LoopbackServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        error_content_type = "application/json"

        def handle(self):
            import socket

            try:
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            with server._lock:
                server._conns.add(self.connection)
            try:
                super().handle()
            except (ConnectionError, OSError):
                pass
            finally:
                with server._lock:
                    server._conns.discard(self.connection)

        def log_message(self, *args):  # quiet; and never log headers (they carry keys)
            pass

        def _send(self, status: int, payload, headers: dict | None = None, raw: bytes | None = None):
            body = raw if raw is not None else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                # headers and body in one write (two small writes meet Nagle + delayed ACK: +40 ms)
                self._headers_buffer.append(b"\r\n")
                self.wfile.write(b"".join(self._headers_buffer) + body)
                self._headers_buffer = []
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _error(self, status: int, message: str, code: str | None = None, headers=None):
            self._send(status, {"error": {"message": message, "type": "invalid_request_error", "param": None,
                                          "code": code}}, headers)

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                if not self._authorized():
                    return
                return self._send(200, {"object": "list", "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "interplab-loopback"} for m in server.models]})
            if self.path.rstrip("/") == "/_loopback/stats":
                return self._send(200, server.stats())
            return self._error(404, f"no route {self.path}")

        def _authorized(self) -> bool:
            if server.api_key is None:
                return True
            got = self.headers.get("Authorization", "")
            if got == f"Bearer {server.api_key}":
                return True
            key = got.removeprefix("Bearer ").strip()
            masked = (key[:3] + "*" * 10 + key[-4:]) if len(key) > 8 else "***"
            self._error(401, f"Incorrect API key provided: {masked}. You can find your API key in your account.",
                        "invalid_api_key")
            return False

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.rstrip("/")
            if path == "/_loopback/inject":
                body = json.loads(raw or b"{}")
                server.inject(body.get("kind", "500"), int(body.get("times", 1)), match=body.get("match"),
                              seconds=float(body.get("seconds", 2.0)), retry_after=body.get("retry_after", "0"))
                return self._send(200, {"ok": True})
            if path == "/_loopback/reset":
                server.reset_stats()
                return self._send(200, {"ok": True})
            if path not in ("/v1/chat/completions", "/v1/completions"):
                return self._error(404, f"no route {self.path}")
            with server._lock:
                server._stats["requests"] += 1
                server._stats["by_endpoint"][path] += 1
                server._stats["in_flight"] += 1
                server._stats["max_in_flight"] = max(server._stats["max_in_flight"], server._stats["in_flight"])
            try:
                self._model_request(path, raw)
            finally:
                with server._lock:
                    server._stats["in_flight"] -= 1

        def _model_request(self, path: str, raw: bytes):
            if server.latency:
                time.sleep(server.latency)
            if not self._authorized():
                return
            try:
                body = json.loads(raw)
            except ValueError:
                return self._error(400, "request body is not valid JSON")
            model = body.get("model")
            chat = path.endswith("chat/completions")
            if chat:
                messages = body.get("messages") or []
                if not messages:
                    return self._error(400, "messages must be a non-empty list")
                prompt = "\n".join(str(m.get("content", "")) for m in messages)
                key_text = str(messages[-1].get("content", ""))
            else:
                prompt = body.get("prompt")
                if isinstance(prompt, list):
                    prompt = prompt[0] if prompt else ""
                if not isinstance(prompt, str):
                    return self._error(400, "prompt must be a string")
                key_text = prompt
            fault = server._take_fault(key_text)
            if fault is not None:
                if fault.kind == "429":
                    hdr = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
                    return self._error(429, "Rate limit reached for requests", "rate_limit_exceeded", hdr)
                if fault.kind == "500":
                    return self._error(500, "The server had an error while processing your request.")
                if fault.kind == "401":
                    return self._error(401, "Incorrect API key provided: sk-lo**********leak.", "invalid_api_key")
                if fault.kind == "malformed":
                    return self._send(200, None, raw=b'{"id": "broken", "choices": [{"index": 0, "mess')
                if fault.kind == "slow":
                    time.sleep(fault.seconds)
            if model not in server.models:
                return self._error(404, f"The model `{model}` does not exist", "model_not_found")
            if server.backend is not None:
                return self._real_request(path, body, chat, model, key_text)
            if not chat and model in CHAT_MODELS:
                return self._error(404, "This is a chat model and not supported in the v1/completions endpoint. "
                                        "Did you mean to use v1/chat/completions?")
            n = body.get("max_completion_tokens", body.get("max_tokens"))
            n = 16 if n is None else int(n)
            temperature = float(body.get("temperature") if body.get("temperature") is not None else 1.0)
            stop = body.get("stop")
            stop = [stop] if isinstance(stop, str) else stop
            tokens, finish = server._continue(prompt, n, temperature, body.get("seed"), stop)
            text = "".join(tokens)
            n_prompt = len(tokenize(prompt)) + (4 * len(body.get("messages", [])) if chat else 0)
            usage = {"prompt_tokens": n_prompt, "completion_tokens": len(tokens),
                     "total_tokens": n_prompt + len(tokens)}
            created = int(time.time())
            server._served(path, model, key_text, body, n)
            if chat:
                logprobs = None
                if body.get("logprobs"):
                    k = int(body.get("top_logprobs") or 0)
                    content, ctx = [], prompt
                    for tok in tokens:
                        tops = server._top(ctx, tok, k) if k else []
                        content.append({"token": tok, "logprob": token_logprob(ctx, tok),
                                        "bytes": list(tok.encode()),
                                        "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())}
                                                         for t, v in tops]})
                        ctx += tok
                    logprobs = {"content": content}
                return self._send(200, {
                    "id": f"chatcmpl-loopback-{created}", "object": "chat.completion", "created": created,
                    "model": model, "usage": usage,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": finish, "logprobs": logprobs}]})
            echo = bool(body.get("echo")) and model not in NOECHO_MODELS
            k = body.get("logprobs")
            out_text = (prompt + text) if echo else text
            logprobs = None
            if k is not None:
                k = int(k)
                toks, lps, tops, offs = [], [], [], []
                ctx, off = "", 0
                if echo:
                    for i, tok in enumerate(tokenize(prompt)):
                        toks.append(tok)
                        lps.append(None if i == 0 else token_logprob(ctx, tok))
                        tops.append(None if i == 0 else dict(server._top(ctx, tok, k)) if k else {})
                        offs.append(off)
                        ctx += tok
                        off += len(tok)
                else:
                    ctx = prompt
                for tok in tokens:
                    toks.append(tok)
                    lps.append(token_logprob(ctx, tok))
                    tops.append(dict(server._top(ctx, tok, k)) if k else {})
                    offs.append(off)
                    ctx += tok
                    off += len(tok)
                logprobs = {"tokens": toks, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offs}
            return self._send(200, {
                "id": f"cmpl-loopback-{created}", "object": "text_completion", "created": created, "model": model,
                "usage": usage,
                "choices": [{"index": 0, "text": out_text, "finish_reason": finish, "logprobs": logprobs}]})

        def _real_request(self, path: str, body: dict, chat: bool, model: str, key_text: str):
            """Answer from the served real model; ``echo`` with ``logprobs`` on /v1/completions returns the
            prompt's token log-probs first (as vLLM does), so ``lm.score`` works through this server."""
            n = body.get("max_completion_tokens", body.get("max_tokens"))
            n = 16 if n is None else int(n)
            if chat:
                prompt = [{"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
                          for m in body["messages"]]
            else:
                prompt = body["prompt"] if not isinstance(body["prompt"], list) else body["prompt"][0]
            try:
                ans = server._real(prompt, n, body)
            except (ValueError, TypeError) as exc:
                return self._error(400, str(exc))
            u = ans["usage"]
            usage = {"prompt_tokens": int(u.get("prompt_tokens", 0)), "completion_tokens": int(u.get("completion_tokens", 0))}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            created = int(time.time())
            server._served(path, model, key_text, body, n)
            toks, lps, tops, k = ans["tokens"], ans["logprobs"], ans["top_logprobs"], ans["k"]
            if chat:
                logprobs = None
                if k is not None:
                    logprobs = {"content": [
                        {"token": t, "logprob": v, "bytes": list(t.encode()),
                         "top_logprobs": [{"token": a, "logprob": b, "bytes": list(a.encode())}
                                          for a, b in list((tops or [{}] * len(toks))[i].items())[:int(k)]]}
                        for i, (t, v) in enumerate(zip(toks, lps))]}
                return self._send(200, {
                    "id": f"chatcmpl-loopback-{created}", "object": "chat.completion", "created": created,
                    "model": model, "usage": usage,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": ans["text"]},
                                 "finish_reason": ans["finish_reason"], "logprobs": logprobs}]})
            logprobs, out_text = None, ans["text"]
            if body.get("echo") and k is not None:  # the prompt's own tokens first, one log-prob each
                with server._model_lock:
                    pieces, values = server.backend.prompt_logprobs(prompt)
                toks, lps = pieces + toks, values + lps
                tops = [{} for _ in pieces] + list(tops or [{}] * len(ans["tokens"]))
                out_text = prompt + out_text
                usage["prompt_tokens"] = len(pieces)
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            if k is not None:
                offs, off = [], 0
                for t in toks:
                    offs.append(off)
                    off += len(t)
                logprobs = {"tokens": toks, "token_logprobs": lps,
                            "top_logprobs": [dict(list(d.items())[:int(k)]) for d in (tops or [{}] * len(toks))],
                            "text_offset": offs}
            return self._send(200, {
                "id": f"cmpl-loopback-{created}", "object": "text_completion", "created": created, "model": model,
                "usage": usage,
                "choices": [{"index": 0, "text": out_text, "finish_reason": ans["finish_reason"],
                             "logprobs": logprobs}]})

    return Handler


def main(argv: list[str] | None = None) -> int:
    import argparse
    import os
    import shutil
    import subprocess

    p = argparse.ArgumentParser(prog="python -m interplab.lm.loopback",
                                description="Serve a local model through an OpenAI-compatible API on 127.0.0.1 "
                                            "(a stand-in for an API, for demos and tests).")
    p.add_argument("--model", default="smollm2",
                   help="the model to serve (any interplab.lm model name; default %(default)s, the embedded real "
                        "LM), or 'toy' for the protocol toy (loopback-chat: meaningless words, for testing)")
    p.add_argument("--port", type=int, default=8011, help="0 picks a free port (default %(default)s)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds to wait before every answer")
    p.add_argument("--api-key", default=None, help="require this key (default: accept any)")
    p.add_argument("--exec", nargs=argparse.REMAINDER, dest="command", metavar="COMMAND ...",
                   help="run COMMAND with OPENAI_BASE_URL (and OPENAI_MODEL=the served model unless set) pointing "
                        "here, then stop; exits with its status (e.g. --exec Rscript run.R)")
    args = p.parse_args(argv)
    port = 0 if args.command and args.port == 8011 else args.port
    srv = LoopbackServer(model=None if args.model == "toy" else args.model, port=port, latency=args.latency,
                         api_key=args.api_key).start()
    if args.command:
        if shutil.which(args.command[0]) is None:
            srv.stop()
            print(f"loopback: {args.command[0]!r} is not installed or not on PATH", flush=True)
            return 127
        env = dict(os.environ, OPENAI_BASE_URL=srv.base_url)
        env.setdefault("OPENAI_MODEL", srv.models[0])
        try:
            return subprocess.call(args.command, env=env)
        finally:
            srv.stop()
    print(f"loopback OpenAI-compatible server at {srv.base_url} (models: {', '.join(srv.models)}; a local "
          f"stand-in for an API); Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
