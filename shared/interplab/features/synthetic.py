"""A toy model whose true features are known, to check that an SAE finds them.

``toy_superposition()`` trains the toy model of Elhage et al. (2022), "Toy Models of Superposition":
``n_features`` sparse inputs are squeezed into ``d_hidden < n_features`` dimensions and read out
again::

    x   in R^n_features, each x_i = 0 with probability 1 - p, else uniform(0, 1)   (sparse, independent)
    h   = W x                          (the hidden layer: the activations we give the SAE)
    out = ReLU(W^T h + b)              (trained to reproduce x)

What "true features" means here: the hidden activation is *exactly* ``h = sum_i x_i W[:, i]``, a
sparse non-negative combination of the columns of ``W``. So the true feature directions are the
unit-normalised columns ``W[:, i]``, and the true feature activations are ``x_i * |W[:, i]|``. A
feature the model chose not to represent (column norm below ``min_norm``; it happens when features
are too dense) is excluded and counted in ``dropped``. With more features than dimensions the
directions cannot be orthogonal (superposition), so no neuron basis or PCA recovers them; a
sparse autoencoder can, because each ``h`` uses only a few of them at a time.

``match_features(true, learned)`` scores a dictionary: for each true direction, the best cosine
similarity with any learned direction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ToySuperposition:
    """A trained toy model: ``W`` (d_hidden x n_features), its bias, and how to sample its activations."""

    W: np.ndarray
    b: np.ndarray
    p_active: float
    min_norm: float
    final_loss: float
    seed: int

    @property
    def n_features(self) -> int:
        return self.W.shape[1]

    @property
    def d_hidden(self) -> int:
        return self.W.shape[0]

    @property
    def represented(self) -> np.ndarray:
        """Indices of the input features the model represents (column norm >= min_norm)."""
        return np.flatnonzero(np.linalg.norm(self.W, axis=0) >= self.min_norm)

    @property
    def dropped(self) -> int:
        return self.n_features - len(self.represented)

    @property
    def true_features(self) -> np.ndarray:
        """Unit true feature directions in the hidden space, one row each: (n_represented, d_hidden)."""
        cols = self.W[:, self.represented]
        return (cols / np.linalg.norm(cols, axis=0, keepdims=True)).T

    def sample_inputs(self, n: int, seed: int = 1) -> np.ndarray:
        """``n`` sparse input vectors x (n x n_features)."""
        rng = np.random.default_rng(seed)
        active = rng.random((n, self.n_features)) < self.p_active
        return (active * rng.random((n, self.n_features))).astype(np.float32)

    def sample(self, n: int, seed: int = 1):
        """``(h, x)``: hidden activations (n x d_hidden) and the inputs that made them."""
        x = self.sample_inputs(n, seed)
        return x @ self.W.T, x


def toy_superposition(n_features: int = 48, d_hidden: int = 24, p_active: float = 0.04, steps: int = 2000,
                      batch_size: int = 1024, lr: float = 3e-3, min_norm: float = 0.5, seed: int = 0,
                      progress: bool = True) -> ToySuperposition:
    """Train the toy model of superposition (a few seconds on CPU) and return it."""
    import torch
    from tqdm.auto import tqdm

    from ..torchutil import limit_threads
    from .sae import auto_threads

    with limit_threads(auto_threads(batch_size, d_hidden, n_features)):
        return _train(n_features, d_hidden, p_active, steps, batch_size, lr, min_norm, seed, progress)


def _train(n_features, d_hidden, p_active, steps, batch_size, lr, min_norm, seed, progress):
    import torch
    from tqdm.auto import tqdm

    if d_hidden < 1 or n_features < 1:
        raise ValueError("n_features and d_hidden must be positive")
    if not 0 < p_active <= 1:
        raise ValueError(f"p_active must be in (0, 1], got {p_active}")
    g = torch.Generator().manual_seed(seed)
    W = torch.nn.Parameter(torch.randn(d_hidden, n_features, generator=g) * (1 / d_hidden) ** 0.5)
    b = torch.nn.Parameter(torch.zeros(n_features))
    opt = torch.optim.AdamW([W, b], lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    loss = torch.tensor(0.0)
    for _ in tqdm(range(steps), desc="toy model of superposition", disable=not progress):
        active = torch.rand(batch_size, n_features, generator=g) < p_active
        x = active * torch.rand(batch_size, n_features, generator=g)
        out = torch.relu((x @ W.T) @ W + b)
        loss = (out - x).pow(2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return ToySuperposition(W.detach().numpy().copy(), b.detach().numpy().copy(), p_active, min_norm,
                            float(loss.detach()), seed)


def match_features(true, learned) -> np.ndarray:
    """For each true direction (row of ``true``), the max cosine similarity with any row of ``learned``."""
    t = np.asarray(true, dtype=np.float64)
    l = np.asarray(learned, dtype=np.float64)  # noqa: E741
    if t.ndim != 2 or l.ndim != 2 or t.shape[1] != l.shape[1]:
        raise ValueError(f"need two 2-D arrays with the same width, got {t.shape} and {l.shape}")
    t = t / np.linalg.norm(t, axis=1, keepdims=True).clip(1e-12)
    l = l / np.linalg.norm(l, axis=1, keepdims=True).clip(1e-12)
    return (t @ l.T).max(axis=1)


def plot_feature_match(true, learned, ax=None, threshold: float = 0.9):
    """Cosine similarity of every true feature with its best-matching learned feature, sorted."""
    import matplotlib.pyplot as plt

    best = np.sort(match_features(true, learned))[::-1]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    ax.bar(np.arange(len(best)), best, color=np.where(best >= threshold, "tab:green", "tab:red"))
    ax.axhline(threshold, color="grey", ls="--", lw=1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("true feature (sorted)")
    ax.set_ylabel("max cosine with a learned feature")
    ax.set_title(f"{(best >= threshold).mean():.0%} of {len(best)} true features recovered (cos >= {threshold})")
    return ax
