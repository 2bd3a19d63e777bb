"""A neural network as a graph: neurons are vertices, weights are edges, and one input's
activations flow along them.

    model = train(interplab.data.load("mnist", split="train"))        # 784 -> 500 -> 10, ReLU
    vertices, edges = to_tables(model)         # vertices: id, layer, index, bias; edges: from_id, to_id, weight
    v, e = activation_flow(model, image)       # + activation on vertices, flow = activation x weight on edges
    G = to_networkx(v, prune(e, 2000, by="flow"))
    strongest_paths(vertices, edges, target=vid)  # exact best pixel -> unit -> class paths (layered DP)
    draw(to_networkx(v, backbone(v, e, by="flow")), v, model.image_shape)

Analysis helpers on top: ``degree_table`` (degree and strength), ``communities`` (Louvain),
``path_scores`` / ``pixel_path_maps``, ``class_influence``, ``ablate`` and ``ablation_test`` (does an
influential unit matter, against random units?), ``on_paths`` / ``backbone`` (subgraphs worth drawing).

The tables are the CSV schema of ``starters/mnist-graph`` (see its README): ``id`` numbers the vertices
layer by layer (input pixels first), ``layer`` is 0 for the input, ``index`` is the neuron's position
in its layer, ``bias`` is empty (NaN) for inputs. Edges run from layer ``l`` to ``l + 1`` only.

For an MLP the flow decomposes each neuron exactly: ``preactivation = bias + sum(incoming flow)``,
so a class's logit is its bias plus the flows on its incoming edges. ``arch="cnn"`` is a small conv
net exported as a graph of channels: an edge's ``weight`` is the sum of its kernel (the response to a
constant patch), ``kernel_norm`` its L2 norm, and its ``flow`` the spatial mean of what that input
channel adds to the output channel's map, so the same identity holds for the channel means.

Checkpoints (``model.pt``) are a dict with the architecture and the state_dict; a bare state_dict
of Linear layers (what ``torch.save(model.state_dict())`` writes) loads too. A malformed file raises
``ModelFileError`` and an image of the wrong shape ``InputShapeError``, each with a one-line message.

Modules: ``model`` (the ``MLP`` / ``ConvNet`` networks and ``model.pt``), ``training``, ``inputs`` (images),
``tables`` (vertices / edges, flow, pruning, CSV), ``analysis`` (networkx, paths), ``influence`` (units that
matter) and ``drawing``. Every name is re-exported here and each module loads on first use, so reading CSVs
does not import torch.
"""
from __future__ import annotations

from .._lazy import exports

_EXPORTS = {
    "schema": ("CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "VERTEX_COLUMNS", "EDGE_COLUMNS", "ARCHS",
               "ModelFileError", "InputShapeError"),
    "inputs": ("images_to_tensor", "read_image", "as_image"),
    "model": ("GraphNet", "MLP", "ConvNet", "build_mlp", "build_cnn", "predict", "accuracy", "save_model", "load_model"),
    "training": ("train",),
    "tables": ("to_tables", "activation_flow", "logits_from_flow", "model_weights", "prune", "backbone",
               "write_graph", "read_graph"),
    "analysis": ("to_networkx", "on_paths", "degree_table", "communities", "path_scores", "strongest_paths",
                 "pixel_path_maps"),
    "influence": ("class_influence", "ablation_test", "ablate"),
    "drawing": ("layered_positions", "draw"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_HOME)

__getattr__, __dir__ = exports(__name__, _HOME)
