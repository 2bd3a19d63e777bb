"""Embeddings drawn in 2-D: ``project`` (PCA, t-SNE, UMAP) and ``plot_map``."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def project(embeddings, method: str = "auto", *, random_state: int = 0, perplexity: float = 30.0,
            **kwargs) -> np.ndarray:
    """2-D coordinates (float32, n x 2) of vectors (n x d): sentence embeddings, activations, anything.

    ``"pca"``; ``"tsne"`` (scikit-learn; vectors of more than 50 dimensions go through PCA to 50 first,
    ``perplexity`` is capped at (n - 1) / 3 for small n); ``"umap"`` (needs umap-learn); ``"auto"``:
    UMAP when umap-learn is installed and n >= 20, else PCA (fast and deterministic; ask for t-SNE when
    neighbourhoods matter, as an activation atlas does). The kit's one projection: ``atlas.layout`` and
    ``plot_map`` call it. One or zero rows give zeros. ``kwargs`` go to the reducer (e.g. ``max_iter=``
    for t-SNE, ``n_neighbors=`` for UMAP).
    """
    X = np.asarray(embeddings, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (texts x dimensions), got shape {X.shape}")
    method = _map_method(method, len(X))
    if len(X) < 2:
        return np.zeros((len(X), 2), dtype=np.float32)
    from sklearn.decomposition import PCA

    if method == "pca":
        k = min(2, X.shape[1], len(X))
        Y = PCA(n_components=k, random_state=random_state, **kwargs).fit_transform(X)
        if k < 2:
            Y = np.hstack([Y, np.zeros((len(X), 2 - k))])
        return Y.astype(np.float32)
    if method == "tsne":
        from sklearn.manifold import TSNE

        x = PCA(min(50, *X.shape), random_state=random_state).fit_transform(X) if X.shape[1] > 50 else X
        opts = {"perplexity": float(min(perplexity, max(2.0, (len(X) - 1) / 3), len(X) - 1)),
                "init": "pca", "max_iter": 750, **kwargs}
        return TSNE(n_components=2, random_state=random_state, **opts).fit_transform(x).astype(np.float32)
    import umap  # method == "umap"

    opts = {"n_neighbors": int(min(15, len(X) - 1)), **kwargs}
    return umap.UMAP(n_components=2, random_state=random_state, **opts).fit_transform(X).astype(np.float32)


def _map_method(method: str, n: int) -> str:
    if method not in ("auto", "pca", "tsne", "umap"):
        raise ValueError(f"unknown layout method {method!r}; use 'auto', 'tsne', 'umap' or 'pca'")
    if method in ("auto", "umap"):
        try:
            import umap  # noqa: F401

            have = True
        except ImportError:
            have = False
        if method == "umap" and not have:
            raise ImportError("method='umap' needs umap-learn (pip install umap-learn); use 'pca' or 'tsne'")
        if method == "auto":
            return "umap" if have and n >= 20 else "pca"
    return method


def plot_map(
    embeddings,
    groups=None,
    *,
    method: str = "auto",
    texts: Sequence[str] | None = None,
    label: int = 0,
    ax=None,
    title: str | None = None,
    random_state: int = 0,
):
    """Scatter of the embeddings in 2-D, coloured by ``groups`` (one label per text).

    ``label=k`` writes the first 40 characters of ``k`` texts (spread over the map) next to their points.
    Returns the Axes.
    """
    import matplotlib.pyplot as plt

    X = np.asarray(embeddings)
    if groups is not None and len(groups) != len(X):
        raise ValueError(f"groups has {len(groups)} labels for {len(X)} embeddings")
    used = _map_method(method, len(X))
    Y = project(X, used, random_state=random_state)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5))
    if groups is None:
        ax.scatter(Y[:, 0], Y[:, 1], s=14, alpha=0.75)
    else:
        g = np.asarray([str(x) for x in groups])
        for name in dict.fromkeys(g):
            sel = g == name
            ax.scatter(Y[sel, 0], Y[sel, 1], s=14, alpha=0.75, label=f"{name} ({sel.sum()})")
        ax.legend(fontsize=8, loc="best")
    if label and texts is not None:
        for i in np.linspace(0, len(X) - 1, min(label, len(X))).astype(int):
            ax.annotate(texts[i][:40] + ("…" if len(texts[i]) > 40 else ""), Y[i], fontsize=7, alpha=0.8)
    ax.set_xlabel(f"{used} 1")
    ax.set_ylabel(f"{used} 2")
    ax.set_title(title if title is not None else f"sentence embeddings ({used})")
    return ax
