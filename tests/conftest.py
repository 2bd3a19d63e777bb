"""Shared fixtures: the real third-party data folder, the session's background runs (every notebook and
starter run), the embedded encoder, headless Chromium, a loopback hub."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Real third-party data files for tests live beside the checkout (never copied into the project).
SHARED_DATA = Path(os.environ.get("INTERPLAB_TEST_DATA", ROOT.parent / "shared" / "datasets"))


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory):
    """Tests never use the user's cache: `make test` points INTERPLAB_CACHE at build/test-cache (shared
    with the notebook runs, so toy models train once); otherwise a temporary folder. A test that needs an
    empty cache sets INTERPLAB_CACHE itself with monkeypatch."""
    old = os.environ.get("INTERPLAB_CACHE")
    if not old:
        os.environ["INTERPLAB_CACHE"] = str(tmp_path_factory.mktemp("interplab-cache"))
    yield
    if old is None:
        os.environ.pop("INTERPLAB_CACHE", None)
    else:
        os.environ["INTERPLAB_CACHE"] = old


class BackgroundRuns:
    """The session's long runs (every notebook, run on the samples and on real data; the starters' smoke
    runs) in background threads, ``gallery.default_jobs()`` at a time, longest first, started with the
    session's first test while the other tests go on; the tests that check them run last and wait.

    A test module offers its runs with a module-level ``background_runs(items)`` returning
    ``[(key, expected seconds, run)]`` for the selected ``items`` of that module; ``run(env, threads)``
    gets a copy of the session's environment taken before any test changed ``os.environ`` (a
    monkeypatched variable must not reach a kernel) and its share of the CPU threads. The module's
    tests read ``background.result(key)``; a run that raised re-raises there. Work done in this
    process (reading and editing notebooks) belongs in ``background_runs``, which runs in the main
    thread: a run's thread should only start processes (servers, kernels, scripts; a model conversion
    runs in a child process). A notebook run passes ``launcher=kernel_launcher()`` to
    ``gallery.execute``: its kernel is then forked from the session's warm process
    (``tests/warmkernels.py``) where its environment allows.
    """

    def __init__(self, runs: list, env: dict, jobs: int):
        from concurrent.futures import ThreadPoolExecutor

        import nbclient  # noqa: F401  (imported here, not first in two threads at once)

        from interplab import gallery

        from warmkernels import WarmKernels

        self.pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="background-run")
        self.jobs, self.t0 = jobs, time.perf_counter()
        self.times: dict = {}  # key -> (start, end) in seconds since the pool started
        self.foreground_done: float | None = None
        threads = gallery.threads_per_job(jobs)
        # notebook kernels forked from one warm process (tests/warmkernels.py) where their environment is
        # the session's: each skips ~7 s of imports
        self.warm = WarmKernels(gallery.kernel_env(threads, base=env)) if runs else None
        _WARM[:] = [self.warm] if self.warm else []
        self.warm_summary = ""
        self.futures = {key: self.pool.submit(self._timed, key, run, env, threads)
                        for key, _, run in sorted(runs, key=lambda r: -r[1])}

    def _timed(self, key, run, env, threads):
        start = time.perf_counter() - self.t0
        try:
            return run(env, threads)
        finally:
            self.times[key] = (start, time.perf_counter() - self.t0)

    def report(self) -> list[str]:
        """Where the session's time went: each run's wall time and, for notebooks, its kernel's CPU
        seconds; when the other tests finished. (What to shrink when the suite is too slow.)"""
        rows = []
        for key, (start, end) in sorted(self.times.items(), key=lambda kv: kv[1][0] - kv[1][1]):
            f = self.futures[key]
            r = f.result() if f.done() and not f.exception() else None
            r = r[0] if isinstance(r, tuple) else r
            cpu = getattr(r, "cpu_seconds", None)
            rows.append(f"{end - start:7.1f} s wall  {'' if cpu is None else f'{cpu:7.1f} s CPU'}  "
                        f"from {start:6.0f} s  {' '.join(map(str, key))}")
        if not rows:
            return []
        busy = max(end for _, end in self.times.values())
        head = (f"background runs: {len(rows)} on {self.jobs} job(s), done {busy:.0f} s after they started; "
                f"the other tests were done at {self.foreground_done:.0f} s" if self.foreground_done is not None
                else f"background runs: {len(rows)} on {self.jobs} job(s), done {busy:.0f} s after they started")
        return [head, *rows, *([self.warm_summary] if self.warm_summary else [])]

    def result(self, key):
        if key not in self.futures:
            raise KeyError(f"no background run {key!r} was planned (its module's background_runs did not list it)")
        return self.futures[key].result()

    def running(self) -> bool:
        return any(not f.done() for f in self.futures.values())

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.warm:
            self.warm_summary = self.warm.summary()
            self.warm.close()


_WARM: list = []  # the session's WarmKernels, while its background runs are on


def kernel_launcher() -> list[str] | None:
    """What a background run passes as ``gallery.execute(..., launcher=)`` so that its kernel starts warm
    (None: no warm-kernel server this session, or it failed to start; kernels start as usual). The first
    runs wait the ~10 s the server takes to import: the cores are busy meanwhile, and a cold kernel would
    spend ~7 s of CPU on the same imports."""
    return _WARM[0].launcher if _WARM and _WARM[0].ready() else None


def _offers_runs(item) -> bool:
    return hasattr(getattr(item, "module", None), "background_runs")


def pytest_collection_modifyitems(session, config, items):
    """The tests that wait for background runs go last, so the other tests run meanwhile."""
    items[:] = [i for i in items if not _offers_runs(i)] + [i for i in items if _offers_runs(i)]


_POOL: list = []  # the session's BackgroundRuns, for the terminal summary


def pytest_runtest_setup(item):
    """Note when the first test that waits for a background run starts: the other tests are done."""
    if _POOL and _offers_runs(item) and _POOL[0].foreground_done is None:
        _POOL[0].foreground_done = time.perf_counter() - _POOL[0].t0


def pytest_terminal_summary(terminalreporter):
    for line in (_POOL[0].report() if _POOL else []):
        terminalreporter.write_line(line)


@pytest.fixture(autouse=True, scope="session")
def background(request, _session_cache):
    """The session's :class:`BackgroundRuns`, started before the first test."""
    from interplab import gallery

    by_module: dict = {}
    for item in request.session.items:
        if _offers_runs(item):
            by_module.setdefault(item.module, []).append(item)
    runs = [r for mod, items in by_module.items() for r in mod.background_runs(items)]
    pool = BackgroundRuns(runs, dict(os.environ), gallery.default_jobs())
    _POOL[:] = [pool]
    yield pool
    pool.close()


@pytest.fixture(autouse=True)
def _one_thread_beside_background_runs(background):
    """While the background runs keep the cores busy, a test computes on one thread: a second one would
    spin-wait against the kernels (``torchutil.limit_threads``); once they are done, on all of them."""
    from interplab.torchutil import limit_threads

    with limit_threads(1 if background.running() else None):
        yield


def process_gone(pid: int, timeout: float = 5.0) -> bool:
    """Whether process ``pid`` is gone within ``timeout`` seconds (a killed process may take a moment to be reaped)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def selected(items, test_name: str) -> bool:
    """Whether a test named ``test_name`` is among ``items`` (so the background run it reads is planned)."""
    return any(getattr(i, "originalname", None) == test_name for i in items)


def params_of(items, test_name: str, param: str) -> list:
    """The ``param`` values of the parametrized tests named ``test_name`` among ``items``."""
    return [i.callspec.params[param] for i in items
            if getattr(i, "originalname", None) == test_name and hasattr(i, "callspec")]


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


@pytest.fixture(scope="session")
def session_toys() -> Path:
    """The session cache's toy-model folder, with the toys tests compare against built in it (under the
    cache lock, so the notebook runs and these tests train each one once). A test on an empty cache
    (``cache_dir``) links its ``toy`` folder here instead of training them again."""
    from interplab import config
    from interplab.toy import zoo

    zoo.build(["attn-only-1l"], progress=False)
    return config.cache_dir("toy")


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


# ---------------------------------------------------------------- a Hub-compatible server on loopback

#: the Hub repo ids, paths and revisions (../shared/datasets/HUB.md) whose real files are in shared_data
PIPELINE_REPO, PIPELINE_COMMIT = "naimenz/inverse-scaling-eval-pipeline", "34c8c7b066c5134fd26d6658ffa1522d2785d1d4"
SERVED_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
SERVED_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
SERVED_RANDOM_LM = "interplab-tests/random-llama-2l"   # a 2-layer random-init Llama with SmolLM2's tokenizer


def hub_config(shared: Path, model_folder: Path | None, encoder_folder: Path | None = None,
               random_folder: Path | None = None) -> dict:
    """What the loopback hub serves: the real files of shared_data under the kit's pinned repo ids,
    paths and revisions (each revision checked against HUB.md), the pipeline's results as GitHub raw
    files, the kit's converted SmolLM2 folder as the model repo SERVED_MODEL and the embedded MiniLM
    (real weights, the hub's own layout) as SERVED_ENCODER."""
    import hashlib

    from interplab.data import ethics, hh_rlhf

    hub_md = (shared / "HUB.md").read_text(encoding="utf-8")
    hh = hh_rlhf.DATASETS["hh-rlhf"]["hub"]["harmless-base/test"]
    eth = ethics.HUB_FILES
    repos = [
        {"type": "dataset", "id": hh.repo_id, "revision": hh.revision,
         "files": {hh.filename: str(shared / "hh-rlhf" / "harmless-base" / "test.jsonl.gz")}},
        {"type": "dataset", "id": eth["test"].repo_id, "revision": eth["test"].revision,
         "files": {eth["test"].filename: str(shared / "ethics-commonsense" / "cm_test.csv"),
                   eth["test_hard"].filename: str(shared / "ethics-commonsense" / "cm_test_hard.csv")}},
    ]
    for r in repos:
        assert f"`{r['id']}`" in hub_md and r["revision"] in hub_md, f"{r['id']}@{r['revision']} is not in HUB.md"
    for repo_id, folder in ((SERVED_MODEL, model_folder), (SERVED_ENCODER, encoder_folder),
                            (SERVED_RANDOM_LM, random_folder)):
        if folder is None:
            continue
        files = {p.relative_to(folder).as_posix(): str(p) for p in sorted(folder.rglob("*"))
                 if p.is_file() and not p.name.startswith("interplab-") and "__pycache__" not in p.parts}
        commit = hashlib.sha1("".join(sorted(files)).encode()).hexdigest()
        repos.append({"type": "model", "id": repo_id, "revision": commit, "files": files})
    base = shared / "inverse-scaling-eval-pipeline" / "results"
    raw = {f"results/conjunction-fallacy-0shot-{fam}/{p.name}": str(p)
           for fam in ("gpt2", "gpt3") for p in sorted((base / f"conjunction-fallacy-0shot-{fam}").glob("*.csv"))}
    for fam in ("gpt2", "gpt3"):
        raw[f"results/conjunction-fallacy-0shot-{fam}/data.csv"] = str(base / "conjunction-fallacy-0shot-data.csv")
    return {"repos": repos, "raw": [{"repo": PIPELINE_REPO, "commit": PIPELINE_COMMIT, "files": raw}]}


@pytest.fixture(scope="session")
def random_lm_folder(tmp_path_factory) -> Path:
    """A small random-init Llama (2 layers, d_model 64, seed 0) saved with SmolLM2's tokenizer: the
    chance-level baseline next to the real model, served as SERVED_RANDOM_LM."""
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from interplab.models import embedded_lm_path

    folder = tmp_path_factory.mktemp("random-llama")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (embedded_lm_path(quiet=True) / name).is_file():
            shutil.copyfile(embedded_lm_path(quiet=True) / name, folder / name)
    return folder


#: variables that would keep a child process offline or on another cache, unset where the loopback hub serves
HUB_UNSET = ("HF_HUB_OFFLINE", "INTERPLAB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE")


def hub_env(srv, hf_home: Path) -> dict:
    """The environment that points child processes at the loopback hub ``srv`` (downloads on, short
    timeouts, an HF cache in ``hf_home``); unset ``HUB_UNSET`` too."""
    return {"HF_ENDPOINT": srv.endpoint, "HF_HOME": str(hf_home), "HF_HUB_DOWNLOAD_TIMEOUT": "10",
            "HF_HUB_ETAG_TIMEOUT": "3", "INTERPLAB_HUB_TIMEOUT": "3", "INTERPLAB_GITHUB_RAW": srv.raw_base,
            "HF_HUB_DISABLE_XET": "1"}


@pytest.fixture
def hub_server(shared_data, tmp_path, monkeypatch, random_lm_folder):
    """A Hugging Face Hub-compatible server on 127.0.0.1 (tests/hubserver.py, its own process) with
    the client pointed at it: this process through huggingface_hub.constants (read at import), child
    processes through HF_ENDPOINT; an empty HF cache; downloads on; short timeouts."""
    import huggingface_hub.constants as hfc

    from hubserver import HubServer
    from interplab.models import embedded_encoder_path, embedded_lm_path

    srv = HubServer(hub_config(shared_data, embedded_lm_path(quiet=True), embedded_encoder_path(), random_lm_folder),
                    tmp_path).start()
    cache = tmp_path / "hf-home" / "hub"
    monkeypatch.setattr(hfc, "ENDPOINT", srv.endpoint)
    monkeypatch.setattr(hfc, "HUGGINGFACE_CO_URL_TEMPLATE", srv.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hfc, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hfc, "HF_HUB_DOWNLOAD_TIMEOUT", 5)
    for k, v in hub_env(srv, tmp_path / "hf-home").items():
        monkeypatch.setenv(k, v)
    for k in HUB_UNSET:
        monkeypatch.delenv(k, raising=False)
    srv.cache = cache
    yield srv
    srv.kill()
