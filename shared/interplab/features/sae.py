"""A small, readable sparse autoencoder (SAE) for model activations, trained on CPU.

An SAE rewrites each activation vector ``x`` as a sparse, non-negative combination of learned
directions (the *features*, rows of the decoder)::

    f     = act(W_enc^T (x - b_dec) + b_enc)      # feature activations, mostly zero
    x_hat = W_dec^T f + b_dec                      # reconstruction

``act`` is ReLU (sparsity from an L1 penalty on ``f``) or TopK (keep the ``k`` largest, so L0 = k
exactly; Gao et al. 2024). The decoder rows are kept at unit norm (otherwise the L1 penalty is
dodged by shrinking ``f`` and growing the decoder), and the part of their gradient that would change
the norm is removed. ``tied=True`` uses ``W_dec = W_enc^T``. Features that stop firing ("dead") are
*resampled*: re-pointed at inputs the SAE reconstructs worst (Bricken et al. 2023).

Inputs are scaled by one constant so that the mean squared norm of centred inputs is ``d_in``; the
reconstruction loss is then about ``1 - fraction of variance explained`` whatever the layer's scale.

    sae, log = train_sae(x, d_sae=4 * x.shape[1], activation="topk", k=32, steps=2000)
    sae_metrics(sae, x)        # {'fve': ..., 'l0': ..., 'dead_fraction': ..., 'mse': ...}
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn


class SAE(nn.Module):
    """Sparse autoencoder with ``d_sae`` features over ``d_in``-dimensional activations."""

    def __init__(self, d_in: int, d_sae: int, *, activation: str = "topk", k: int | None = None, tied: bool = False,
                 l1_coeff: float = 0.3, seed: int = 0):
        super().__init__()
        if activation not in ("relu", "topk"):
            raise ValueError(f"activation must be 'relu' or 'topk', got {activation!r}")
        if d_in < 1 or d_sae < 1:
            raise ValueError(f"d_in and d_sae must be positive, got {d_in}, {d_sae}")
        k = min(32, d_sae) if k is None else int(k)  # TopK's L0; default 32 (or d_sae if smaller)
        if activation == "topk" and not 1 <= k <= d_sae:
            raise ValueError(f"k must be between 1 and d_sae={d_sae}, got {k}")
        self.d_in, self.d_sae, self.activation, self.k, self.tied, self.l1_coeff = d_in, d_sae, activation, k, tied, l1_coeff
        g = torch.Generator().manual_seed(seed)
        # Decoder rows: random unit directions; encoder starts as the decoder's transpose (a good init).
        dec = torch.randn(d_sae, d_in, generator=g)
        dec = dec / dec.norm(dim=1, keepdim=True)
        self.W_enc = nn.Parameter(dec.T.clone().contiguous())  # (d_in, d_sae)
        self.W_dec = None if tied else nn.Parameter(dec.clone())  # (d_sae, d_in)
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.register_buffer("scale", torch.tensor(1.0))  # inputs are multiplied by this before encoding

    # ---- the model -------------------------------------------------------------------------

    @property
    def decoder(self) -> torch.Tensor:
        """Feature directions, one unit-norm row per feature: (d_sae, d_in)."""
        return self.W_enc.T if self.tied else self.W_dec

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations (batch, d_sae) for raw activations ``x`` (batch, d_in)."""
        pre = (x * self.scale - self.b_dec) @ self.W_enc + self.b_enc
        if self.activation == "relu":
            return torch.relu(pre)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter_(-1, top.indices, torch.relu(top.values))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """Reconstruction in the input's own units."""
        return (f @ self.decoder + self.b_dec) / self.scale

    def forward(self, x: torch.Tensor):
        f = self.encode(x)
        return self.decode(f), f

    def loss(self, x: torch.Tensor):
        """(total, reconstruction, sparsity, f) on a batch; reconstruction is MSE in scaled units."""
        f = self.encode(x)
        x_hat_scaled = f @ self.decoder + self.b_dec
        recon = (x_hat_scaled - x * self.scale).pow(2).sum(-1).mean() / self.d_in
        # L1 of f in units of the input norm (sqrt(d_in)), so l1_coeff means the same at any width
        sparsity = f.sum(-1).mean() / self.d_in ** 0.5 if self.activation == "relu" else torch.zeros((), device=x.device)
        return recon + self.l1_coeff * sparsity, recon, sparsity, f

    # ---- the decoder-norm constraint ---------------------------------------------------------

    @torch.no_grad()
    def normalize_decoder(self):
        """Rescale every feature direction to unit norm."""
        if self.tied:
            self.W_enc /= self.W_enc.norm(dim=0, keepdim=True).clamp_min(1e-8)
        else:
            self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def remove_parallel_grad(self):
        """Drop the gradient component along each decoder row (it could only change the row's norm)."""
        if self.tied:
            w, gr = self.W_enc, self.W_enc.grad
            if gr is not None:
                gr -= (gr * w).sum(0, keepdim=True) * w
        elif self.W_dec.grad is not None:
            w, gr = self.W_dec, self.W_dec.grad
            gr -= (gr * w).sum(1, keepdim=True) * w

    # ---- saving -------------------------------------------------------------------------------

    def config(self) -> dict:
        return {"d_in": self.d_in, "d_sae": self.d_sae, "activation": self.activation, "k": self.k,
                "tied": self.tied, "l1_coeff": self.l1_coeff}

    def save(self, path):
        """Save weights and config with safetensors (one file)."""
        from safetensors.torch import save_file
        import json

        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(path),
                  metadata={"config": json.dumps(self.config())})

    @classmethod
    def load(cls, path) -> "SAE":
        import json
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), "pt") as fh:
            cfg = json.loads(fh.metadata()["config"])
        sae = cls(**cfg)
        sae.load_state_dict(load_file(str(path)))
        return sae


# ------------------------------------------------------------------------------- training


def auto_threads(batch: int, d_in: int, d_out: int) -> int | None:
    """1 thread for small matmuls (under ~20M multiply-adds per step) or when the CPU is already busy
    (load average above the core count, where extra threads spin-wait); else torch's default."""
    import os

    if batch * d_in * d_out < 20_000_000:
        return 1
    try:
        busy = os.getloadavg()[0] > (os.cpu_count() or 1)
    except (OSError, AttributeError):  # no load average (Windows)
        busy = False
    return 1 if busy else None


def _as_tensor(x) -> torch.Tensor:
    """Float32 tensor from an array, memmap, tensor or ``Activations`` (all token rows)."""
    if hasattr(x, "values") and hasattr(x, "offsets"):  # an Activations object
        x = x.array()
    t = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x.float()
    if t.dim() != 2 or len(t) == 0:
        raise ValueError(f"SAE inputs must be a non-empty 2-D array (rows x d_in), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("SAE inputs contain NaN or inf")
    return t


@torch.no_grad()
def _resample_dead(sae: SAE, opt, dead: torch.Tensor, x: torch.Tensor, gen: torch.Generator) -> int:
    """Point each dead feature at an input the SAE reconstructs badly (sampled by squared error)."""
    idx = dead.nonzero().flatten()
    if len(idx) == 0:
        return 0
    sample = x[torch.randint(len(x), (min(len(x), 8192),), generator=gen)]
    xs = sample * sae.scale
    x_hat, _ = sae(sample)
    err = (xs - x_hat * sae.scale)
    weight = err.pow(2).sum(-1)
    if weight.sum() <= 0:
        return 0
    pick = torch.multinomial(weight, len(idx), replacement=len(idx) > len(weight), generator=gen)
    dirs = err[pick] / err[pick].norm(dim=-1, keepdim=True).clamp_min(1e-8)
    alive = ~dead
    enc_norm = sae.W_enc[:, alive].norm(dim=0).mean() if alive.any() else torch.tensor(1.0)
    factor = 0.2 if sae.activation == "relu" else 1.0
    if sae.tied:
        sae.W_enc[:, idx] = dirs.T
    else:
        sae.W_dec[idx] = dirs
        sae.W_enc[:, idx] = dirs.T * enc_norm * factor
    sae.b_enc[idx] = 0.0
    # Forget Adam's moments for the re-initialised weights.
    for p, cols in ((sae.W_enc, (slice(None), idx)), (sae.b_enc, (idx,)), (sae.W_dec, (idx,))):
        if p is None or p not in opt.state:
            continue
        for key in ("exp_avg", "exp_avg_sq"):
            opt.state[p][key][cols] = 0.0
    return len(idx)


def train_sae(x, d_sae: int | None = None, *, expansion: int = 4, activation: str = "topk", k: int | None = None,
              tied: bool = False, l1_coeff: float = 0.3, steps: int = 2000, batch_size: int = 512,
              lr: float = 1e-3, resample_every: int = 500, dead_window: int = 500, eval_every: int = 100,
              target_fve: float | None = None, seed: int = 0, progress: bool = True, sae: SAE | None = None,
              threads: int | str | None = "auto"):
    """Train an SAE on activation rows ``x`` (array, memmap, tensor or ``Activations``).

    ``d_sae`` defaults to ``expansion * d_in``. Every ``resample_every`` steps, features that did not
    fire in the last ``dead_window`` steps are resampled (0 turns resampling off; it stops in the
    last 30% of training so they can settle). The learning rate decays linearly over the last 20%.
    ``target_fve`` stops early once the evaluated FVE reaches it. ``threads="auto"`` runs small
    SAEs on one CPU thread (see ``auto_threads``); give a number, or None for torch's default.

    Returns ``(sae, log)``; ``log`` is a DataFrame with ``step, seconds, loss, fve, l0, dead_fraction,
    resampled`` every ``eval_every`` steps (FVE and L0 on a fixed held-in batch of up to 4096 rows).
    """
    data = _as_tensor(x)
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    width = sae.d_sae if sae is not None else (d_sae or expansion * data.shape[1])
    from ..torchutil import limit_threads

    if threads == "auto":
        threads = auto_threads(batch_size, data.shape[1], width)
    with limit_threads(threads):
        return _train(data, d_sae, expansion, activation, k, tied, l1_coeff, steps, batch_size, lr, resample_every,
                      dead_window, eval_every, target_fve, seed, progress, sae)


def _train(data, d_sae, expansion, activation, k, tied, l1_coeff, steps, batch_size, lr, resample_every,
           dead_window, eval_every, target_fve, seed, progress, sae):
    import pandas as pd
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    d_in = data.shape[1]
    if sae is None:
        sae = SAE(d_in, d_sae or expansion * d_in, activation=activation, k=k, tied=tied, l1_coeff=l1_coeff, seed=seed)
        centred = data - data.mean(0)
        sae.scale.fill_(math.sqrt(d_in / max(centred.pow(2).sum(-1).mean().item(), 1e-12)))
        with torch.no_grad():
            sae.b_dec.copy_(data.mean(0) * sae.scale)  # start from the mean: the decoder bias is the data centre
    elif sae.d_in != d_in:
        raise ValueError(f"SAE expects d_in={sae.d_in} but the activations have {d_in} dims")
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    decay_from = int(0.8 * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 1.0 if s < decay_from else max(0.0, (steps - s) / max(1, steps - decay_from)))
    eval_x = data[torch.randperm(len(data), generator=gen)[:4096]]
    last_fired = torch.zeros(sae.d_sae, dtype=torch.long)
    rows, resampled, start = [], 0, time.perf_counter()
    bar = tqdm(range(1, steps + 1), desc=f"SAE {sae.activation} d_sae={sae.d_sae}", disable=not progress)
    for step in bar:
        batch = data[torch.randint(len(data), (batch_size,), generator=gen)]
        loss, recon, _, f = sae.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sae.remove_parallel_grad()
        opt.step()
        sched.step()
        sae.normalize_decoder()
        last_fired[(f > 0).any(0)] = step
        if resample_every and step % resample_every == 0 and step >= dead_window and step < 0.7 * steps:
            resampled += _resample_dead(sae, opt, step - last_fired >= dead_window, data, gen)
        if step % eval_every == 0 or step == steps:
            m = sae_metrics(sae, eval_x)
            dead = float((step - last_fired >= min(dead_window, step)).float().mean()) if step >= dead_window else float("nan")
            rows.append({"step": step, "seconds": time.perf_counter() - start, "loss": float(loss.detach()),
                         "fve": m["fve"], "l0": m["l0"], "dead_fraction": dead, "resampled": resampled})
            bar.set_postfix(fve=f"{m['fve']:.3f}", l0=f"{m['l0']:.1f}")
            if target_fve is not None and m["fve"] >= target_fve:
                break
    bar.close()
    sae.eval()
    return sae, pd.DataFrame(rows)


@torch.no_grad()
def sae_metrics(sae: SAE, x, batch_size: int = 4096) -> dict:
    """Reconstruction and sparsity of ``sae`` on rows ``x``.

    ``fve``: fraction of variance explained, ``1 - sum|x - x_hat|^2 / sum|x - mean(x)|^2``;
    ``l0``: mean number of active features per row; ``dead_fraction``: features that never fire on
    ``x``; ``mse``: mean squared error per element (input units).
    """
    data = _as_tensor(x)
    mean = data.mean(0)
    sse = var = l0 = 0.0
    fired = torch.zeros(sae.d_sae, dtype=torch.bool)
    for i in range(0, len(data), batch_size):
        b = data[i:i + batch_size]
        x_hat, f = sae(b)
        sse += (b - x_hat).pow(2).sum().item()
        var += (b - mean).pow(2).sum().item()
        l0 += (f > 0).sum().item()
        fired |= (f > 0).any(0)
    return {"fve": 1.0 - sse / max(var, 1e-12), "l0": l0 / len(data),
            "dead_fraction": float((~fired).float().mean()), "mse": sse / data.numel()}


# ------------------------------------------------------------------------------- spliced loss


def _lm_loss(logits: torch.Tensor, tokens: torch.Tensor) -> float:
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                             tokens[:, 1:].reshape(-1)).item()


@torch.no_grad()
def spliced_loss(model, tokens, site: str, sae: SAE, tokenizer=None) -> dict:
    """A causal LM's next-token loss with ``site`` replaced by the SAE's reconstruction (any model the kit
    loads: toy, smollm2, GPT-2, ...; sites through ``interplab.sites``).

    Returns ``clean`` (unchanged model), ``spliced`` (SAE reconstruction in place of the site),
    ``zero_ablated`` (site set to zero) and ``loss_recovered = (zero - spliced) / (zero - clean)``:
    1.0 means the SAE keeps everything the model needs from that site, 0.0 no better than deleting it.
    ``tokens`` is a (batch, seq) LongTensor (unpadded), or a list of texts with ``tokenizer``.
    """
    from ..sites import wrap

    sm = wrap(model, tokenizer)
    if sm.adapter.kind == "encoder":
        raise ValueError(f"spliced_loss needs a causal LM (next-token loss); {sm.adapter.name} is an encoder")
    site = sm.canonical(site)
    tokens = sm._tokens(tokens)
    if tokens.shape[1] < 2:
        raise ValueError("spliced_loss needs sequences of at least 2 tokens")

    def splice(t, hook):
        return sae(t.reshape(-1, t.shape[-1]).float())[0].reshape(t.shape).to(t.dtype)

    def zero(t, hook):
        return torch.zeros_like(t)

    clean = _lm_loss(sm(tokens), tokens)
    spliced = _lm_loss(sm.run_with_hooks(tokens, fwd_hooks=[(site, splice)]), tokens)
    zeroed = _lm_loss(sm.run_with_hooks(tokens, fwd_hooks=[(site, zero)]), tokens)
    denom = zeroed - clean
    return {"clean": clean, "spliced": spliced, "zero_ablated": zeroed,
            "loss_recovered": (zeroed - spliced) / denom if abs(denom) > 1e-9 else float("nan")}


def pca_baseline(x_train, x_test, k: int) -> dict:
    """The baseline an SAE with ``k`` active features per row must beat: PCA with ``k`` components fitted on
    ``x_train``, scored on ``x_test`` with :func:`sae_metrics`' formula (``fve``, ``mse``). A TopK SAE spends
    ``k`` numbers per row too, but may pick a different ``k`` directions for every row."""
    from sklearn.decomposition import PCA

    xtr = _as_tensor(x_train).double().numpy()
    xte = _as_tensor(x_test).double().numpy()
    k = int(min(k, xtr.shape[1], len(xtr)))
    pca = PCA(k, random_state=0).fit(xtr)
    rec = pca.inverse_transform(pca.transform(xte))
    sse = float(((xte - rec) ** 2).sum())
    var = float(((xte - xte.mean(0)) ** 2).sum())
    return {"fve": 1.0 - sse / max(var, 1e-12), "mse": sse / xte.size, "components": k}
