"""The test session's warm kernels (tests/warmkernels.py): a forked kernel runs a notebook as a cold one
does, in its own environment and folder, and starts cold wherever forking could change what it sees."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from conftest import process_gone
from interplab import gallery
from warmkernels import WarmKernels

PROBE = """import json, os, random, sys
import numpy as np
import tqdm.auto
import matplotlib
import matplotlib.pyplot as plt
plt.plot([0, 1]); plt.show()
print(json.dumps({"ppid": os.getppid(), "cwd": os.getcwd(), "mark": os.environ.get("MARK"),
                  "backend": matplotlib.get_backend(), "torch_loaded": "torch" in sys.modules,
                  "draws": [random.random(), float(np.random.rand())], "threads": os.environ.get("OMP_NUM_THREADS"),
                  "bars": [c.__module__ for c in tqdm.auto.tqdm.__mro__]}))"""


def _probe(tmp_path: Path, name: str, extra: str = "") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(PROBE)] + ([nbformat.v4.new_code_cell(extra)] if extra else [])
    path = tmp_path / name / "probe.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def _seen(out: Path) -> tuple[dict, list]:
    nb = nbformat.read(out / "probe.ipynb", as_version=4)
    outs = nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in outs if o.get("name") == "stdout")
    return json.loads(text.strip().splitlines()[-1]), [o for o in outs if o.output_type == "display_data"]


THREADS = 1  # each probe kernel's thread count (an import-time variable: the server's must match)


@pytest.fixture(scope="module")
def warm():
    """The session's server where its background runs started one whose kernels run on THREADS threads (one
    server fewer to import torch in), else one of this module's own."""
    from conftest import _WARM

    session = _WARM[0] if _WARM else None
    if session is not None and session.forks_for(gallery.kernel_env(THREADS)) and session.ready():
        yield session
        return
    with WarmKernels(gallery.kernel_env(THREADS, {"MARK": "server"})) as w:
        assert w.ready(), Path(w.log).read_text()[-2000:]
        yield w


def test_forked_kernel_runs_a_notebook_in_its_own_environment_and_folder(warm, tmp_path):
    a, b = _probe(tmp_path, "a"), _probe(tmp_path, "b")
    ra = gallery.execute(a, tmp_path / "out-a", env={"MARK": "a"}, threads=THREADS, launcher=warm.launcher)
    rb = gallery.execute(b, tmp_path / "out-b", env={"MARK": "b"}, threads=THREADS, launcher=warm.launcher)
    assert ra.ok and rb.ok, (ra.error, rb.error)
    (sa, plots_a), (sb, _) = _seen(tmp_path / "out-a"), _seen(tmp_path / "out-b")
    assert sa["ppid"] == sb["ppid"] == warm.proc.pid, Path(warm.log).read_text()[-2000:]  # both forked from the server...
    assert sa["torch_loaded"]                          # ...which had imported torch before
    assert (sa["mark"], sb["mark"]) == ("a", "b") and sa["threads"] == str(THREADS)
    assert (sa["cwd"], sb["cwd"]) == (str(a.parent), str(b.parent))
    assert sa["backend"].endswith("backend_inline") and any("image/png" in o.data for o in plots_a)
    assert sa["draws"] != sb["draws"]  # not the server's random state, shared
    assert "tqdm.notebook" in sa["bars"]  # widget progress bars, as in a kernel started cold (not text bars)
    assert ra.cpu_seconds and ra.cpu_seconds > 0  # read from the forked kernel (its pid file)


def test_kernel_starts_cold_where_an_import_time_variable_differs(warm, tmp_path):
    path = _probe(tmp_path, "cold")
    r = gallery.execute(path, tmp_path / "out", env={"MARK": "c", "HF_ENDPOINT": "http://127.0.0.1:9"}, threads=THREADS,
                        launcher=warm.launcher)
    assert r.ok, r.error
    seen, _ = _seen(tmp_path / "out")
    assert seen["ppid"] != warm.proc.pid and not seen["torch_loaded"] and seen["mark"] == "c"
    assert "tqdm.notebook" in seen["bars"]
    assert "import-time environment differs: HF_ENDPOINT" in Path(warm.log).read_text()


def test_interrupt_reaches_the_forked_kernel_and_shutdown_leaves_no_process(warm, tmp_path):
    """jupyter_client interrupts a kernel by signalling its process (here the client, which passes the
    signal on); shutting the kernel down kills the client, and the server then kills the forked kernel."""
    import time

    km = gallery._kernel_manager(tmp_path, warm.launcher)
    km.start_kernel(env=gallery.kernel_env(THREADS, {"MARK": "i"}))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    seen: list = []
    reply = kc.execute_interactive("import os; print(os.getpid(), os.getppid())", timeout=30,
                                   output_hook=lambda m: seen.append(m["content"].get("text", "")))
    pid, ppid = map(int, "".join(seen).split())
    assert reply["content"]["status"] == "ok" and ppid == warm.proc.pid
    msg_id = kc.execute("import time; time.sleep(60)")
    time.sleep(1)
    km.interrupt_kernel()
    t0 = time.monotonic()
    reply = kc.get_shell_msg(timeout=20)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=20)
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - t0 < 20
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    assert process_gone(pid), f"the forked kernel {pid} outlived its shutdown"  # the server polls every 0.2 s


def test_no_server_means_cold_kernels(tmp_path):
    """The client in front of a kernel with no server to ask (not started yet, or gone) runs it itself."""
    import sys

    path = _probe(tmp_path, "none")
    launcher = [sys.executable, str(Path(__file__).with_name("warmkernels.py")), "--connect", str(tmp_path / "no.sock"), "--"]
    r = gallery.execute(path, tmp_path / "out", env={"MARK": "n"}, threads=1, launcher=launcher)
    assert r.ok, r.error
    seen, _ = _seen(tmp_path / "out")
    assert seen["mark"] == "n" and not seen["torch_loaded"]
