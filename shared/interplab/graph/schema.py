"""What the graph tools agree on: the CSV columns, the checkpoint tag, the architectures, and the two errors."""
from __future__ import annotations

from ..errors import InterplabError

CHECKPOINT_FORMAT = "interplab-mnist-graph"
CHECKPOINT_VERSION = 1
VERTEX_COLUMNS = ("id", "layer", "index", "bias")
EDGE_COLUMNS = ("from_id", "to_id", "weight")
ARCHS = ("mlp", "cnn")


class ModelFileError(InterplabError, ValueError):
    """model.pt is missing, not a PyTorch checkpoint, or does not hold a network this module knows."""


class InputShapeError(InterplabError, ValueError):
    """An input image whose shape does not match the model's input."""
