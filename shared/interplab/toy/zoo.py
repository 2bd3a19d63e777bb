"""The zoo of 12 toy models (attention-only, GeLU, SoLU x 1-4 layers), built on CPU and cached.

    model, tok = load("attn-only-2l")     # trains on first use (progress bar), then loads from the cache
    build()                               # all 12 (also: `interplab toy build`)
    list_models()                         # a table of names, shapes, recipes and whether each is built

Each model is saved as ``model.safetensors`` + ``config.json`` (+ ``history.json``, its loss curve)
in ``interplab.config.cache_dir("toy")/NAME``. The recipe (shape, task mix, steps) is data in
``RECIPES``; a cached model built with another recipe version is rebuilt.

Attention-only models are trained on the induction task only (they exist to study attention
circuits). GeLU and SoLU models see the same induction data plus the facts task, so their MLP
neurons have known features to detect.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .. import config
from .tokenizer import ToyTokenizer

RECIPE_VERSION = 1
# One head per layer: the textbook circuit (layer 0: previous-token head, layer 1: induction head) with
# no redundant copies, so ablating the induction head really breaks induction (criterion (c)). In our
# runs with 4 heads per layer, two or more layer-1 heads shared the work and ablating the best one left
# 0.91-0.96 accuracy; with 2 heads, about 0.8. No LayerNorm: direct logit attribution is exact (with a
# final LayerNorm, one seed learned an induction variant that reads tokens 2-3 back instead of 1).
D_MODEL, N_HEADS, D_HEAD, D_MLP, N_CTX = 64, 1, 64, 256, 64
KINDS = {"attn-only": None, "gelu": "gelu", "solu": "solu"}
NAMES = [f"{kind}-{n}l" for kind in KINDS for n in (1, 2, 3, 4)]

_STEPS = {1: 500, 2: 1200, 3: 1200, 4: 1200}


def recipe(name: str) -> dict:
    """Shape and training recipe of a zoo model (raises ValueError for an unknown name)."""
    if name not in NAMES:
        raise ValueError(f"unknown toy model {name!r}; choose from {', '.join(NAMES)}")
    kind, layers = name.rsplit("-", 1)
    n_layers = int(layers[:-1])
    act_fn = KINDS[kind]
    mix = {"induction": 1.0} if act_fn is None else {"induction": 0.75, "facts": 0.25}
    return {
        "config": dict(n_layers=n_layers, d_model=D_MODEL, n_heads=N_HEADS, d_head=D_HEAD,
                       d_mlp=0 if act_fn is None else D_MLP, n_ctx=N_CTX, d_vocab=len(ToyTokenizer()),
                       act_fn=act_fn, normalization=None, name=name),
        "train": dict(mix=mix, steps=_STEPS[n_layers], batch_size=32, lr=3e-3, weight_decay=0.01, warmup=50,
                      decay_frac=0.3),
    }


RECIPES = {name: recipe(name) for name in NAMES}


def _folder(name: str) -> Path:
    return config.cache_dir("toy") / name


def _seed_folder(name: str, seed: int) -> Path:
    """Cache folder of a zoo model trained with ``seed`` (seed 0 is the model's own folder)."""
    return _folder(name) if seed == 0 else config.cache_dir("toy") / f"{name}-seed{seed}"


def _is_built(name: str, seed: int = 0) -> bool:
    folder = _seed_folder(name, seed)
    cfg_path = folder / "config.json"
    if not (cfg_path.is_file() and (folder / "model.safetensors").is_file()):
        return False
    try:
        extra = json.loads(cfg_path.read_text()).get("extra", {})
    except (OSError, json.JSONDecodeError):
        return False
    return extra.get("recipe_version") == RECIPE_VERSION


def train_model(name: str, seed: int = 0, progress: bool = True, position: int = 0, **overrides):
    """Build one zoo model from its recipe (no cache): returns ``(model, history)``."""
    from .model import ToyConfig, ToyTransformer
    from .tasks import InductionTask
    from .train import train

    r = recipe(name)
    cfg = ToyConfig(**r["config"], seed=seed)
    cfg.extra = {"recipe_version": RECIPE_VERSION, "train": r["train"],
                 "eval_lengths": list(InductionTask(n_ctx=cfg.n_ctx).eval_lengths)}
    model = ToyTransformer(cfg)
    kwargs = {**r["train"], **overrides}
    mix = kwargs.pop("mix")
    history = train(model, mix, seed=seed, progress=progress, desc=f"building toy model {name}", position=position, **kwargs)
    return model, history


def _build_one(name: str, seed: int, progress: bool, position: int = 0, force: bool = False) -> Path:
    """Train one model and write it atomically into the cache (a temporary folder renamed into place);
    under the cache lock, so two processes that need it at once train it once."""
    folder = _seed_folder(name, seed)
    with config.cache_lock(f"toy-{folder.name}"):
        if not force and _is_built(name, seed):  # built by another process while this one waited
            return folder
        return _train_into(name, seed, progress, position, folder)


def _train_into(name: str, seed: int, progress: bool, position: int, folder: Path) -> Path:
    model, history = train_model(name, seed=seed, progress=progress, position=position)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    model.save(tmp)
    (tmp / "history.json").write_text(json.dumps(history.to_dict()))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def build(names=None, *, force: bool = False, seed: int = 0, progress: bool = True, workers: int = 1) -> list[Path]:
    """Train and cache zoo models (all 12 by default); already-built ones are skipped unless ``force``.

    ``workers=2`` trains two models at a time in separate processes (each uses one CPU thread).
    """
    if isinstance(names, str):
        names = [names]
    names = list(names or NAMES)
    for n in names:
        recipe(n)  # validate every name before training anything
    todo = [n for n in names if force or not _is_built(n, seed)]
    if workers > 1 and len(todo) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # biggest first, so the two workers finish together
        todo.sort(key=lambda n: -RECIPES[n]["train"]["steps"] * RECIPES[n]["config"]["n_layers"])
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_build_one, n, seed, progress, i % workers, force) for i, n in enumerate(todo)]
            for f in futures:
                f.result()
    else:
        for n in todo:
            _build_one(n, seed, progress, force=force)
    return [_seed_folder(n, seed) for n in names]


def load(name: str, *, seed: int = 0, progress: bool = True):
    """``(model, tokenizer)`` for a zoo model; builds and caches it on first use."""
    from .model import ToyTransformer
    from .train import TrainHistory

    if isinstance(name, str) and name.startswith("toy:"):
        name = name[4:]
    folder = build([name], seed=seed, progress=progress)[0]
    model = ToyTransformer.load(folder)
    hist = folder / "history.json"
    model.history = TrainHistory.from_dict(json.loads(hist.read_text())) if hist.is_file() else None
    model.interplab_name = f"toy:{name}"
    return model, ToyTokenizer(model_max_length=model.cfg.n_ctx)


def list_models():
    """The 12 models as a DataFrame: shape, task mix, training steps, whether built, and the original's shape."""
    import pandas as pd

    originals = {o["name"]: o for o in original_configs()}
    rows = []
    for name in NAMES:
        r = RECIPES[name]
        c, t = r["config"], r["train"]
        o = originals[name]
        rows.append({"name": name, "n_layers": c["n_layers"], "act_fn": c["act_fn"] or "-", "d_model": c["d_model"],
                     "heads": f"{c['n_heads']}x{c['d_head']}", "d_mlp": c["d_mlp"], "n_ctx": c["n_ctx"],
                     "d_vocab": c["d_vocab"], "tasks": "+".join(t["mix"]), "steps": t["steps"],
                     "built": _is_built(name), "original": f"d_model {o['d_model']}, {o['n_heads']}x{o['d_head']} heads"})
    return pd.DataFrame(rows).set_index("name")


def original_configs() -> list[dict]:
    """Configs of the 12 original toy models (kept as data; see ``original_configs.json``)."""
    data = json.loads((Path(__file__).with_name("original_configs.json")).read_text())
    return data["models"]


def cli(argv: list[str]) -> int:
    """``interplab toy build [NAME ...] [--force]`` / ``interplab toy list``."""
    import argparse

    parser = argparse.ArgumentParser(prog="interplab toy", description="Build or list the toy transformer zoo.")
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="train and cache toy models (all 12 by default)")
    b.add_argument("names", nargs="*", help=f"models to build (default: all): {', '.join(NAMES)}")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    b.add_argument("--workers", type=int, default=2, help="models trained at once, one CPU thread each (default 2)")
    sub.add_parser("list", help="list the zoo and which models are built")
    args = parser.parse_args(argv)
    if args.action == "list":
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(list_models())
        print(f"cache: {config.cache_dir('toy')}")
        return 0
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        print(f"interplab toy: unknown model(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
        return 2
    if args.workers < 1:
        print(f"interplab toy: --workers must be >= 1, got {args.workers}")
        return 2
    for folder in build(args.names or None, force=args.force, workers=args.workers):
        print(f"built {folder.name}: {folder}")
    return 0
