"""One SQLite table keyed by text: the store under the kit's disk caches (LM responses, embeddings).

Hand-written over the standard library's ``sqlite3`` rather than a dependency (``diskcache``,
``sqlitedict``) because the two caches need SQL beside the key lookup (per-model stats and
deletes for responses, several typed columns per row) and their files must stay readable by the
releases that wrote them. One connection per store, shared by threads behind a lock; with
``wal=True`` SQLite's write-ahead log lets several processes write one file at once.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

__all__ = ["SQLiteStore"]

_CHUNK = 500  # keys per SELECT ... IN (...): well under SQLite's 999-variable limit


class SQLiteStore:
    """Rows of ``table`` (first column ``key TEXT PRIMARY KEY``) in the SQLite file ``path``.

    ``columns`` is the table's column list as SQL (``"key TEXT PRIMARY KEY, n INTEGER, vec BLOB"``);
    the table is created when missing. The file opens on first use, so a broken file raises
    ``sqlite3.DatabaseError`` from the first ``get_many``/``put_many``/``query``, where callers can
    decide what to do about it.
    """

    def __init__(self, path: str | os.PathLike, table: str, columns: str, *, wal: bool = False):
        self.path = Path(path)
        self.table = table
        self.columns = columns
        self.wal = wal
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False, isolation_level=None)
            try:
                conn.execute("PRAGMA busy_timeout=60000")
                if self.wal:
                    try:
                        conn.execute("PRAGMA journal_mode=WAL")
                    except sqlite3.OperationalError:  # another process is switching it at this moment
                        pass
                    conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({self.columns})")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def query(self, sql: str, args=()) -> list[tuple]:
        """Rows of one SQL statement (``{table}`` in it names this store's table)."""
        with self._lock:
            return self._connection().execute(sql.format(table=self.table), tuple(args)).fetchall()

    def execute(self, sql: str, args=()) -> int:
        """Run one changing SQL statement (``{table}`` as in :meth:`query`); returns the rows it changed."""
        with self._lock:
            return self._connection().execute(sql.format(table=self.table), tuple(args)).rowcount

    def get_many(self, keys, columns: str = "*") -> dict[str, tuple]:
        """``{key: (other columns...)}`` for every key among ``keys`` that is stored."""
        found: dict[str, tuple] = {}
        unique = list(dict.fromkeys(keys))
        if not unique:
            return found
        with self._lock:
            conn = self._connection()
            for i in range(0, len(unique), _CHUNK):
                chunk = unique[i:i + _CHUNK]
                q = f"SELECT key, {columns} FROM {self.table} WHERE key IN ({','.join('?' * len(chunk))})"
                for row in conn.execute(q, chunk):
                    found[row[0]] = tuple(row[1:])
        return found

    def put_many(self, rows) -> None:
        """Insert or replace whole rows (tuples in column order, key first), in one transaction."""
        rows = list(rows)
        if not rows:
            return
        with self._lock:
            conn = self._connection()
            marks = ",".join("?" * len(rows[0]))
            conn.execute("BEGIN")
            try:
                conn.executemany(f"INSERT OR REPLACE INTO {self.table} VALUES ({marks})", rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, table={self.table!r})"
