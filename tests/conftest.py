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


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real third-party data (../shared/datasets); skips where it is absent (a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data folder {SHARED_DATA} is absent (only the project's own samples are available)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def selected_params(request):
    """``selected_params(test_name, param)``: the ``param`` values of the parametrized tests named
    ``test_name`` that this session runs (after ``-k``/``-m``), so a module fixture can run all of them
    at once (the notebooks, two at a time) and each test checks its own result."""
    def values(test_name: str, param: str) -> list:
        return [item.callspec.params[param] for item in request.session.items
                if getattr(item, "originalname", None) == test_name and hasattr(item, "callspec")]

    return values


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
    for k, v in {"HF_ENDPOINT": srv.endpoint, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DOWNLOAD_TIMEOUT": "10",
                 "HF_HUB_ETAG_TIMEOUT": "3", "INTERPLAB_HUB_TIMEOUT": "3", "INTERPLAB_GITHUB_RAW": srv.raw_base,
                 "HF_HUB_DISABLE_XET": "1"}.items():
        monkeypatch.setenv(k, v)
    for k in ("HF_HUB_OFFLINE", "INTERPLAB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE"):
        monkeypatch.delenv(k, raising=False)
    srv.cache = cache
    yield srv
    srv.kill()
