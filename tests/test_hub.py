"""The online path against a Hugging Face Hub-compatible server on loopback (tests/hubserver.py).

The real huggingface_hub client does real HTTP (HEAD/GET, ETags, the LFS redirect to a second
"CDN" port, Range resumes, revisions, the standard cache layout) for the real files in
../shared/datasets under the repo ids, paths and revisions the kit pins (HUB.md). Faults are the
server's: 404s, truncated and corrupted transfers, a server killed mid-download, a stalled server.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from interplab import data, hub

ROOT = Path(__file__).resolve().parents[1]
HH = ("Anthropic/hh-rlhf", "harmless-base/test.jsonl.gz", "09be8c5bbc57cb3887f3a9732ad6aa7ec602a1fa")
ETHICS = ("hendrycks/ethics", "data/commonsense/test.csv", "b8b47c589f8bee77175b8648e5497278b68da48a")


def run_py(code: str, **env) -> subprocess.CompletedProcess:
    """Python in a fresh process (huggingface_hub reads HF_ENDPOINT / HF_HUB_OFFLINE at import)."""
    full = {**os.environ, "PYTHONPATH": str(ROOT / "shared"), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=full)


def leftovers(cache: Path) -> list[str]:
    """Files in the HF cache other than locks, refs and the empty "does not exist" markers: blobs,
    snapshot links, partial downloads."""
    if not cache.exists():
        return []
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")
                  if (p.is_file() or p.is_symlink()) and not {".locks", "refs", ".no_exist"} & set(p.parts)
                  and p.name != "CACHEDIR.TAG")


def fetch(spec, **kw):
    repo, filename, rev = spec
    return hub.fetch(repo, filename, revision=rev, **kw)


# ---------------------------------------------------------------- datasets: download, verify, offline after

def test_load_hub_downloads_verifies_and_then_works_offline_with_the_server_gone(hub_server, shared_data):
    df = data.load("hh-rlhf", split="test", source="hub")
    assert len(df) == 2312 and df.attrs["sample"] is False
    assert df.attrs["source"] == "hub:Anthropic/hh-rlhf@09be8c5/harmless-base/test.jsonl.gz"
    snap = hub_server.cache / "datasets--Anthropic--hh-rlhf" / "snapshots" / HH[2] / HH[1]
    blob = Path(os.path.realpath(snap))
    # standard layout: the snapshot entry links to a blob named after the LFS sha256 (X-Linked-Etag)
    assert blob.parent.name == "blobs" and blob.name == hub.sha256_of(shared_data / "hh-rlhf/harmless-base/test.jsonl.gz")
    log = hub_server.log()   # real HTTP: the resolve HEAD, then the GET on the "CDN" the 302 pointed to
    assert f"HEAD /datasets/Anthropic/hh-rlhf/resolve/{HH[2]}/harmless-base/test.jsonl.gz" in log
    assert any(l.startswith(f"GET /_lfs/{blob.name}") for l in log), log
    hub_server.kill()
    out = run_py("from interplab import data; df = data.load('hh-rlhf', split='test', source='hub'); "
                 "print(len(df), df.attrs['source'])", HF_HUB_OFFLINE="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2312", "hub:Anthropic/hh-rlhf@09be8c5/harmless-base/test.jsonl.gz"]


def test_cli_download_checks_the_file_and_the_next_load_is_offline(hub_server):
    out = subprocess.run([sys.executable, "-m", "interplab.cli", "datasets", "download", "ethics-commonsense", "--split", "test"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT / "shared")})
    assert out.returncode == 0, out.stderr
    assert "ethics-commonsense [test]: 3,885 rows from hub:hendrycks/ethics@b8b47c5" in out.stdout
    assert "checksum verified" in out.stdout
    # not an LFS file: its blob is named after the git blob sha1 the server sent as ETag, which is the
    # upstream blob id recorded in SOURCES.md for cm_test.csv
    blob = hub_server.cache / "datasets--hendrycks--ethics" / "blobs" / "134e0a71bfc0239e5fa9bd3c7f4548c54ea06c60"
    assert blob.is_file()
    hub_server.kill()
    out = run_py("from interplab import data; print(len(data.load('ethics-commonsense', split='test')))", HF_HUB_OFFLINE="1")
    assert out.returncode == 0 and out.stdout.strip() == "3885", out.stderr


def test_cli_download_of_an_unserved_file_is_one_line(hub_server):
    out = subprocess.run([sys.executable, "-m", "interplab.cli", "datasets", "download", "truthfulqa"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT / "shared")})
    assert out.returncode == 2
    err = out.stderr.strip()
    assert "\n" not in err and "dataset repo 'truthfulqa/truthful_qa' does not exist on http://127.0.0.1:" in err


# ---------------------------------------------------------------- faults: one line each, nothing corrupt kept

def one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text and len(text) < 400, text
    return text


def test_unknown_repo_file_and_revision_are_one_line_and_leave_nothing(hub_server):
    with pytest.raises(hub.HubNotFoundError) as e:
        hub.fetch("nobody/no-such-dataset", "train.csv", revision="main")
    assert "does not exist" in one_line(e) and "nobody/no-such-dataset" in one_line(e)
    with pytest.raises(hub.HubNotFoundError) as e:
        hub.fetch(HH[0], "harmless-base/nope.jsonl.gz", revision=HH[2])
    assert "no such file" in one_line(e)
    with pytest.raises(hub.HubNotFoundError) as e:
        hub.fetch(HH[0], HH[1], revision="0" * 40)
    assert "revision '0000000000000000000000000000000000000000' does not exist" in one_line(e)
    assert leftovers(hub_server.cache) == []
    # auto falls back to the sample with one line; source="hub" raises the same one line
    with pytest.raises(hub.HubNotFoundError):
        data.load("truthfulqa", source="hub")
    assert data.load("truthfulqa").attrs["sample"] is True


def test_truncated_transfer_keeps_nothing_and_a_retry_succeeds(hub_server, shared_data):
    hub_server.faults({HH[1]: {"mode": "truncate", "times": 99}})  # every transfer stops half-way
    with pytest.raises(hub.OfflineError) as e:
        fetch(HH)                                                   # huggingface_hub retries 5 times, then gives up
    assert "could not download" in one_line(e) and "nothing was kept" in one_line(e)
    assert "peer closed connection" in one_line(e)
    assert leftovers(hub_server.cache) == []                       # no blob, no .incomplete
    hub_server.faults({})
    path = fetch(HH)                                                # the server recovered: the retry succeeds
    assert path.read_bytes() == (shared_data / "hh-rlhf/harmless-base/test.jsonl.gz").read_bytes()


def test_one_truncated_transfer_is_retried_by_the_client(hub_server, shared_data):
    hub_server.faults({HH[1]: {"mode": "truncate", "times": 1}})
    assert fetch(HH).read_bytes() == (shared_data / "hh-rlhf/harmless-base/test.jsonl.gz").read_bytes()


@pytest.mark.parametrize("spec", [HH, ETHICS], ids=["lfs-sha256", "git-sha1"])
def test_wrong_checksum_is_fetched_again_then_refused(hub_server, spec):
    hub_server.faults({spec[1]: {"mode": "corrupt", "times": 1}})  # same size, other bytes: only a checksum sees it
    path = fetch(spec)
    assert hub.verify(path) is None
    for p in list(hub_server.cache.rglob("*")):                     # start again from an empty cache
        if p.is_file() or p.is_symlink():
            p.unlink()
    hub_server.faults({spec[1]: {"mode": "corrupt", "times": 2}})
    with pytest.raises(hub.ChecksumError) as e:
        fetch(spec)
    assert "failed its checksum twice" in one_line(e) and "nothing was kept" in one_line(e)
    assert leftovers(hub_server.cache) == []
    assert hub.verify(fetch(spec)) is None                          # a later call succeeds


def test_pinned_sha256_is_checked_too(hub_server):
    with pytest.raises(hub.ChecksumError) as e:
        fetch(HH, sha256="0" * 64)
    assert "is not the pinned 000000000000" in one_line(e)
    assert leftovers(hub_server.cache) == []


def test_a_cached_file_that_no_longer_matches_its_etag_is_replaced(hub_server, shared_data):
    path = fetch(ETHICS)
    blob = Path(os.path.realpath(path))
    blob.write_bytes(blob.read_bytes()[:1000])                      # damaged on disk later
    assert fetch(ETHICS).read_bytes() == (shared_data / "ethics-commonsense/cm_test.csv").read_bytes()


def test_server_killed_mid_download_leaves_no_partial_file_and_the_next_call_completes(hub_server, shared_data, monkeypatch):
    monkeypatch.setenv("INTERPLAB_HUB_TIMEOUT", "30")             # let the kill, not the timeout, end it
    hub_server.faults({HH[1]: {"mode": "stall", "times": 1, "delay": 60}})   # half the body, then silence
    box = {}

    def work():
        try:
            box["path"] = fetch(HH)
        except Exception as exc:
            box["error"] = exc

    t = threading.Thread(target=work)
    t.start()
    deadline = time.monotonic() + 30
    while not any(l.startswith("GET /_lfs/") for l in hub_server.log()):
        assert time.monotonic() < deadline, "the download never started"
        time.sleep(0.1)
    time.sleep(0.5)                                                 # half the body is on the wire
    hub_server.kill()                                               # SIGKILL while the transfer is open
    t.join(90)
    assert not t.is_alive()
    assert isinstance(box.get("error"), hub.OfflineError), box
    assert "\n" not in str(box["error"]) and "nothing was kept" in str(box["error"])
    assert leftovers(hub_server.cache) == []
    hub_server.start()                                              # same ports: the client's endpoint is unchanged
    assert fetch(HH).read_bytes() == (shared_data / "hh-rlhf/harmless-base/test.jsonl.gz").read_bytes()


def test_slow_server_times_out_instead_of_hanging(hub_server):
    """In a child process: the given-up download thread lives on there (huggingface_hub would retry
    for minutes), and its retries must not disturb this process's shared HTTP client."""
    hub_server.faults({ETHICS[1]: {"mode": "slow", "times": 5, "delay": 30}})
    out = run_py("import time; from interplab import hub; t = time.monotonic()\n"
                 "try:\n"
                 f"    hub.fetch({ETHICS[0]!r}, {ETHICS[1]!r}, revision={ETHICS[2]!r})\n"
                 "except hub.OfflineError as e:\n"
                 "    print(round(time.monotonic() - t, 1)); print(e)\n", INTERPLAB_HUB_TIMEOUT="3")
    assert out.returncode == 0, out.stderr
    elapsed, message = out.stdout.splitlines()
    assert float(elapsed) < 10, elapsed                             # 3 s, not the minutes of a hang
    assert "no answer from the hub at http://127.0.0.1:" in message and "for 3 s" in message
    assert leftovers(hub_server.cache) == []


def test_server_down_is_offline_error_and_auto_falls_back(hub_server):
    """In a child process, for the same reason as above (a refused HEAD is retried for ~25 s)."""
    hub_server.kill()
    out = run_py("from interplab import data, hub\n"
                 "try:\n"
                 f"    hub.fetch({ETHICS[0]!r}, {ETHICS[1]!r}, revision={ETHICS[2]!r})\n"
                 "except hub.OfflineError as e:\n"
                 "    print(e)\n"
                 "print(data.load('ethics-commonsense', split='test').attrs['sample'])\n")
    assert out.returncode == 0, out.stderr
    message, sample = out.stdout.splitlines()
    assert message.startswith("could not download hendrycks/ethics/data/commonsense/test.csv") and "nothing was kept" in message
    assert sample == "True"


# ---------------------------------------------------------------- models the same way

def test_hf_model_downloads_checks_and_loads_offline_after(hub_server):
    from conftest import SERVED_MODEL

    from interplab import models

    model, tok = models.load_causal_lm(f"hf:{SERVED_MODEL}")
    assert model.config.num_hidden_layers == 30 and len(tok) == 49152
    snap = next((hub_server.cache / f"models--{SERVED_MODEL.replace('/', '--')}" / "snapshots").iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in snap.iterdir()}
    for p in snap.iterdir():
        assert hub.verify(p) is None, p
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    import torch

    with torch.no_grad():
        online = model(ids).logits[0, -1]
    hub_server.kill()
    out = run_py(f"import torch; from interplab import models; m, t = models.load_causal_lm('hf:{SERVED_MODEL}'); "
                 "ids = t('The capital of France is', return_tensors='pt').input_ids; "
                 "print(int(m(ids).logits[0, -1].argmax()))", HF_HUB_OFFLINE="1")
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) == int(online.argmax())


def test_hf_encoder_downloads_and_matches_the_embedded_one(hub_server):
    import torch
    from conftest import SERVED_ENCODER

    from interplab import models

    online, tok = models.load_encoder(f"hf:{SERVED_ENCODER}")
    local, _ = models.load_encoder()
    batch = tok(["The movie was not good."], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(online(**batch).last_hidden_state, local(**batch).last_hidden_state)
    assert (hub_server.cache / "models--sentence-transformers--all-MiniLM-L6-v2" / "refs" / "main").is_file()


# One parameter each: the model. lm_experiments compares MODEL with the 1-layer toy at the text level, so the
# toy OTHER_MODEL stays as it is.
NOTEBOOK_PARAMS = {
    "model_explorer": [('CAUSAL_MODEL = "smollm2"', 'CAUSAL_MODEL = "hf:HuggingFaceTB/SmolLM2-135M-Instruct"')],
    "lm_experiments": [('MODEL = "smollm2"', 'MODEL = "hf:HuggingFaceTB/SmolLM2-135M-Instruct"')],
}


def background_runs(items) -> list:
    """The notebooks with their model parameter pointed at a hub id (test_notebooks_go_online_by_one_parameter),
    in the session's background runs (``conftest.BackgroundRuns``), each against its own loopback hub."""
    import nbformat

    from conftest import HUB_UNSET, SHARED_DATA, hub_config, hub_env, selected
    from hubserver import HubServer
    from interplab import gallery

    if not SHARED_DATA.is_dir() or not selected(items, "test_notebooks_go_online_by_one_parameter"):
        return []
    from interplab.data import ethics, hh_rlhf  # noqa: F401  (hub_config's imports, made here in the main thread)

    out = ROOT / "build" / "test-online"
    seconds = gallery.expected_seconds()
    served: dict = {}
    lock = threading.Lock()

    def hub_files(base) -> dict:
        """What the hub serves, built by the first online run: the session's first minutes keep both cores
        on notebooks instead of waiting for smollm2's conversion here. The conversion (if the cache lacks
        it) runs in a child process: a run's thread only starts processes (transformers' lazy imports are
        not thread-safe), and the cache lock makes it the one conversion of the session."""
        with lock:
            if not served:
                code = "from interplab.models import embedded_lm_path; print(embedded_lm_path(quiet=True))"
                proc = subprocess.run([sys.executable, "-c", code], env=base, capture_output=True, text=True, timeout=900)
                assert proc.returncode == 0, proc.stderr[-3000:]
                served.update(hub_config(SHARED_DATA, Path(proc.stdout.strip().splitlines()[-1])))
        return served

    def run(name):
        path = ROOT / "notebooks" / f"{name}.ipynb"
        book = nbformat.read(path, as_version=4)
        cell = next(c for c in book.cells if "parameters" in c.metadata.get("tags", []))
        for old, new in NOTEBOOK_PARAMS[name]:
            assert old in cell.source
            cell.source = cell.source.replace(old, new)

        def one(base, threads):
            folder = out / f"{name}-hub"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            srv = HubServer(hub_files(base), folder).start()
            try:
                env = {k: v for k, v in base.items() if k not in HUB_UNSET}
                r = gallery.execute(path, out, nb=book, env=hub_env(srv, folder / "hf-home"), base=env, threads=threads)
                return r, srv.log()
            finally:
                srv.kill()
        return one

    return [(("online", n), seconds.get(f"{n}.ipynb", 0.0), run(n)) for n in sorted(NOTEBOOK_PARAMS)]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOTEBOOK_PARAMS))
def test_notebooks_go_online_by_one_parameter(name, background, shared_data):
    """A copy of the notebook with its model parameter pointed at a hub id runs top to bottom (beside
    other notebooks, as ``make demo`` runs them): the model comes from the loopback hub (nothing of it
    is cached before)."""
    r, log = background.result(("online", name))
    assert r.ok, f"{r.path} with the model parameter pointed at the hub failed at {r.error}"
    assert any("/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/" in line for line in log)


def test_unknown_hf_model_is_one_line(hub_server):
    from interplab import models

    with pytest.raises(models.ModelNotAvailableError) as e:
        models.load_encoder("hf:nobody/no-such-model")
    assert "unknown model 'nobody/no-such-model'" in one_line(e)
    hub_server.kill()
    with pytest.raises(models.ModelNotAvailableError) as e:
        models.load_encoder("hf:nobody/other-model")
    assert "could not download" in one_line(e) or "could not reach" in one_line(e)


# ---------------------------------------------------------------- the published inverse-scaling results

def test_published_results_download_at_the_pinned_commit_then_offline(hub_server, cache_dir, monkeypatch, capsys):
    from interplab import evals
    from interplab.evals import results

    monkeypatch.setattr(results, "_local_mirror", lambda folder: None)   # no copy beside the checkout: download
    d = evals.published_results_dir("conjunction-fallacy-0shot", "gpt3")
    assert d is not None and d.is_relative_to(cache_dir / "published")
    assert sorted(p.name for p in d.iterdir()) == ["ada.csv", "babbage.csv", "curie.csv", "data.csv", "davinci.csv"]
    log = hub_server.log()
    assert f"GET /raw/naimenz/inverse-scaling-eval-pipeline/{results.PUBLISHED_COMMIT}/results/conjunction-fallacy-0shot-gpt3/ada.csv" in log
    published = evals.read_results_dir(d)
    assert len(published) == 4 and all(len(df) == 1000 for df in published.values())
    assert abs(published["davinci"]["correct"].mean() - 0.29) < 1e-12
    hub_server.kill()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert evals.published_results_dir("conjunction-fallacy-0shot", "gpt3") == d   # from the cache, no server
    assert capsys.readouterr().out == ""
    # uncached and offline: None and ONE line saying what to run once online
    assert evals.published_results_dir("conjunction-fallacy-0shot", "gpt2") is None
    out = capsys.readouterr().out.strip()
    assert "\n" not in out and "not cached and downloads are off" in out
    assert "evals.published_results_dir('conjunction-fallacy-0shot', 'gpt2')" in out
    assert not any((cache_dir / "published").rglob("*gpt2*.csv"))


def test_published_results_corrupt_or_missing_keep_nothing(hub_server, cache_dir, monkeypatch, capsys):
    from interplab import evals
    from interplab.evals import results

    monkeypatch.setattr(results, "_local_mirror", lambda folder: None)
    hub_server.faults({"gpt2-large.csv": {"mode": "corrupt", "times": 1}})
    assert evals.published_results_dir("conjunction-fallacy-0shot", "gpt2") is None
    out = capsys.readouterr().out.strip()
    assert "\n" not in out and "is not the pinned b51a3681988" in out and "nothing was kept" in out
    leftover = [p.name for p in (cache_dir / "published").rglob("*") if p.is_file()]
    assert "gpt2-large.csv" not in leftover and not [n for n in leftover if "partial" in n]
    d = evals.published_results_dir("conjunction-fallacy-0shot", "gpt2")  # the retry completes
    assert d is not None and len(evals.read_results_dir(d)) == 4
    monkeypatch.setattr(results, "PUBLISHED_COMMIT", "0" * 40)
    assert evals.published_results_dir("conjunction-fallacy-0shot", "gpt3") is None
    assert "404, no such file at that commit" in capsys.readouterr().out
