"""GeLU vs SoLU neurons on a task with known features (the facts task's entities).

    table = feature_activations(model)      # DataFrame: entity (feature) x neuron, mean activation
    neuron_stats(model)                     # activation sparsity, monosemantic neuron count, ...

The facts task (``[BOS] e5 a17 e9 a2 ...``) asks the model to recall each entity's attribute; with more
entities (96) than residual dimensions (64) the MLP has to help, so its neurons learn to detect
entities. Each entity is a known feature, and we can ask of every neuron: which features turn it on?

Activations are read at ``blocks.{layer}.mlp.mid``: after GeLU, or after SoLU's ``x * softmax(x)`` and
before its LayerNorm (the LayerNorm rescales all neurons together, which hides the sparsity SoLU makes).
"""
from __future__ import annotations

import numpy as np
import torch

from .tasks import E0, FactsTask


def feature_activations(model, layer: int = 0, batch_size: int = 64, seed: int = 0, where: str = "mid"):
    """Mean activation of every neuron for every entity (feature): DataFrame [n_entities, d_mlp]."""
    import pandas as pd

    if model.cfg.attn_only:
        raise ValueError(f"{model.cfg.name or 'this model'} is attention-only: it has no MLP neurons")
    if not 0 <= layer < model.cfg.n_layers:
        raise IndexError(f"layer {layer} out of range for {model.cfg.n_layers} layers")
    task = FactsTask(n_ctx=model.cfg.n_ctx)
    tokens, mask = task.batch(batch_size, torch.Generator().manual_seed(seed))
    name = f"blocks.{layer}.mlp.{where}"
    _, cache = model.run_with_cache(tokens, names=[name])
    acts = cache[name][:, :-1][mask]  # [N, d_mlp] at entity positions
    ents = tokens[:, :-1][mask] - E0
    sums = torch.zeros(task.n_entities, acts.shape[1]).index_add_(0, ents, acts)
    counts = torch.bincount(ents, minlength=task.n_entities).clamp(min=1)[:, None]
    df = pd.DataFrame((sums / counts).numpy(), index=pd.Index([f"e{i}" for i in range(task.n_entities)], name="feature"),
                      columns=pd.RangeIndex(acts.shape[1], name="neuron"))
    df.attrs["token_acts"] = acts.numpy()
    return df


def neuron_stats(model, layer: int = 0, ratio: float = 0.5, active: float = 0.1, **kwargs) -> dict:
    """Sparsity and selectivity of one MLP layer's neurons on the facts task's features.

    * ``active_fraction``: per token, the share of neurons above ``active`` x that token's largest
      activation, averaged over tokens (lower = sparser code);
    * ``monosemantic``: neurons whose best feature beats every other feature by 1/``ratio`` (2x by
      default), i.e. that respond to exactly one feature; ``dead``: neurons that never turn on;
    * ``features_per_neuron``: mean number of features at >= ``ratio`` of the neuron's best response.
    """
    table = feature_activations(model, layer, **kwargs)
    tok = np.asarray(table.attrs["token_acts"])
    per_token_max = np.maximum(tok.max(1, keepdims=True), 1e-8)
    active_fraction = float((tok > active * per_token_max).mean())
    m = table.to_numpy()
    best = m.max(0)
    scale = np.abs(m).max()
    alive = best > 0.05 * scale
    responds = (m >= ratio * best[None, :]) & alive[None, :]
    n_features = responds.sum(0)
    return {
        "model": model.cfg.name,
        "neurons": int(m.shape[1]),
        "dead": int((~alive).sum()),
        "monosemantic": int((n_features == 1).sum()),
        "monosemantic_fraction": float((n_features == 1).sum() / max(1, alive.sum())),
        "features_per_neuron": float(n_features[alive].mean()) if alive.any() else float("nan"),
        "active_fraction": active_fraction,
    }


def plot_feature_activations(table, ax=None, title: str = "", top: int = 64):
    """Heatmap of features x neurons (each neuron scaled to its max), neurons sorted by their best feature.

    Shows the ``top`` most selective live neurons: a sharp diagonal means neurons that respond to one
    feature each; vertical smears mean neurons that respond to many.
    """
    import matplotlib.pyplot as plt

    m = table.to_numpy()
    best = m.max(0)
    alive = best > 0.05 * np.abs(m).max()
    norm = m[:, alive] / best[alive]
    selectivity = (norm >= 0.5).sum(0)
    order = np.lexsort((norm.argmax(0), selectivity))[:top]
    order = order[np.argsort(norm[:, order].argmax(0), kind="stable")]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(np.clip(norm[:, order], 0, 1), aspect="auto", cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlabel(f"neuron ({len(order)} most selective, sorted by best feature)")
    ax.set_ylabel("feature (entity)")
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax
