"""Look at what an SAE feature does: top-activating examples, how often it fires, what it writes to the logits.

    view = feature_view(sae, acts, [12, 40, 7])     # top examples with highlighted tokens (offline HTML)
    density_histogram(sae, acts)                    # log10 firing frequency of every feature
    logit_effect(sae, 12, model, tok)               # tokens a feature's decoder direction promotes/suppresses

``acts`` is the ``Activations`` the SAE was trained on (or any other collection at the same site):
it carries the tokens and texts, so examples can be shown in context.
"""
from __future__ import annotations

import html as _html

import numpy as np

from ..html import HTMLView, shade, shaded_tokens


def feature_activations(sae, acts, batch_size: int = 4096, exclude_special: bool = False) -> np.ndarray:
    """SAE feature activations for every token row of ``acts``: (n_tokens, d_sae) float32.

    Rows of special tokens are zero when ``exclude_special`` (so they never show as top examples).
    """
    import torch

    out = np.zeros((len(acts), sae.d_sae), dtype=np.float32)
    with torch.no_grad():
        for i in range(0, len(acts), batch_size):
            x = torch.as_tensor(np.asarray(acts.values[i:i + batch_size], dtype=np.float32))
            out[i:i + batch_size] = sae.encode(x).numpy()
    if exclude_special:
        out[acts.special] = 0.0
    return out


def _check_features(sae, features) -> list[int]:
    features = [int(f) for f in np.atleast_1d(features)]
    bad = [f for f in features if not 0 <= f < sae.d_sae]
    if bad:
        raise IndexError(f"feature(s) {bad} out of range: this SAE has features 0 ... {sae.d_sae - 1}")
    return features


def top_examples(sae, acts, feature: int, k: int = 10, window: int = 8, f_acts=None):
    """The ``k`` token rows where ``feature`` fires most, with ``window`` tokens of context each side.

    Returns a DataFrame: ``activation, input, position, token, context`` (the token in [brackets]).
    Pass ``f_acts`` (from ``feature_activations``) to reuse one encoding for many features.
    """
    import pandas as pd

    (feature,) = _check_features(sae, [feature])
    col = (f_acts if f_acts is not None else feature_activations(sae, acts, exclude_special=True))[:, feature]
    top = np.argsort(-col, kind="stable")[:k]
    top = top[col[top] > 0]
    inputs, positions = acts.input_index, acts.position
    rows = []
    for r in top:
        t = int(inputs[r])
        lo, hi = int(acts.offsets[t]), int(acts.offsets[t + 1])
        ctx = [("[" + acts.tokens[j] + "]") if j == r else acts.tokens[j]
               for j in range(max(lo, r - window), min(hi, r + window + 1))]
        rows.append({"activation": float(col[r]), "input": t, "position": int(positions[r]),
                     "token": acts.tokens[r], "context": " ".join(ctx)})
    return pd.DataFrame(rows, columns=["activation", "input", "position", "token", "context"])


def _highlight(tokens, values, vmax, center=None) -> str:
    """Tokens shaded by activation (orange, relative to ``vmax``), the ``center`` token underlined."""
    return shaded_tokens(tokens, [shade(float(v), vmax) for v in values], [f"{t}: {float(v):.3g}" for t, v in zip(tokens, values)],
                         sep=" ", style="padding:0 1px;border-radius:2px;",
                         styles=["border-bottom:2px solid #c0392b;" if j == center else "" for j in range(len(tokens))])


def feature_view(sae, acts, features, k: int = 5, window: int = 10, f_acts=None, title: str = "SAE features") -> HTMLView:
    """Top-activating examples for each feature, tokens shaded by activation (orange), as offline HTML.

    Each feature gets a header (firing frequency, max activation) and its ``k`` top examples with
    ``window`` tokens of context; hover a token for its value. No JavaScript, no network.
    """
    features = _check_features(sae, features)
    fa = f_acts if f_acts is not None else feature_activations(sae, acts, exclude_special=True)
    inputs = acts.input_index
    density = (fa > 0).mean(0)
    parts = [f"<div class='interplab-features' style='font-family:sans-serif;font-size:13px;max-width:900px'>"
             f"<h3 style='margin:4px 0'>{_html.escape(title)}</h3>"
             f"<div style='color:#666'>site {_html.escape(acts.site)} of {_html.escape(acts.model_name)}; "
             f"{len(acts)} tokens; shading = feature activation (darker = stronger)</div>"]
    for f in features:
        col = fa[:, f]
        vmax = float(col.max())
        parts.append(f"<div class='feature' data-feature='{f}' style='margin:10px 0;border-top:1px solid #ddd;padding-top:4px'>"
                     f"<b>feature {f}</b> <span style='color:#666'>fires on {density[f]:.2%} of tokens; "
                     f"max {vmax:.3g}</span><ol style='margin:4px 0'>")
        top = np.argsort(-col, kind="stable")[:k]
        top = top[col[top] > 0]
        if len(top) == 0:
            parts.append("<li><i>never fires on these tokens (a dead feature)</i></li>")
        for r in top:
            t = int(inputs[r])
            lo, hi = int(acts.offsets[t]), int(acts.offsets[t + 1])
            a, b = max(lo, r - window), min(hi, r + window + 1)
            parts.append(f"<li style='margin:2px 0;line-height:1.6'><code>{col[r]:.3g}</code> &nbsp;"
                         + ("… " if a > lo else "") + _highlight(acts.tokens[a:b], col[a:b], vmax, center=r - a)
                         + (" …" if b < hi else "") + "</li>")
        parts.append("</ol></div>")
    parts.append("</div>")
    return HTMLView("".join(parts), title=title)


def feature_density(sae, acts, f_acts=None) -> np.ndarray:
    """Fraction of (non-special) tokens on which each feature fires: (d_sae,)."""
    fa = f_acts if f_acts is not None else feature_activations(sae, acts)
    keep = ~acts.special if hasattr(acts, "special") else slice(None)
    return (fa[keep] > 0).mean(0)


def pick_features(f_acts, n: int = 6, min_density: float = 1e-3, max_density: float = 0.05) -> list[int]:
    """``n`` features worth a look: neither rare nor dense (firing frequency within the bounds),
    strongest maximum activation first."""
    density = (np.asarray(f_acts) > 0).mean(0)
    ok = (density >= min_density) & (density <= max_density)
    score = np.where(ok, np.asarray(f_acts).max(0), -np.inf)
    order = np.argsort(-score)
    return [int(i) for i in order[:n] if np.isfinite(score[i])]


def density_histogram(sae, acts, f_acts=None, ax=None, title: str = "feature density"):
    """Histogram of log10(firing frequency) over features; dead features are counted in the title."""
    import matplotlib.pyplot as plt

    density = feature_density(sae, acts, f_acts)
    dead = int((density == 0).sum())
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    live = density[density > 0]
    ax.hist(np.log10(live), bins=40, color="tab:blue")
    ax.set_xlabel("log10(fraction of tokens the feature fires on)")
    ax.set_ylabel("features")
    ax.set_title(f"{title}: {len(density)} features, {dead} dead ({dead / len(density):.1%})")
    return ax


def _unembed(model):
    """(d_model, vocab) unembedding and the final LayerNorm's weight, if any."""
    if hasattr(model, "W_U"):  # interplab.toy
        ln = getattr(model, "ln_final", None)
        return model.W_U.detach(), (ln.weight.detach() if ln is not None and getattr(ln, "weight", None) is not None else None)
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if out is None:
        raise TypeError(f"{type(model).__name__} has no unembedding (W_U or output embeddings): "
                        "logit_effect needs a causal LM (interplab.models.load_causal_lm)")
    return out.weight.detach().T, None


def logit_effect(sae, feature: int, model, tokenizer, k: int = 10):
    """Tokens whose logits a feature's decoder direction raises and lowers most (direct path only).

    The direction is multiplied by the final LayerNorm's scale (when the model has one) and the
    unembedding, ``d @ diag(ln_w) @ W_U``; later layers and the LayerNorm's normalisation are
    ignored, so this is what the feature writes *directly*, meaningful for sites on the residual
    stream near the end. Returns a DataFrame ``rank, promoted, promoted_logit, suppressed, suppressed_logit``.
    """
    import pandas as pd

    (feature,) = _check_features(sae, [feature])
    W_U, ln_w = _unembed(model)
    d = sae.decoder[feature].detach().float()
    if d.shape[0] != W_U.shape[0]:
        raise ValueError(f"the SAE's directions have {d.shape[0]} dims but the unembedding reads {W_U.shape[0]}: "
                         "train the SAE on a residual-stream site (resid_post / hidden.i)")
    if ln_w is not None:
        d = d * ln_w
    effect = (d @ W_U.float()).numpy()
    up, down = np.argsort(-effect)[:k], np.argsort(effect)[:k]

    def name(i):
        if hasattr(tokenizer, "convert_ids_to_tokens"):
            return str(tokenizer.convert_ids_to_tokens(int(i)))
        return str(tokenizer.decode([int(i)]))

    return pd.DataFrame({"rank": np.arange(1, len(up) + 1), "promoted": [name(i) for i in up],
                         "promoted_logit": effect[up], "suppressed": [name(i) for i in down],
                         "suppressed_logit": effect[down]})
