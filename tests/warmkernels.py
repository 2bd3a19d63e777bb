"""Notebook kernels forked from a warm process: the test session's ~20 notebook runs skip the ~7 s of
CPU that importing torch, transformers, scipy, scikit-learn and pandas costs each fresh kernel on 2 cores.

``WarmKernels(env)`` starts a server (``python tests/warmkernels.py --serve SOCKET``) that imports those
modules once, then forks one child per kernel asked for. ``gallery.execute(..., launcher=warm.launcher)``
puts this file's client in front of the kernel command: the client sends the command, its environment,
working folder and standard streams to the server, which forks a child that runs exactly that command
(``python -m ipykernel_launcher -f CONNECTION``) in that environment. The client stays in place as the
kernel process jupyter_client manages: it passes on interrupts and other signals, exits with the kernel's
exit status, and when it is killed the server kills the kernel. It writes the kernel's pid to
``CONNECTION.pid`` (where ``gallery`` reads the kernel's CPU seconds).

A kernel starts cold (the client runs the command itself) wherever forking could change what it sees:
the server is not ready yet, the command is not ``python -m ipykernel_launcher`` of this interpreter, or
an environment variable read at import time (``HF_*``, ``TRANSFORMERS_*``, thread counts, ...) differs from
the server's: huggingface_hub fixes ``HF_ENDPOINT`` and offline mode when it is imported, so a run against
the loopback hub gets a cold kernel. matplotlib is not imported before the fork (the kernel picks its
inline backend at start), and the server refuses to fork once any thread is running.

Why hand-written: jupyter_client has no fork server, and ``multiprocessing``'s forkserver cannot hand a
child a kernel's command line, environment and streams.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

#: what the server imports once (never matplotlib: ipykernel chooses its backend when it starts). ipykernel's
#: shell comes first: tqdm.auto (imported by transformers and huggingface_hub) picks its notebook (widget)
#: bars at import time where ``ipykernel.zmqshell`` is imported, as it is in every kernel
PRELOAD = ("ipykernel.zmqshell", "ipykernel.kernelapp", "numpy", "pandas", "scipy.stats", "scipy.optimize",
           "sklearn.linear_model", "sklearn.pipeline", "torch", "transformers", "tqdm.auto")
#: transformers' model classes the notebooks load (importing one pulls in most of transformers)
PRELOAD_FROM_TRANSFORMERS = ("AutoModel", "AutoModelForCausalLM", "AutoTokenizer", "LlamaForCausalLM", "BertModel")
#: environment variables read at import time by the modules above: a kernel whose values differ starts cold
IMPORT_TIME_ENV = ("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TORCH", "PYTORCH", "OMP_", "MKL_", "OPENBLAS_", "KMP_",
                   "GOTO", "NUMEXPR_", "SKLEARN_", "SCIPY_", "TOKENIZERS_", "SAFETENSORS_", "CUDA", "LD_", "MALLOC_",
                   "PYTHON", "XDG_CACHE_HOME", "HOME", "TQDM_")


def _import_env(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV)}


def _differs(request: dict, server: dict, added: dict) -> list[str]:
    """The import-time variables whose values differ between a kernel's environment and the server's
    before its imports; one the imports themselves set (``added``), to the value the kernel has, is alike."""
    r, s = _import_env(request), dict(server)
    for k, v in added.items():
        if r.get(k) == v:
            r.pop(k)
            s.pop(k, None)
    return sorted({k for k, _ in set(r.items()) ^ set(s.items())})


def _kernel_cmd_ok(cmd: list) -> bool:
    return len(cmd) >= 3 and cmd[0] == sys.executable and cmd[1:3] == ["-m", "ipykernel_launcher"]


class WarmKernels:
    """The warm-kernel server for kernels started with environment ``env``; ``launcher`` is the command
    prefix to pass to ``gallery.execute``. Use as a context manager, or call :meth:`close`."""

    def __init__(self, env: dict):
        self.env = dict(env)
        self.dir = Path(tempfile.mkdtemp(prefix="interplab-warm-"))
        self.socket = str(self.dir / "server.sock")
        self.launcher = [sys.executable, __file__, "--connect", self.socket, "--"]
        self.log = self.dir / "server.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, __file__, "--serve", self.socket], env=env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def forks_for(self, env: dict) -> bool:
        """Whether a kernel started with ``env`` would be forked (its import-time variables are the server's)."""
        return _import_env(env) == _import_env(self.env)

    def ready(self, timeout: float = 120.0) -> bool:
        """Wait until the server listens (False if it exited first: then every kernel starts cold)."""
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if os.path.exists(self.socket):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def summary(self) -> str:
        """One line: how many kernels were forked, how many started cold and why (from the server's log)."""
        import collections

        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines() if self.log.is_file() else []
        forked = sum(l.startswith("warmkernels: forked kernel") for l in lines)
        cold = collections.Counter(l.split("(", 1)[1].rstrip(")") for l in lines if l.startswith("warmkernels: a cold kernel"))
        failed = [l for l in lines if l.startswith("warmkernels: not serving")]
        why = "; ".join(f"{n} x {reason}" for reason, n in cold.items())
        return (f"warm kernels: {forked} forked from one warm process"
                + (f", {sum(cold.values())} started cold ({why})" if cold else "")
                + (f"; {failed[-1]}" if failed else ""))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------------------------------------ the server

def _die_with_parent(sig: int) -> None:
    """Linux: deliver ``sig`` to this process when its parent exits (no orphaned servers or kernels)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, sig)  # PR_SET_PDEATHSIG
    except Exception:
        pass


#: native threads that survive a fork by design: pyarrow's jemalloc (imported by pandas) purges memory from
#: one, and jemalloc's own fork handlers make the child's allocator consistent and start it again on demand
FORK_SAFE_THREADS = ("jemalloc_bg_thd",)


def _threads() -> int:
    """Threads of this process besides the main one and the fork-safe ones (forking must see none)."""
    try:
        names = [Path(f"/proc/self/task/{t}/comm").read_text().strip() for t in os.listdir("/proc/self/task")]
    except OSError:
        import threading

        return threading.active_count() - 1
    return len(names) - 1 - sum(n in FORK_SAFE_THREADS for n in names)


def _reply(conn, obj) -> None:
    try:
        conn.sendall((json.dumps(obj) + "\n").encode())
    except OSError:
        pass


def _child(req: dict, fds: list, listener, conns) -> None:
    """In the forked child: become the kernel the client asked for; never return."""
    code = 1
    try:
        _die_with_parent(signal.SIGKILL)
        os.setpgid(0, 0)
        listener.close()
        for c in conns:
            c.close()
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(req["env"])
        os.chdir(req["cwd"])
        sys.path[0] = req["cwd"]  # as `python -m` puts it (the server's own was this file's folder)
        import random

        import numpy as np

        random.seed()
        np.random.seed()  # a fresh process seeds both from the OS; children of one server must not share them
        import runpy

        # ipykernel read JPY_PARENT_PID (its parent_handle) when the server imported it: say it again
        parent = [f"--IPKernelApp.parent_handle={int(os.environ['JPY_PARENT_PID'])}"] if os.environ.get("JPY_PARENT_PID") else []
        sys.argv = [req["argv"][0], *req["argv"][3:], *parent]
        try:
            runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(path: str) -> None:
    import importlib
    import selectors

    _die_with_parent(signal.SIGTERM)
    before = dict(os.environ)
    for name in PRELOAD:
        importlib.import_module(name)
    transformers = sys.modules["transformers"]
    for name in PRELOAD_FROM_TRANSFORMERS:
        getattr(transformers, name)
    widget_bars = sys.modules["tqdm.auto"].notebook_tqdm is not sys.modules["tqdm.std"].tqdm
    if "matplotlib" in sys.modules or _threads() or not widget_bars:
        sys.exit(f"warmkernels: not serving (matplotlib imported: {'matplotlib' in sys.modules}; threads: "
                 f"{_threads()}; tqdm.auto's notebook bars: {widget_bars})")
    env = _import_env(before)
    # what the imports themselves put in os.environ (torch, OpenMP: KMP_*, TORCHINDUCTOR_CACHE_DIR): a cold
    # kernel's imports set them too, so every child gets them on top of its own environment
    added = {k: v for k, v in os.environ.items() if k not in before}
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    os.rename(path + ".tmp", path)  # the socket appears only once it is ready
    listener.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    kids: dict = {}  # conn -> pid
    while True:
        for key, _ in sel.select(timeout=0.2):
            if key.fileobj is listener:
                conn, _ = listener.accept()
                try:
                    head, fds, _, _ = socket.recv_fds(conn, 4, 3)
                    (n,) = struct.unpack("!I", head)
                    body = b""
                    while len(body) < n:
                        chunk = conn.recv(n - len(body))
                        if not chunk:
                            raise OSError("client went away")
                        body += chunk
                    req = json.loads(body)
                except (OSError, ValueError, struct.error) as exc:
                    _reply(conn, {"refused": f"bad request: {exc}"})
                    conn.close()
                    continue
                why = None
                if not _kernel_cmd_ok(req.get("argv", [])):
                    why = "not this interpreter's ipykernel_launcher"
                elif _differs(req.get("env", {}), env, added):
                    why = "import-time environment differs: " + ", ".join(_differs(req.get("env", {}), env, added))
                elif len(fds) != 3:
                    why = "expected 3 standard streams"
                elif _threads():
                    why = "the server has threads"
                if why:
                    print(f"warmkernels: a cold kernel ({why})", file=sys.stderr, flush=True)
                    for fd in fds:
                        os.close(fd)
                    _reply(conn, {"refused": why})
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    _child({**req, "env": {**added, **req["env"]}}, fds, listener, list(kids) + [conn])
                for fd in fds:
                    os.close(fd)
                kids[conn] = pid
                print(f"warmkernels: forked kernel {pid}", file=sys.stderr, flush=True)
                sel.register(conn, selectors.EVENT_READ)
                _reply(conn, {"pid": pid})
            else:  # the client exited (or was killed): so does its kernel
                conn = key.fileobj
                if not conn.recv(1):
                    sel.unregister(conn)
                    pid = kids.pop(conn, None)
                    if pid:
                        for kill in (os.killpg, os.kill):  # its process group: the kernel and what it started
                            try:
                                kill(pid, signal.SIGKILL)
                                break
                            except OSError:
                                pass
                    conn.close()
        while True:  # reap finished kernels; tell their clients
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            for conn, p in list(kids.items()):
                if p == pid:
                    _reply(conn, {"exit": os.waitstatus_to_exitcode(status)})
                    kids.pop(conn)
                    sel.unregister(conn)
                    conn.close()


# ------------------------------------------------------------------------------------------ the client

def connect(path: str, cmd: list) -> None:
    """Run ``cmd`` (a kernel command) as a child of the server at ``path``, or, where it refuses, here."""
    reply: dict = {}
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        body = json.dumps({"argv": cmd, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
        socket.send_fds(s, [struct.pack("!I", len(body))], [0, 1, 2])
        s.sendall(body)
        f = s.makefile("rb")
        reply = json.loads(f.readline() or b"{}")
    except (OSError, ValueError):
        reply = {}
    if "pid" not in reply:
        os.execv(cmd[0], cmd)  # cold: exactly the command jupyter_client asked for
    pid = int(reply["pid"])
    conn_file = cmd[cmd.index("-f") + 1] if "-f" in cmd else None
    if conn_file:
        Path(conn_file + ".pid").write_text(str(pid))

    def forward(signum, _frame):  # to the kernel's process group, as jupyter_client signals a cold kernel's
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signum)
                return
            except OSError:
                pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    line = f.readline()  # blocks until the kernel exits (signals are handled meanwhile)
    code = 1
    try:
        code = int(json.loads(line)["exit"]) if line else 1
    except (ValueError, KeyError):
        pass
    if conn_file:
        Path(conn_file + ".pid").unlink(missing_ok=True)
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    elif sys.argv[1:2] == ["--connect"] and sys.argv[3:4] == ["--"]:
        connect(sys.argv[2], sys.argv[4:])
    else:
        sys.exit("usage: warmkernels.py --serve SOCKET | --connect SOCKET -- KERNEL COMMAND...")
