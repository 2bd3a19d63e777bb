"""Shared fixtures: the real third-party data folder, the embedded encoder, headless Chromium."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Real third-party data files for tests live beside the checkout (never copied into the project).
SHARED_DATA = Path(os.environ.get("INTERPLAB_TEST_DATA", ROOT.parent / "shared" / "datasets"))


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory):
    """Tests never use the user's cache: `make test` points INTERPLAB_CACHE at build/test-cache (shared
    with the nbval run, so toy models train once); otherwise a temporary folder. A test that needs an
    empty cache sets INTERPLAB_CACHE itself with monkeypatch."""
    old = os.environ.get("INTERPLAB_CACHE")
    if not old:
        os.environ["INTERPLAB_CACHE"] = str(tmp_path_factory.mktemp("interplab-cache"))
    yield
    if old is None:
        os.environ.pop("INTERPLAB_CACHE", None)
    else:
        os.environ["INTERPLAB_CACHE"] = old


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real third-party data (../shared/datasets); skips where it is absent (a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data folder {SHARED_DATA} is absent (only the project's own samples are available)")
    return SHARED_DATA


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty kit cache (responses, embeddings, ...) for this test only."""
    monkeypatch.setenv("INTERPLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def server():
    """A real OpenAI-compatible HTTP server on loopback (interplab.lm.loopback), stopped after the test."""
    from interplab.lm.loopback import LoopbackServer

    with LoopbackServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def minilm():
    """The embedded MiniLM-L6 encoder and tokenizer, loaded once per test session."""
    from interplab.models import load_encoder

    return load_encoder()


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's package) driven by Playwright, with the network switched off.

    Skips where Chromium is not installed, unless INTERPLAB_REQUIRE_BROWSER=1 (set by .ci/run).
    """
    exe = _chromium()
    if exe is None:
        if os.environ.get("INTERPLAB_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required (INTERPLAB_REQUIRE_BROWSER=1) but not installed: apt-get install chromium")
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=exe,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync", "--disable-quic"],
        )
        yield b
        b.close()


class OfflinePage:
    """A page opened from a file with networking off; records console errors and blocked requests."""

    def __init__(self, browser, path: Path):
        self.context = browser.new_context(offline=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: r.url.startswith(("http:", "https:")) and self.requests.append(r.url))
        self.page.goto(Path(path).resolve().as_uri())
        self.page.wait_for_load_state("load")

    def close(self):
        self.context.close()


@pytest.fixture
def open_offline(browser):
    """open_offline(path) -> OfflinePage; closed after the test."""
    pages = []

    def _open(path):
        p = OfflinePage(browser, path)
        pages.append(p)
        return p

    yield _open
    for p in pages:
        p.close()


@pytest.fixture(scope="session")
def smollm2():
    """The embedded causal LM SmolLM2-135M-Instruct and its tokenizer, loaded once per test session
    (converted into the session's cache on first use, ~30 s; build/test-cache is pre-seeded)."""
    from interplab.models import load_causal_lm

    return load_causal_lm("smollm2")
