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

    from interplab import models

    assert models.resolve_precision("auto") == ("bfloat16" if models.fast_bfloat16() else "float32")
    assert models.resolve_precision("float32") == "float32"
    assert models.fast_bfloat16("mps") is False
    with pytest.raises(ValueError, match="precision must be one of"):
        models.resolve_precision("fp16")
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with models.autocast("float32"):
        assert (a @ b).dtype == torch.float32
    with models.autocast("bfloat16"):
        assert (a @ b).dtype == torch.bfloat16
