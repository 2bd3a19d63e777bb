"""Features inside models: activation collection, linear probes, sparse autoencoders, feature inspection.

    acts = features.collect(model, tok, texts, sites=features.hidden_sites(model))   # once, cached on disk
    table = features.probe_layers({s: a.pooled() for s, a in acts.items()}, labels)  # with a control task
    sae, log = features.train_sae(acts["hidden.3"].array(True), d_sae=1536, k=32)    # TopK SAE on CPU
    features.feature_view(sae, acts["hidden.3"], [0, 1, 2])                          # top examples, offline

Everything heavy (torch, sklearn, matplotlib) is imported inside functions, so importing this is fast.
"""
from __future__ import annotations

from .._lazy import exports

# name -> submodule that defines it (loaded on first access)
_EXPORTS = {
    "Activations": "activations", "collect": "activations", "load": "activations", "hidden_sites": "activations",
    "is_number": "activations",
    "ProbeResult": "probes", "probe": "probes", "probe_layers": "probes", "control_labels": "probes",
    "plot_probe_accuracy": "probes", "token_probe_data": "probes",
    "SAE": "sae", "train_sae": "sae", "sae_metrics": "sae", "spliced_loss": "sae",
    "pca_baseline": "sae",
    "ToySuperposition": "synthetic", "toy_superposition": "synthetic", "match_features": "synthetic",
    "plot_feature_match": "synthetic",
    "feature_activations": "inspection", "top_examples": "inspection", "feature_view": "inspection",
    "feature_density": "inspection", "density_histogram": "inspection", "logit_effect": "inspection", "pick_features": "inspection",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = exports(__name__, _EXPORTS)
