"""Where the kit keeps things and whether it may use the network: one answer for every module.

* ``cache_dir(kind)``: the one cache root (``INTERPLAB_CACHE`` or the platform's user cache
  folder), with one subfolder per kind ("responses", "toy", "activations", ...). Hub files stay
  in the Hugging Face cache, not here.
* ``network_allowed()``: the one offline switch. ``HF_HUB_OFFLINE=1`` or ``INTERPLAB_OFFLINE=1``
  turns every download off; loaders ask this function instead of catching their own errors.
* ``repo_root()`` / ``kit_path(name)``: the source checkout, or the kit files a wheel carries.
* ``load_dotenv()``: API keys from the environment or a ``.env`` file in the working folder.
"""
from __future__ import annotations

import os
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def network_allowed() -> bool:
    """False when the user (or CI) asked for offline mode with HF_HUB_OFFLINE or INTERPLAB_OFFLINE."""
    return not (_flag("HF_HUB_OFFLINE") or _flag("INTERPLAB_OFFLINE"))


def cache_root() -> Path:
    """The kit's cache folder: $INTERPLAB_CACHE if set, else the platform's user cache dir."""
    env = os.environ.get("INTERPLAB_CACHE")
    if env:
        root = Path(env).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("interplab"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(kind: str) -> Path:
    """A subfolder of the cache root for one kind of thing (created on demand)."""
    if not kind or "/" in kind or kind.startswith("."):
        raise ValueError(f"cache kind must be a plain folder name, got {kind!r}")
    path = cache_root() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_lock(name: str, timeout: float = 1800):
    """A lock (``filelock.FileLock``) held while one process fills a cache entry, so two kernels that
    need the same entry at once (two notebooks side by side in ``make demo``, two Jupyter tabs) build it
    once: the second waits, then finds it built. Lock files live in the cache root's ``.locks/``."""
    from filelock import FileLock

    if not name or "/" in name:
        raise ValueError(f"a cache lock name is a plain file name, got {name!r}")
    folder = cache_root() / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / f"{name}.lock"), timeout=timeout)


def repo_root() -> Path | None:
    """The kit's source checkout (folder with notebooks/ and starters/), or None for a wheel install."""
    here = Path(__file__).resolve().parents[2]
    if (here / "notebooks").is_dir() and (here / "pyproject.toml").is_file():
        return here
    return None


def kit_path(*parts: str) -> Path | None:
    """A file or folder of the kit outside the package (``starters``, ``requirements.txt``,
    ``README.md``, ``COMMIT``): from the source checkout when there is one, else from the copy a
    built wheel carries in ``interplab/_kit/`` (setup.py); None when neither has it."""
    root = repo_root()
    for base in ([root] if root is not None else []) + [Path(__file__).resolve().parent / "_kit"]:
        path = base.joinpath(*parts)
        if path.exists():
            return path
    return None


def load_dotenv(path: str | os.PathLike | None = None) -> bool:
    """Read KEY=VALUE lines from a .env file into the environment (existing variables win)."""
    from dotenv import load_dotenv as _load

    return bool(_load(dotenv_path=path, override=False))
