"""Which hidden units matter for a class: influence (activation x gradient), ablation against random units."""
from __future__ import annotations

import numpy as np

from .inputs import images_to_tensor
from .model import hidden_split


def class_influence(model, images, labels=None, hidden: int = -1):
    """How much each unit of hidden layer ``hidden`` (-1: the last) pushes each class: the mean over that
    class's examples of ``activation x d(class logit)/d(activation)`` (a DataFrame, unit x class).
    ``labels=None`` averages over all images instead of per class.

    For the last hidden layer the gradient is the unit's weight into the class, so the influence is exactly
    what the unit adds to the logit, and zeroing units lowers the logit by exactly their summed influence
    (an identity, not a test). For an earlier layer it is a first-order estimate of that drop: the ReLUs
    after it make the real effect of zeroing differ (see :func:`ablation_test`).
    """
    import pandas as pd
    import torch

    before, after = hidden_split(model, hidden)
    x = images_to_tensor(images, model.input_scale, model.image_shape)
    with torch.no_grad():
        h = before(x)
    y = None if labels is None else np.asarray(labels)
    cols = {}
    for c in range(model.sizes[-1]):
        sel = h if y is None else h[torch.from_numpy(y == c)]
        if not len(sel):
            cols[c] = np.zeros(h.shape[1], dtype=np.float32)
            continue
        sel = sel.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(after(sel)[:, c].sum(), sel)
        cols[c] = (sel.detach() * grad).mean(0).numpy()
    df = pd.DataFrame(cols)
    df.index.name = "unit"
    df.columns.name = "class"
    return df


def ablation_test(model, df, k: int = 10, hidden: int = -1, n_random: int = 20, seed: int = 0, influence=None):
    """Does "influence" pick the units that matter? For each class: zero the ``k`` most influential units of
    hidden layer ``hidden`` (by :func:`class_influence` on the rows of ``df`` of that class), and compare with
    zeroing ``k`` random units of the same layer, ``n_random`` times.

    One row per class: ``logit`` (mean class logit), ``estimated drop`` (the summed influence of the top-k),
    ``drop (top-k)`` (the real drop in the mean logit), ``drop (random k)`` (mean over the random draws) and
    ``random 95th pct``, and the share of the class's images still classified as that class: ``accuracy``,
    ``accuracy (top-k zeroed)``, ``accuracy (random k zeroed)``. In the last hidden layer ``estimated drop``
    equals ``drop (top-k)`` by construction; accuracy, and earlier layers, can disagree.
    """
    import pandas as pd
    import torch

    before, after = hidden_split(model, hidden)
    infl = class_influence(model, df, df["label"], hidden=hidden) if influence is None else influence
    x = images_to_tensor(df, model.input_scale, model.image_shape)
    y = np.asarray(df["label"])
    with torch.no_grad():
        h = before(x)
    n_units = h.shape[1]
    rng = np.random.default_rng(seed)

    def run(hc, c, units):
        hz = hc.clone()
        hz[:, list(units)] = 0
        with torch.no_grad():
            out = after(hz)
        return float(out[:, c].mean()), float((out.argmax(1) == c).float().mean())

    rows = []
    for c in range(model.sizes[-1]):
        sel = torch.from_numpy(y == c)
        if not bool(sel.any()):
            continue
        hc = h[sel]
        base, acc = run(hc, c, [])
        top_units = infl[c].nlargest(k).index.to_numpy()
        top, acc_top = run(hc, c, top_units)
        rand = [run(hc, c, rng.choice(n_units, k, replace=False)) for _ in range(n_random)]
        drops = base - np.array([r[0] for r in rand])
        rows.append({"class": c, "logit": base, "estimated drop": float(infl[c][top_units].sum()),
                     "drop (top-k)": base - top, "drop (random k)": float(drops.mean()),
                     "random 95th pct": float(np.percentile(drops, 95)), "accuracy": acc,
                     "accuracy (top-k zeroed)": acc_top,
                     "accuracy (random k zeroed)": float(np.mean([r[1] for r in rand]))})
    return pd.DataFrame(rows).set_index("class")


def ablate(model, units, layer: int = -1):
    """A copy of ``model`` with the outgoing weights of hidden ``units`` zeroed (``layer=-1``: the last hidden
    layer, i.e. the input units of the last Linear). Use it to test whether "influential" units matter."""
    import copy

    import torch

    m = copy.deepcopy(model)
    lin = m.weight_layers()[layer]
    with torch.no_grad():
        lin.weight[:, [int(u) for u in units]] = 0
    return m
