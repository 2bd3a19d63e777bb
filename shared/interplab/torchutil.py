"""Small torch utilities the whole kit shares: precision, CPU threads, a weights fingerprint.

    with torchutil.autocast(torchutil.resolve_precision("auto")):   # bf16 only where it is fast
        ...
    with torchutil.limit_threads(1):                                # tiny work: one CPU thread
        ...
    key = torchutil.weights_fingerprint(model)                      # cache key that changes on retraining

torch is imported inside each function, so importing this module stays cheap.
"""
from __future__ import annotations

import contextlib

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
    import torch

    if resolve_precision(precision, device) == "float32":
        return contextlib.nullcontext()
    return torch.autocast("cuda" if str(device).startswith("cuda") else "cpu", dtype=torch.bfloat16)


@contextlib.contextmanager
def limit_threads(threads: int | None = 1):
    """Run torch and the BLAS/OpenMP pools (numpy, t-SNE) on ``threads`` CPU threads inside the block,
    restored afterwards; ``None`` (or 0) leaves them alone.

    Small matrices gain nothing from a second thread and lose a lot when cores are shared (an idle
    thread spin-waits): for small work one thread is as fast as several on an idle laptop and up to
    ten times faster on a busy shared machine.
    """
    if not threads:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        with threadpool_limits(int(threads)):
            yield
    finally:
        torch.set_num_threads(old)


def weights_fingerprint(model, name: str = "") -> str:
    """A cheap digest of a torch model's weights (16 hex characters), so a retrained or fine-tuned
    model never reads another model's cache.

    Hashes ``name`` (e.g. ``models.display_name(model)``), then every state-dict entry's name, shape
    and dtype and about 1,000 evenly spaced values of it (training changes nearly every weight):
    milliseconds, instead of reading every weight.
    """
    import hashlib

    import torch

    h = hashlib.blake2b(str(name).encode(), digest_size=8)
    with torch.no_grad():
        for key, p in model.state_dict().items():
            flat = p.detach().reshape(-1)
            h.update(f"{key}:{tuple(p.shape)}:{p.dtype};".encode())
            if flat.numel():
                h.update(flat[:: max(1, flat.numel() // 1024)].float().cpu().numpy().tobytes())
    return h.hexdigest()
