"""Downloads from the Hugging Face Hub, decided in one place.

``fetch`` is the only function in the kit that touches the network for data files. It honours
the offline switch (``interplab.config.network_allowed``), uses the standard Hugging Face cache
and a pinned revision, optionally checks a sha256 and re-downloads a corrupt file, and turns
every "cannot reach the hub" failure into one exception, :class:`OfflineError`, so callers can
fall back to bundled samples without catching network errors themselves.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from . import config


class OfflineError(RuntimeError):
    """The file is not cached and the hub cannot be reached (or offline mode is on)."""


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch(
    repo_id: str,
    filename: str,
    *,
    revision: str | None = None,
    repo_type: str = "dataset",
    sha256: str | None = None,
    cache_only: bool = False,
) -> Path:
    """Return a local path to ``repo_id/filename`` at ``revision``, downloading it if allowed.

    A cached copy is used without any network call. If ``sha256`` is given and the file does not
    match (truncated or corrupt download), the copy is deleted and fetched once more; a second
    mismatch raises ``ValueError`` and nothing is parsed.
    """
    import huggingface_hub
    from huggingface_hub import hf_hub_download

    online = config.network_allowed() and not cache_only
    kwargs = dict(repo_id=repo_id, filename=filename, revision=revision, repo_type=repo_type)
    for attempt in range(2):
        try:
            path = Path(hf_hub_download(**kwargs, local_files_only=True))
        except Exception:
            path = None
        if path is None:
            if not online:
                raise OfflineError(
                    f"{repo_id}/{filename} is not in the Hugging Face cache and downloads are off "
                    "(HF_HUB_OFFLINE/INTERPLAB_OFFLINE)"
                )
            try:
                path = Path(hf_hub_download(**kwargs))
            except (huggingface_hub.errors.EntryNotFoundError, huggingface_hub.errors.RepositoryNotFoundError):
                raise
            except Exception as exc:  # connection refused, DNS, timeouts, proxy errors...
                raise OfflineError(
                    f"could not download {repo_id}/{filename} from the Hugging Face Hub "
                    f"({type(exc).__name__})"
                ) from exc
        if sha256 is None or sha256_of(path) == sha256:
            return path
        # Corrupt or truncated: drop the cached file (and its blob) and try once more.
        _remove_cached(path)
        if not online:
            raise OfflineError(f"cached {repo_id}/{filename} failed its checksum and downloads are off")
    raise ValueError(f"{repo_id}/{filename} failed its sha256 check twice; nothing was loaded")


def _remove_cached(path: Path) -> None:
    real = path.resolve()
    for p in {path, real}:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
