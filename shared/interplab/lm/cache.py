"""The response cache: one SQLite file that makes a re-run free and offline.

Every answer (generation, score, first-token log-probs) is stored under a key made from the
backend, the model, the request kind, the parameters and the prompt -- never from an API key,
which is not part of any request stored here. The file lives in
``interplab.config.cache_dir("responses")/responses.sqlite`` and uses SQLite's write-ahead log, so
two notebooks (two processes) can write to it at once; a team can share the file.

Each answer is written the moment it arrives, so an interrupted batch loses nothing: the next run
replays what was done and only sends what was not.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

from .. import config
from ..store import SQLiteStore

FILENAME = "responses.sqlite"

_COLUMNS = """key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL"""


def request_key(backend: str, model: str, kind: str, prompt, params: dict) -> str:
    """The cache key: sha256 of the canonical JSON of (backend, model, kind, prompt, params)."""
    blob = json.dumps(
        {"backend": backend, "model": model, "kind": kind, "prompt": prompt, "params": params},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A key -> JSON store in one SQLite file (WAL mode; safe with several threads and processes)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else config.cache_dir("responses") / FILENAME
        self._store = SQLiteStore(self.path, "responses", _COLUMNS, wal=True)
        self._store.query("SELECT 1")  # open (and create) the file now, as before

    def get(self, key: str) -> dict | None:
        found = self._store.get_many([key], "response")
        return json.loads(found[key][0]) if found else None

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        """Every cached response among ``keys`` (one query per 500 keys)."""
        return {k: json.loads(v) for k, (v,) in self._store.get_many(keys, "response").items()}

    def put(self, key: str, *, backend: str, model: str, kind: str, request: dict, response: dict,
            prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        row = (key, backend, model, kind, json.dumps(request, ensure_ascii=False, default=str),
               json.dumps(response, ensure_ascii=False), int(prompt_tokens), int(completion_tokens), time.time())
        self._store.put_many([row])

    def __len__(self) -> int:
        return self._store.query("SELECT COUNT(*) FROM {table}")[0][0]

    def stats(self) -> dict:
        """Rows and tokens stored, per backend and model."""
        rows = self._store.query(
            "SELECT backend, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) "
            "FROM {table} GROUP BY backend, model ORDER BY backend, model")
        return {f"{b}:{m}": {"responses": n, "prompt_tokens": p or 0, "completion_tokens": c or 0}
                for b, m, n, p, c in rows}

    def clear(self, model: str | None = None) -> int:
        """Delete every entry (or those of one model id); returns how many were deleted."""
        if model is None:
            return self._store.execute("DELETE FROM {table}")
        return self._store.execute("DELETE FROM {table} WHERE model=?", (model,))

    def close(self) -> None:
        self._store.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"


_DEFAULT: dict[str, ResponseCache] = {}
_DEFAULT_LOCK = threading.Lock()


def default_cache() -> ResponseCache:
    """The process-wide cache for the current cache root (follows INTERPLAB_CACHE if it changes)."""
    path = str(config.cache_dir("responses") / FILENAME)
    with _DEFAULT_LOCK:
        if path not in _DEFAULT:
            _DEFAULT[path] = ResponseCache(path)
        return _DEFAULT[path]
