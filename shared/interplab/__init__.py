"""interplab: the helper package behind the interpretability-hackathon starter kit.

Submodules are named for what you do with them and load lazily, so ``import interplab``
stays fast (torch and transformers are imported only when a submodule needs them)::

    import interplab
    model, tok = interplab.models.load_encoder()          # embedded MiniLM, offline
    att = interplab.attention.get_attention(model, tok, "The cat sat.")

See README.md for the notebooks and starters built on it.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Every public submodule; each is imported on first attribute access (PEP 562).
_SUBMODULES = {
    "config",
    "errors",
    "hub",
    "models",
    "sites",
    "attention",
    "plots",
    "html",
    "data",
    "lm",
    "toy",
    "explain",
    "evals",
    "text",
    "graph",
    "atlas",
    "features",
    "explorer",
    "interventions",
    "inputs",
    "store",
    "torchutil",
}
# Repository tooling behind the ``interplab`` command (``notebooks``, ``gallery``, ``new``): importable and
# reachable as attributes (a notebook's setup cell calls ``interplab.notebooks``), but not part of the kit's API.
_TOOLING = {"notebooks", "gallery", "starters", "cli"}

__all__ = sorted(_SUBMODULES) + ["__version__", "explore"]


def explore(model, text, *args, **kwargs):
    """The model-internals explorer (see ``interplab.explorer.explore``)."""
    from .explorer import explore as _explore

    return _explore(model, text, *args, **kwargs)


def __getattr__(name: str):
    if name in _SUBMODULES or name in _TOOLING:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'interplab' has no attribute {name!r}")


def __dir__():
    return __all__
