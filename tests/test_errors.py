"""One error family: every exception class the kit defines derives from ``InterplabError``.

The classes are found by importing every module of the package, so a new exception class without the
base fails here, wherever it is added.
"""
import importlib
import pkgutil

import pytest

import interplab
from interplab.errors import EmptyTextError, InterplabError

#: exception classes that never reach a caller (internal control-flow signals), with why
INTERNAL = {
    "interplab.lm.backends.Retryable": "a transient-failure signal the retry loop catches; callers get LMError",
}


def _kit_exceptions() -> dict[str, type]:
    found = {}
    for info in pkgutil.walk_packages(interplab.__path__, "interplab."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (isinstance(obj, type) and issubclass(obj, BaseException) and not issubclass(obj, Warning)
                    and obj.__module__ == module.__name__ and not name.startswith("_")):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


KIT = _kit_exceptions()


def test_the_walk_finds_the_kit_s_errors():
    """The discovery is not vacuous: it finds classes from many modules, including known ones."""
    for known in ("interplab.hub.OfflineError", "interplab.sites.UnknownSiteError", "interplab.lm.errors.SpendingCapError",
                  "interplab.data._base.DatasetError", "interplab.models.ModelNotAvailableError"):
        assert known in KIT
    assert len({q.rsplit(".", 1)[0] for q in KIT}) >= 8, sorted(KIT)
    assert {"interplab.graph.schema.ModelFileError", "interplab.graph.schema.InputShapeError"} <= set(KIT)


@pytest.mark.parametrize("qualname", sorted(set(KIT) - set(INTERNAL)))
def test_every_kit_exception_derives_from_interplab_error(qualname):
    assert issubclass(KIT[qualname], InterplabError), f"{qualname} should derive from interplab.errors.InterplabError"


def test_each_keeps_its_builtin_base():
    """``except ValueError`` / ``except KeyError`` code written before the family still catches them."""
    from interplab import attention, data, hub, sites
    from interplab.lm import errors as lm_errors

    assert issubclass(data.UnknownDatasetError, KeyError) and issubclass(data.DatasetError, ValueError)
    assert issubclass(hub.HubNotFoundError, LookupError) and issubclass(hub.OfflineError, RuntimeError)
    assert issubclass(sites.UnknownSiteError, KeyError) and issubclass(sites.SiteRangeError, IndexError)
    assert issubclass(attention.NoAttentionError, ValueError) and issubclass(lm_errors.LMError, RuntimeError)
    assert issubclass(EmptyTextError, ValueError)
    assert str(data.UnknownDatasetError("no such dataset")) == "no such dataset"  # KeyError would quote it


def test_internal_signals_stay_outside_the_family():
    for qualname in INTERNAL:
        assert qualname in KIT and not issubclass(KIT[qualname], InterplabError)


# ---------------------------------------------------------------- typed errors instead of matching message text

@pytest.fixture
def offline_empty_hub(tmp_path, monkeypatch):
    import huggingface_hub.constants as hfc

    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_the_fallback_reason_follows_the_hub_error_class(offline_empty_hub, caplog):
    import logging

    from interplab import data, hub
    from interplab.data import imdb

    spec = imdb.HUB_FILES["test"]
    with pytest.raises(hub.NotCachedError, match="not in the Hugging Face cache"):
        hub.fetch(spec.repo_id, spec.filename, revision=spec.revision, sha256=spec.sha256)
    with caplog.at_level(logging.WARNING, logger="interplab.data"):
        assert data.load("imdb", split="test").attrs["sample"] is True
    assert "hub unreachable and file not cached" in caplog.text
    bad = offline_empty_hub / f"datasets--{spec.repo_id.replace('/', '--')}" / "snapshots" / spec.revision / spec.filename
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PAR1 truncated")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="interplab.data"):
        assert data.load("imdb", split="test").attrs["sample"] is True
    assert "cached hub file failed its checksum and the hub is unreachable" in caplog.text and not bad.exists()


def test_an_unknown_option_is_told_apart_from_a_type_error_inside_a_loader(monkeypatch):
    from interplab import data
    from interplab.data import imdb

    with pytest.raises(data.DatasetError, match=r"imdb: unsupported option\(s\) \['subset'\]"):
        data.load("imdb", source="sample", subset="x")

    def broken(name, split=None, source="auto"):
        raise TypeError("parse() got an unexpected keyword argument 'x'")  # a bug in a loader, not the caller's option

    monkeypatch.setattr(imdb, "load", broken)
    with pytest.raises(TypeError, match="parse"):
        data.load("imdb", source="sample")


def test_a_model_without_attention_weights_is_one_error_class_in_attention_and_the_explorer(minilm):
    from transformers import LlamaConfig, LlamaForCausalLM

    from interplab import attention, explorer, sites

    _, tok = minilm
    cfg = LlamaConfig(num_hidden_layers=1, hidden_size=16, intermediate_size=16, num_attention_heads=2, num_key_value_heads=1,
                      vocab_size=tok.vocab_size, max_position_embeddings=32, attn_implementation="eager")
    model = LlamaForCausalLM(cfg).eval()
    for layer in model.model.layers:  # registered first, so it runs before the site layer's hook: weights dropped
        layer.self_attn.register_forward_hook(lambda m, args, out: (out[0], None))
    with pytest.raises(attention.NoAttentionError, match="returned no attention weights"):
        attention.get_attention(model, tok, "the cat sat")
    with pytest.raises(attention.NoAttentionError, match="returned no attention weights"):
        attention.scores_over(model, tok, ["the cat sat", "a dog ran"])  # not swallowed as an undefined score
    with pytest.raises(sites.NoAttentionError, match="blocks.0.attn.hook_pattern"):
        explorer.trace(model, tok, "the cat sat")
    assert attention.NoAttentionError is sites.NoAttentionError
    with pytest.raises(EmptyTextError):
        explorer.trace(model, tok, "  ")
    with pytest.raises(EmptyTextError):
        attention.scores_over(model, tok, [" ", "the cat"])  # empty text is checked before the pass


def test_empty_text_is_one_error_class_across_the_tools():
    from interplab import explain

    for call in (lambda: explain.explain_text("   ", None, "lime"), lambda: explain.deletion_effects("", None)):
        with pytest.raises(EmptyTextError, match="text is empty"):
            call()
