"""Local Jupyter, as a participant uses it: `make lab` opens the notebooks in JupyterLab.

The test starts the kit's JupyterLab on loopback, opens the BertViz notebook in headless Chromium
with every non-loopback request blocked, runs all cells from the Run menu, and checks what a
person would see: BertViz's attention lines drawn and progress bars rendered as widgets (not
left as "Loading widget..." or "HBox(...)" text).
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on 127.0.0.1 rooted at a copy of notebooks/ (autosave must not write outputs
    into the checkout); yields (base_url, token)."""
    import shutil

    pytest.importorskip("jupyterlab")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--ServerApp.port_retries=0",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI runs as root
    proc = subprocess.Popen(cmd, env=env, stdout=open(tmp_path / "lab.log", "w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("JupyterLab exited: " + (tmp_path / "lab.log").read_text()[-2000:])
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start in 60 s: " + (tmp_path / "lab.log").read_text()[-2000:])
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_bertviz_draws_in_jupyterlab_offline(browser, jupyterlab, tmp_path):
    base, token = jupyterlab
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    blocked: list[str] = []

    def route(r):
        host = urlparse(r.request.url).hostname or ""
        if r.request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in ("127.0.0.1", "localhost"):
            blocked.append(r.request.url)
            return r.abort()
        return r.continue_()

    context.route("**/*", route)
    page = context.new_page()
    shot = tmp_path / "jupyterlab.png"
    try:
        page.goto(f"{base}/lab/tree/notebooks/attention_bertviz.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        try:  # a notebook saved without kernel metadata asks once which kernel to start
            page.get_by_role("button", name="Select", exact=True).click(timeout=10_000)
        except Exception:
            pass
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        # wait until every code cell has run: no "[*]" prompt and the last code cell numbered
        deadline = time.time() + 420
        while time.time() < deadline:
            prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
            if prompts and all("[*]" not in p for p in prompts) and prompts[-1].strip() not in ("[ ]:", ""):
                break
            time.sleep(2)
        else:
            pytest.fail(f"notebook did not finish running: {prompts}")
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
        assert not page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']").count(), errors
        page.wait_for_selector(".jp-OutputArea svg line", state="attached", timeout=30_000)
        lines = page.locator(".jp-OutputArea svg line").count()
        assert lines > 1000, f"BertViz drew only {lines} lines"
        text = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())
        for frozen in ("Loading widget", "HBox(children", "Error displaying widget"):
            assert frozen not in text, f"a progress bar was left unrendered ({frozen!r})"
    finally:
        page.screenshot(path=str(shot))  # what a person would have seen (kept in the test's tmp folder)
        context.close()
