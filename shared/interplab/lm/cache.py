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
import sqlite3
import threading
import time
from pathlib import Path

from .. import config

FILENAME = "responses.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
)
"""


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout=60000")
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:  # another process is switching it at this moment
            pass
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self._conn.execute("SELECT response FROM responses WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        """Every cached response among ``keys`` (one query per 500 keys)."""
        found: dict[str, dict] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for i in range(0, len(unique), 500):
                chunk = unique[i:i + 500]
                q = "SELECT key, response FROM responses WHERE key IN (%s)" % ",".join("?" * len(chunk))
                for k, v in self._conn.execute(q, chunk):
                    found[k] = json.loads(v)
        return found

    def put(self, key: str, *, backend: str, model: str, kind: str, request: dict, response: dict,
            prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        row = (key, backend, model, kind, json.dumps(request, ensure_ascii=False, default=str),
               json.dumps(response, ensure_ascii=False), int(prompt_tokens), int(completion_tokens), time.time())
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?,?,?,?)", row)

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def stats(self) -> dict:
        """Rows and tokens stored, per backend and model."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT backend, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) "
                "FROM responses GROUP BY backend, model ORDER BY backend, model").fetchall()
        return {f"{b}:{m}": {"responses": n, "prompt_tokens": p or 0, "completion_tokens": c or 0}
                for b, m, n, p, c in rows}

    def clear(self, model: str | None = None) -> int:
        """Delete every entry (or those of one model id); returns how many were deleted."""
        with self._lock:
            if model is None:
                cur = self._conn.execute("DELETE FROM responses")
            else:
                cur = self._conn.execute("DELETE FROM responses WHERE model=?", (model,))
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()

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
