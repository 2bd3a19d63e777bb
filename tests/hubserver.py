"""A Hugging Face Hub-compatible file server for tests, on loopback only, with faults on demand.

Serves real files from local folders under the repo ids, paths and revisions the kit pins, so the
real ``huggingface_hub`` client does real HTTP against it: ``HEAD``/``GET`` on
``/{datasets/}{repo}/resolve/{revision}/{path}`` with ``X-Repo-Commit``, ``ETag`` (git blob sha1) or,
for LFS files, a 302 to a second "CDN" port with ``X-Linked-Etag`` (sha256) and ``X-Linked-Size``;
``Range`` requests; the Hub's error codes (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``); ``/api/{models,datasets}/{repo}/revision/{rev}`` for file listings; and a
raw.githubusercontent.com-compatible ``/raw/{owner}/{repo}/{commit}/{path}``.

Why hand-written: the two maintained candidates do not serve a local folder offline.
``hf-local-hub`` 3.0.0's wheel is only a client: its server is a Go binary that the wheel does not
ship. ``olah`` 0.5.4 (offline, ``mirrors-path``) serves local content only from git repositories,
so only commit SHAs made locally resolve: the kit's pinned upstream revisions answer 500 and
``main`` 401 (tried); it also cannot truncate, corrupt, stall or slow a transfer on purpose, and
it brings about 20 packages (fastapi, uvicorn, GitPython, peewee, ...).

Faults (``POST /_faults`` with ``{"path-substring": {"mode": ..., "times": n, "delay": s}}``,
applied to the next ``n`` transfers of a matching file): ``truncate`` (closes the connection
half-way through the body; a resuming Range request gets 503), ``short`` (a file cut in half, announced with the shorter length),
``corrupt`` (same length, bytes changed), ``stall`` (sends half, then waits ``delay`` seconds),
``slow`` (waits ``delay`` seconds before answering, HEAD included).

Run: ``python tests/hubserver.py CONFIG.json`` prints ``PORT CDN_PORT`` on its first line once it
listens. CONFIG: ``{"repos": [{"type": "dataset"|"model", "id": ..., "revision": sha, "branch":
"main", "files": {path: local_file}}], "raw": [{"repo": "owner/name", "commit": sha, "files": {...}}]}``.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

LFS_SUFFIXES = (".parquet", ".gz", ".safetensors", ".bin", ".arrow", ".h5", ".msgpack", ".onnx")
LFS_MIN_SIZE = 10 * 1024 * 1024


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Store:
    """The served repos, their files' checksums, and the pending faults."""

    def __init__(self, config: dict):
        self.repos = {}
        for r in config.get("repos", []):
            self.repos[(r.get("type", "model"), r["id"])] = r
        self.raw = {(r["repo"], r["commit"]): r["files"] for r in config.get("raw", [])}
        self.faults: dict[str, dict] = {}
        self.lock = threading.Lock()
        self._meta: dict[str, tuple[str, str, int]] = {}
        self.log: list[str] = []

    def meta(self, local: str) -> tuple[str, str, int]:
        """(git sha1, sha256, size) of a local file, computed once (see :meth:`prepare`)."""
        if local not in self._meta:
            data = Path(local).read_bytes()
            self._meta[local] = (git_blob_sha1(data), hashlib.sha256(data).hexdigest(), len(data))
        return self._meta[local]

    def prepare(self) -> None:
        """Checksums of every served file before the first request, remembered across runs in a
        temp file keyed by path, size and mtime (a 540 MB model takes seconds to hash)."""
        import tempfile

        memo_path = Path(tempfile.gettempdir()) / "interplab-hubserver-checksums.json"
        try:
            memo = json.loads(memo_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            memo = {}
        locals_ = {p for r in self.repos.values() for p in r["files"].values()}
        locals_ |= {p for files in self.raw.values() for p in files.values()}
        for local in sorted(locals_):
            st = os.stat(local)
            key = f"{local}|{st.st_size}|{st.st_mtime_ns}"
            if key in memo:
                self._meta[local] = tuple(memo[key])
            else:
                memo[key] = self.meta(local)
        try:
            memo_path.write_text(json.dumps(memo), encoding="utf-8")
        except OSError:
            pass

    def by_sha256(self, sha: str) -> str | None:
        for repo in self.repos.values():
            for local in repo["files"].values():
                if self.meta(local)[1] == sha:
                    return local
        return None

    def take_fault(self, key: str) -> dict | None:
        with self.lock:
            for pattern, fault in self.faults.items():
                if pattern in key and fault.get("mode") != "slow" and fault.get("times", 1) > 0:
                    fault["times"] = fault.get("times", 1) - 1
                    return dict(fault)
        return None


def is_lfs(path: str, size: int) -> bool:
    return path.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store: Store
    cdn_base: str = ""

    def log_message(self, fmt, *args):  # quiet; keep a log the tests can read
        self.store.log.append(f"{self.command} {self.path}")

    # ------------------------------------------------------------------ helpers
    def _error(self, status: int, code: str | None, message: str, commit: str | None = None):
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_file(self, local: str, key: str, headers: dict[str, str]):
        """The body of ``local`` with Range support and the pending fault for ``key``."""
        data = Path(local).read_bytes()
        fault = self.store.take_fault(key) if self.command == "GET" else None
        if fault and fault["mode"] == "corrupt":
            data = bytes(b ^ 0x5A for b in data[:64]) + data[64:]
        if fault and fault["mode"] == "short":
            data = data[: len(data) // 2]
        rng = self.headers.get("Range")
        if fault and fault["mode"] == "truncate" and rng:  # the resumed request fails too
            return self._error(503, None, "Service Unavailable")
        start, status = 0, 200
        if rng and rng.startswith("bytes="):
            first = rng[6:].split("-")[0]
            start = int(first or 0)
            status = 206
        body = data[start:]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault and fault["mode"] in ("truncate", "stall"):
            half = body[: max(1, len(body) // 2)]
            self.wfile.write(half)
            self.wfile.flush()
            if fault["mode"] == "stall":
                time.sleep(float(fault.get("delay", 30)))
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        for i in range(0, len(body), 1 << 20):
            self.wfile.write(body[i:i + (1 << 20)])

    # ------------------------------------------------------------------ routes
    def do_POST(self):
        if self.path == "/_faults":
            n = int(self.headers.get("Content-Length", 0))
            with self.store.lock:
                self.store.faults = json.loads(self.rfile.read(n) or b"{}")
            return self._json({"ok": True})
        self._error(404, None, "not found")

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path, key = urlsplit(self.path).path, unquote(self.path)
        with self.store.lock:
            slow = next((f for p, f in self.store.faults.items()
                         if p in key and f.get("mode") == "slow" and f.get("times", 1) > 0), None)
            if slow:
                slow["times"] = slow.get("times", 1) - 1
        if slow:
            time.sleep(float(slow.get("delay", 30)))
        if path == "/_log":
            return self._json(self.store.log)
        if path.startswith("/_lfs/"):
            local = self.store.by_sha256(path[len("/_lfs/"):])
            if local is None:
                return self._error(404, None, "no such object")
            return self._send_file(local, key, {"Content-Type": "application/octet-stream"})
        if path.startswith("/raw/"):
            return self._raw(path[len("/raw/"):])
        if path.startswith("/api/"):
            return self._api(path[len("/api/"):])
        return self._resolve(path.lstrip("/"))

    def _find(self, repo_type: str, repo_id: str, revision: str):
        repo = self.store.repos.get((repo_type, repo_id))
        if repo is None:
            self._error(401, "RepoNotFound", f"Repository Not Found for {repo_type} {repo_id}.")
            return None
        if revision not in (repo["revision"], repo.get("branch", "main")):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo

    def _resolve(self, path: str):
        repo_type = "model"
        if path.startswith("datasets/"):
            repo_type, path = "dataset", path[len("datasets/"):]
        parts = path.split("/")
        if "resolve" not in parts:
            return self._error(404, None, "not found")
        i = parts.index("resolve")
        repo_id, revision, filename = "/".join(parts[:i]), unquote(parts[i + 1]), unquote("/".join(parts[i + 2:]))
        repo = self._find(repo_type, repo_id, revision)
        if repo is None:
            return
        local = repo["files"].get(filename)
        if local is None:
            return self._error(404, "EntryNotFound", f"{filename} does not exist on {revision}", repo["revision"])
        sha1, sha256, size = self.store.meta(local)
        common = {"X-Repo-Commit": repo["revision"]}
        if is_lfs(filename, size):
            self.send_response(302)
            self.send_header("X-Repo-Commit", repo["revision"])
            self.send_header("X-Linked-Etag", f'"{sha256}"')
            self.send_header("X-Linked-Size", str(size))
            self.send_header("ETag", f'"{sha256}"')
            self.send_header("Location", f"{self.cdn_base}/_lfs/{sha256}?file={quote(filename)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send_file(local, filename, {**common, "ETag": f'"{sha1}"', "Content-Type": "application/octet-stream"})

    def _api(self, path: str):
        # {models,datasets}/{org}/{name}[/revision/{rev}]
        kind, _, rest = path.partition("/")
        repo_type = {"models": "model", "datasets": "dataset"}.get(kind)
        parts = rest.split("/")
        revision = "main"
        if "revision" in parts:
            i = parts.index("revision")
            parts, revision = parts[:i], unquote(parts[i + 1])
        repo_id = "/".join(parts)
        if repo_type is None:
            return self._error(404, None, "not found")
        repo = self._find(repo_type, repo_id, revision)
        if repo is None:
            return
        siblings = [{"rfilename": f, "size": os.path.getsize(p)} for f, p in sorted(repo["files"].items())]
        self._json({"id": repo_id, "sha": repo["revision"], "siblings": siblings, "private": False,
                    "disabled": False, "gated": False, "tags": [], "lastModified": "2024-01-01T00:00:00.000Z"})

    def _raw(self, path: str):
        parts = unquote(path).split("/")
        if len(parts) < 4:
            return self._error(404, None, "404: Not Found")
        files = self.store.raw.get(("/".join(parts[:2]), parts[2]))
        local = files.get("/".join(parts[3:])) if files else None
        if local is None:
            body = b"404: Not Found"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        self._send_file(local, "/".join(parts), {"Content-Type": "text/plain; charset=utf-8"})


def serve(config: dict, port: int = 0, cdn_port: int = 0):
    """Start the hub and CDN listeners on 127.0.0.1 (threads); returns (hub_server, cdn_server)."""
    store = Store(config)
    store.prepare()
    cdn = ThreadingHTTPServer(("127.0.0.1", cdn_port), type("CDN", (Handler,), {"store": store}))
    hub = ThreadingHTTPServer(("127.0.0.1", port), type("Hub", (Handler,), {
        "store": store, "cdn_base": f"http://127.0.0.1:{cdn.server_address[1]}"}))
    for s in (hub, cdn):
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    return hub, cdn


class HubServer:
    """The server above in its own process (so a test can kill it mid-transfer), on 127.0.0.1."""

    def __init__(self, config: dict, workdir: Path):
        self.config_path = Path(workdir) / "hubserver.json"
        self.config_path.write_text(json.dumps(config), encoding="utf-8")
        self.proc = None
        self.port = self.cdn_port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def raw_base(self) -> str:
        """What replaces https://raw.githubusercontent.com in the kit's GitHub URLs."""
        return f"{self.endpoint}/raw"

    def start(self) -> "HubServer":
        import subprocess

        self.proc = subprocess.Popen([sys.executable, __file__, str(self.config_path), str(self.port), str(self.cdn_port)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2:
            self.proc.kill()
            raise RuntimeError("hub server did not start")
        self.port, self.cdn_port = int(line[0]), int(line[1])
        return self

    def kill(self) -> None:
        """SIGKILL: the process dies mid-transfer, no goodbye."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def faults(self, spec: dict) -> None:
        import urllib.request

        req = urllib.request.Request(f"{self.endpoint}/_faults", data=json.dumps(spec).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def log(self) -> list[str]:
        """Every request the server answered so far ("GET /path"), oldest first."""
        import urllib.request

        with urllib.request.urlopen(f"{self.endpoint}/_log", timeout=10) as r:
            return [l for l in json.loads(r.read()) if "/_log" not in l and "/_faults" not in l]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    port = int(argv[1]) if len(argv) > 1 else 0
    cdn_port = int(argv[2]) if len(argv) > 2 else 0
    ThreadingHTTPServer.allow_reuse_address = True
    hub, cdn = serve(config, port, cdn_port)
    print(hub.server_address[1], cdn.server_address[1], flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
