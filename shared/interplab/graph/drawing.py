"""Drawing a (pruned) network graph layer by layer: the input pixels as the image, every later layer a column."""
from __future__ import annotations

import numpy as np

from ..plots import axes


def layered_positions(vertices, image_shape=None, G=None) -> dict[int, tuple[float, float]]:
    """Node positions for drawing: input pixels as an image on the left (when ``image_shape`` is given),
    every other layer a column. With ``G``, a middle column holds only the vertices in ``G``, each placed
    near the (strength-weighted) mean height of its successors, so bundles of edges stay untangled."""
    pos = {}
    n_layers = int(vertices["layer"].max()) + 1
    for l in [0] + list(range(n_layers - 1, 0, -1)):
        layer = vertices[vertices["layer"] == l]
        if l == 0 and image_shape is not None and len(image_shape) == 2 and len(layer) == int(np.prod(image_shape)):
            h, w = image_shape
            for vid, idx in zip(layer["id"], layer["index"]):
                r, c = divmod(int(idx), w)
                pos[int(vid)] = (_PIXELS_X0 + (w / h) * c / max(w - 1, 1), 1 - r / max(h - 1, 1))
            continue
        ids = [int(i) for i in layer.sort_values("index")["id"]]
        if G is not None and 0 < l < n_layers - 1:
            ids = [i for i in ids if i in G]

            def key(i):
                succ = [(pos[j][1], G[i][j].get("strength", 1.0)) for j in G.successors(i) if j in pos]
                return -sum(y * s for y, s in succ) / sum(s for _, s in succ) if succ else 0.0

            ids = sorted(ids, key=key)
        n = len(ids)
        for rank, vid in enumerate(ids):
            pos[vid] = (_column_x(l, image_shape), 1 - (rank + 0.5) / max(n, 1))
    return pos


# Pixels fill a block of height 1 and width w/h (drawn with equal aspect, so the digit keeps its shape);
# every later layer is a column to its right.
_PIXELS_X0, _COLUMN_GAP = 0.0, 0.75


def _column_x(layer: int, image_shape=None) -> float:
    width = image_shape[1] / image_shape[0] if image_shape is not None and len(image_shape) == 2 else 0.0
    return _PIXELS_X0 + width + _COLUMN_GAP * layer


def draw(G, vertices=None, image_shape=None, ax=None, title: str = "", max_width: float = 2.0, node_size: float = 6,
         image=None):
    """Draw a (pruned) graph layer by layer: red edges positive, blue negative, width by strength.
    ``image`` (optional, ``image_shape``) is shown faintly under the input pixels."""
    import networkx as nx
    import pandas as pd

    ax = axes(ax, (8, 3.6))
    if vertices is None:
        vertices = pd.DataFrame([{"id": n, "layer": d.get("layer", 0), "index": d.get("index", 0)} for n, d in G.nodes(data=True)])
    pos = layered_positions(vertices, image_shape, G)
    if image is not None and image_shape is not None and len(image_shape) == 2:
        h, w = image_shape
        dx, dy = 0.5 * (w / h) / max(w - 1, 1), 0.5 / max(h - 1, 1)
        ax.imshow(np.asarray(image).reshape(h, w), cmap="gray_r", alpha=0.35,
                  extent=(_PIXELS_X0 - dx, _PIXELS_X0 + w / h + dx, -dy, 1 + dy), interpolation="nearest", zorder=0)
    edges = list(G.edges(data=True))
    if edges:
        sign_key = "flow" if "flow" in edges[0][2] else "weight"
        strength = np.array([d["strength"] for *_, d in edges])
        widths = max_width * strength / (strength.max() or 1)
        colors = ["tab:red" if d[sign_key] > 0 else "tab:blue" for *_, d in edges]
        nx.draw_networkx_edges(G, pos, ax=ax, edgelist=[(u, v) for u, v, _ in edges], width=widths, edge_color=colors,
                               alpha=0.5, arrows=False)
    nodes = [n for n in G.nodes if n in pos]
    layers = [G.nodes[n].get("layer", 0) for n in nodes]
    nx.draw_networkx_nodes(G, pos, nodelist=nodes, node_size=node_size, node_color=layers, cmap="viridis", ax=ax)
    out_nodes = [n for n in nodes if G.nodes[n].get("layer") == max(layers)] if nodes else []
    for n in out_nodes:
        x, y = pos[n]
        ax.text(x + 0.08, y, str(G.nodes[n].get("index")), va="center", fontsize=8)
    ax.set_title(title)
    ax.set_aspect("equal")  # pixels square, as in the image
    ax.axis("off")
    return ax
