"""Downloads from the Hugging Face Hub, decided in one place.

``fetch`` is the only function in the kit that downloads a hub file. It honours the offline switch
(``interplab.config.network_allowed``), uses the standard Hugging Face cache (``HF_HOME`` /
``HF_HUB_CACHE``, so ``HF_ENDPOINT`` mirrors work too) and a pinned revision, and checks every file
it returns against a checksum: the kit's pinned sha256 where one is known, else the hub's own ETag
(sha256 for LFS files, git blob sha1 for the others), offline too. A file that fails is deleted and
fetched once more; nothing that failed is ever returned or left in the cache.

Every failure is ONE line, in one of three exceptions:

* :class:`OfflineError`: not cached and the hub cannot be reached: offline mode (:class:`NotCachedError`,
  :class:`CorruptCacheError` when the cached copy failed its checksum and was removed), refused or dropped
  connections, a hub that does not start sending within ``INTERPLAB_HUB_TIMEOUT`` seconds (default
  20), a transfer that stalls (``HF_HUB_DOWNLOAD_TIMEOUT`` per read, then huggingface_hub's retries);
* :class:`HubNotFoundError`: the hub answered that the repo, the revision or the file does not exist;
* :class:`ChecksumError`: the file failed its checksum twice.

``fetch_snapshot`` downloads the files a model needs (config, tokenizer, weights) the same way;
``fetch_github`` one file of a GitHub repo at a pinned commit, with its sha256, into the kit's cache.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from pathlib import Path

from . import config
from .errors import InterplabError

_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class HubError(InterplabError, RuntimeError):
    """A hub file could not be provided (base class; the message is one line)."""


class OfflineError(HubError):
    """The file is not cached and the hub cannot be reached (or offline mode is on)."""


class NotCachedError(OfflineError):
    """Downloads are off and the file (or snapshot) is not in the cache."""


class CorruptCacheError(NotCachedError):
    """Downloads are off and the cached copy failed its checksum (it was removed)."""


class HubNotFoundError(HubError, LookupError):
    """The hub says the repo, the revision or the file does not exist (HTTP 401/404)."""


class ChecksumError(HubError, ValueError):
    """A downloaded file failed its checksum twice; nothing was kept."""


def timeout() -> float:
    """Seconds the hub has to answer (and start sending a file) before a download gives up."""
    try:
        return float(os.environ.get("INTERPLAB_HUB_TIMEOUT", "20"))
    except ValueError:
        return 20.0


def _digest(h, path: str | Path, chunk: int) -> str:
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    return _digest(hashlib.sha256(), path, chunk)


def git_sha1_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """The git blob id of a file (what the hub sends as ETag for files not stored in LFS)."""
    return _digest(hashlib.sha1(b"blob %d\0" % Path(path).stat().st_size), path, chunk)


def verify(path: Path, sha256: str | None = None) -> str | None:
    """None if ``path`` matches ``sha256`` (when given) and the ETag its cache blob is named after;
    else what is wrong, in a few words."""
    if sha256 is not None:
        got = sha256_of(path)
        return None if got == sha256 else f"sha256 {got[:12]}... is not the pinned {sha256[:12]}..."
    etag = Path(os.path.realpath(path)).name
    if _HEX64.fullmatch(etag):
        got = sha256_of(path)
        return None if got == etag else f"sha256 {got[:12]}... is not the hub's {etag[:12]}..."
    if _HEX40.fullmatch(etag):
        got = git_sha1_of(path)
        return None if got == etag else f"git sha1 {got[:12]}... is not the hub's {etag[:12]}..."
    return None  # a blob name that is no checksum (e.g. a custom endpoint's opaque ETag): size-checked only


def _where() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _storage(repo_id: str, repo_type: str) -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / f"{repo_type}s--{repo_id.replace('/', '--')}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _download(kwargs: dict, repo_type: str):
    """hf_hub_download in a worker thread, given up when the hub has not started sending the file
    after :func:`timeout` seconds: huggingface_hub itself would retry an unanswered HEAD for minutes.
    Once bytes flow, its own read timeout (``HF_HUB_DOWNLOAD_TIMEOUT``) and retries take over.

    A given-up attempt finishes in the background (huggingface_hub's retries, about 25 s): it can
    only complete a download (atomically, checked again on the next fetch) or fail, never leave a
    partial file."""
    import huggingface_hub

    box: dict = {}

    def work():
        try:
            box["path"] = huggingface_hub.hf_hub_download(**kwargs, etag_timeout=timeout())
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=work, daemon=True, name="interplab-hub-download")
    worker.start()
    blobs = _storage(kwargs["repo_id"], repo_type) / "blobs"
    deadline = time.monotonic() + timeout()
    while worker.is_alive():
        worker.join(0.1)
        if not worker.is_alive() or (blobs.is_dir() and any(blobs.glob("*.incomplete"))):
            break
        if time.monotonic() > deadline:
            raise OfflineError(
                f"could not download {kwargs['repo_id']}/{kwargs['filename']}: no answer from the hub at {_where()} "
                f"for {timeout():.0f} s (down, stalled or too slow; INTERPLAB_HUB_TIMEOUT); nothing was kept, try again")
    worker.join()
    if "error" in box:
        raise box["error"]
    return Path(box["path"])


def _remove_cached(path: Path) -> None:
    real = Path(os.path.realpath(path))
    for p in {Path(path), real}:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


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

    A cached copy is used without any network call once it passes its checksum (``sha256`` when
    given, else the ETag). A file that fails is deleted and fetched once more; a second failure
    raises :class:`ChecksumError` and nothing is kept.
    """
    import huggingface_hub
    from huggingface_hub import errors

    online = config.network_allowed() and not cache_only
    kwargs = dict(repo_id=repo_id, filename=filename, revision=revision, repo_type=repo_type)
    where = f"{repo_id}/{filename}" + (f"@{revision[:10]}" if revision else "")
    problem = None
    for attempt in range(2):
        try:
            path = Path(huggingface_hub.hf_hub_download(**kwargs, local_files_only=True))
        except Exception:
            path = None
        if path is None:
            if not online:
                if problem:
                    raise CorruptCacheError(f"cached {where} failed its checksum ({problem}) and downloads are off; "
                                       "it was removed")
                raise NotCachedError(
                    f"{where} is not in the Hugging Face cache and downloads are off "
                    "(HF_HUB_OFFLINE/INTERPLAB_OFFLINE): run once online, e.g. `interplab datasets download`")
            try:
                path = _download(kwargs, repo_type)
            except errors.RevisionNotFoundError as exc:
                raise HubNotFoundError(f"{repo_id}: revision {revision!r} does not exist on {_where()}") from exc
            except errors.RepositoryNotFoundError as exc:
                raise HubNotFoundError(f"{repo_type} repo {repo_id!r} does not exist on {_where()} "
                                       "(or it is private/gated)") from exc
            except errors.EntryNotFoundError as exc:
                raise HubNotFoundError(f"{where}: no such file on {_where()} (EntryNotFoundError)") from exc
            except HubError:
                raise
            except Exception as exc:  # refused or dropped connections, timeouts, DNS, proxies, short reads
                raise OfflineError(f"could not download {where} from {_where()} ({_one_line(exc)}); "
                                   "nothing was kept, try again") from exc
        problem = verify(path, sha256)
        if problem is None:
            return path
        _remove_cached(path)  # corrupt or truncated: drop the snapshot link and its blob, then try once more
    raise ChecksumError(f"{where} failed its checksum twice ({problem}); nothing was kept")


#: files a model folder needs; weights are *.safetensors, else *.bin (never both, never other formats)
MODEL_FILES = re.compile(r"(^|/)([^/]+\.(json|txt|model|jinja|tiktoken)|tokenizer[^/]*)$")


def fetch_snapshot(repo_id: str, *, revision: str | None = None, repo_type: str = "model") -> Path:
    """Download the files a model needs (configs, tokenizer, safetensors weights) into the standard
    cache through :func:`fetch` (checksums, one-line errors); return the snapshot folder.

    Offline, the cached snapshot is returned if it has a config; otherwise :class:`OfflineError`.
    """
    from huggingface_hub import HfApi, errors, snapshot_download

    if not config.network_allowed():
        try:
            return Path(snapshot_download(repo_id, revision=revision, repo_type=repo_type, local_files_only=True))
        except Exception as exc:
            raise NotCachedError(f"{repo_id} is not in the Hugging Face cache and downloads are off "
                               "(HF_HUB_OFFLINE/INTERPLAB_OFFLINE): run once online") from exc
    try:
        info = HfApi().repo_info(repo_id, revision=revision, repo_type=repo_type, timeout=timeout())
    except errors.RevisionNotFoundError as exc:
        raise HubNotFoundError(f"{repo_id}: revision {revision!r} does not exist on {_where()}") from exc
    except errors.RepositoryNotFoundError as exc:
        raise HubNotFoundError(f"{repo_type} repo {repo_id!r} does not exist on {_where()} (or it is private/gated)") from exc
    except Exception as exc:
        raise OfflineError(f"could not reach {_where()} for {repo_id} ({_one_line(exc)})") from exc
    names = [s.rfilename for s in info.siblings or []]
    weights = [n for n in names if n.endswith(".safetensors")] or [n for n in names if n.endswith(".bin")]
    wanted = sorted({n for n in names if MODEL_FILES.search(n)} | set(weights))
    if "config.json" not in wanted:
        raise HubNotFoundError(f"{repo_id}@{info.sha[:10]} has no config.json: not a model folder")
    path = None
    for name in wanted:
        path = fetch(repo_id, name, revision=info.sha, repo_type=repo_type)
    # the snapshot folder: .../snapshots/<sha>/ (``path`` is one of its files)
    snap = Path(path)
    for _ in Path(wanted[-1]).parts:
        snap = snap.parent
    if revision is None or revision != info.sha:  # let later offline loads find it by its branch name
        ref = _storage(repo_id, repo_type) / "refs" / (revision or "main")
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(info.sha)
    return snap


def github_raw() -> str:
    """Base of raw GitHub file URLs (``INTERPLAB_GITHUB_RAW`` points it at a mirror, e.g. in tests)."""
    return os.environ.get("INTERPLAB_GITHUB_RAW", "https://raw.githubusercontent.com").rstrip("/")


def fetch_github(repo: str, commit: str, path: str, dest: str | Path, *, sha256: str) -> Path:
    """Download ``path`` of GitHub repo ``repo`` at ``commit`` (``{github_raw()}/{repo}/{commit}/{path}``,
    the raw.githubusercontent.com scheme) to ``dest``, checked against ``sha256``.

    A cached ``dest`` that matches is used without a network call. Bytes go to a temporary file that
    replaces ``dest`` only after the checksum passes, so a failed or interrupted download leaves
    nothing. Raises :class:`OfflineError` (offline, unreachable, HTTP error), :class:`ChecksumError`.
    """
    import urllib.error
    import urllib.request

    dest = Path(dest)
    if dest.is_file() and sha256_of(dest) == sha256:
        return dest
    url = f"{github_raw()}/{repo}/{commit}/{path}"
    if not config.network_allowed():
        raise NotCachedError(f"{repo}@{commit[:7]}/{path} is not cached and downloads are off (HF_HUB_OFFLINE/INTERPLAB_OFFLINE)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout()) as r, open(tmp, "wb") as f:
                while block := r.read(1 << 16):
                    f.write(block)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise HubNotFoundError(f"{url}: 404, no such file at that commit") from None
            raise OfflineError(f"could not download {url} (HTTP {exc.code}); nothing was kept") from None
        except (OSError, urllib.error.URLError) as exc:
            raise OfflineError(f"could not download {url} ({_one_line(exc)}); nothing was kept") from None
        got = sha256_of(tmp)
        if got != sha256:
            raise ChecksumError(f"{url}: sha256 {got[:12]}... is not the pinned {sha256[:12]}...; nothing was kept")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
