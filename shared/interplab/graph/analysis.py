"""Graph analysis with networkx and exact path search: degree and strength, Louvain communities, the strongest
pixel -> unit -> class paths (dynamic programming over the layers) and per-class pixel maps of them."""
from __future__ import annotations

import numpy as np

from .inputs import as_image


def to_networkx(vertices, edges, drop_isolated: bool = False):
    """A ``networkx.DiGraph``: node = vertex id with its columns as attributes; edges carry their
    columns plus ``strength = |weight|`` (or ``|flow|`` when the edges have a flow column)."""
    import networkx as nx

    G = nx.DiGraph()
    vcols = [c for c in vertices.columns if c != "id"]
    for row in vertices.itertuples(index=False):
        d = row._asdict()
        G.add_node(int(d.pop("id")), **{k: (v.item() if hasattr(v, "item") else v) for k, v in d.items() if k in vcols})
    ecols = [c for c in edges.columns if c not in ("from_id", "to_id")]
    strength = np.abs(edges["flow" if "flow" in edges.columns else "weight"].to_numpy(dtype=np.float64))
    data = {c: edges[c].to_numpy() for c in ecols}
    src, dst = edges["from_id"].to_numpy(), edges["to_id"].to_numpy()
    G.add_edges_from(
        (int(src[i]), int(dst[i]), {**{c: float(data[c][i]) for c in ecols}, "strength": float(strength[i])})
        for i in range(len(edges))
    )
    if drop_isolated:
        G.remove_nodes_from([n for n in list(G.nodes) if G.degree(n) == 0])
    return G


def on_paths(G):
    """The subgraph of vertices that lie on some complete input -> output path (drops dangling hidden units
    and isolated vertices a pruning left behind): what a drawing of a pruned graph should show."""
    layers = [d.get("layer", 0) for _, d in G.nodes(data=True)]
    first, last = min(layers), max(layers)
    H = G.copy()
    while True:
        drop = [n for n, d in H.nodes(data=True)
                if (d.get("layer") != first and H.in_degree(n) == 0) or (d.get("layer") != last and H.out_degree(n) == 0)]
        if not drop:
            return H
        H.remove_nodes_from(drop)


def degree_table(G):
    """Per vertex: layer, in/out degree, and in/out strength (sum of |weight| or |flow|) as a DataFrame."""
    import pandas as pd

    rows = {
        "id": list(G.nodes),
        "layer": [G.nodes[n].get("layer") for n in G.nodes],
        "in_degree": [d for _, d in G.in_degree()],
        "out_degree": [d for _, d in G.out_degree()],
        "in_strength": [d for _, d in G.in_degree(weight="strength")],
        "out_strength": [d for _, d in G.out_degree(weight="strength")],
    }
    return pd.DataFrame(rows).set_index("id")


def communities(G, seed: int = 0, resolution: float = 1.0):
    """Louvain communities of the graph taken as undirected, weighted by ``strength``: Series vertex id -> community
    (numbered by size, largest 0). Isolated vertices are left out."""
    import networkx as nx
    import pandas as pd

    U = G.to_undirected(as_view=False)
    U.remove_nodes_from([n for n in list(U.nodes) if U.degree(n) == 0])
    parts = nx.community.louvain_communities(U, weight="strength", seed=seed, resolution=resolution)
    parts = sorted(parts, key=len, reverse=True)
    return pd.Series({n: i for i, part in enumerate(parts) for n in part}, name="community").sort_index()


def path_scores(vertices, edges, target: int, weight: str = "weight"):
    """For every vertex, the largest and smallest product of ``weight`` along a path from it to ``target``.

    Dynamic programming over the layers (exact, vectorised): a path's score is the product of its
    edge weights, so a large positive score means "this pixel excites that class through some unit".
    Returns a DataFrame indexed by vertex id with ``max``, ``min`` and the next vertex on each best path.
    """
    import pandas as pd

    layer_of = vertices.set_index("id")["layer"]
    n = int(vertices["id"].max()) + 1
    best_max = np.full(n, np.nan)
    best_min = np.full(n, np.nan)
    next_max = np.full(n, -1, dtype=np.int64)
    next_min = np.full(n, -1, dtype=np.int64)
    best_max[target] = best_min[target] = 1.0
    t_layer = int(layer_of[target])
    src_layer = layer_of.reindex(edges["from_id"]).to_numpy()
    for l in range(t_layer - 1, -1, -1):
        e = edges[src_layer == l]
        dst = e["to_id"].to_numpy()
        ok = ~np.isnan(best_max[dst])
        if not ok.any():
            break
        e, dst = e[ok], dst[ok]
        w = e[weight].to_numpy(dtype=np.float64)
        a, b = w * best_max[dst], w * best_min[dst]
        hi = np.maximum(a, b)
        lo = np.minimum(a, b)
        src = e["from_id"].to_numpy()
        frame = pd.DataFrame({"src": src, "dst": dst, "hi": hi, "lo": lo})
        i_hi = frame.groupby("src")["hi"].idxmax()
        i_lo = frame.groupby("src")["lo"].idxmin()
        best_max[i_hi.index] = frame.loc[i_hi, "hi"].to_numpy()
        next_max[i_hi.index] = frame.loc[i_hi, "dst"].to_numpy()
        best_min[i_lo.index] = frame.loc[i_lo, "lo"].to_numpy()
        next_min[i_lo.index] = frame.loc[i_lo, "dst"].to_numpy()
    ids = vertices["id"].to_numpy()
    return pd.DataFrame(
        {"max": best_max[ids], "min": best_min[ids], "next_max": next_max[ids], "next_min": next_min[ids]}, index=ids
    )


def strongest_paths(vertices, edges, target: int, k: int = 5, weight: str = "weight", sign: str = "positive"):
    """The ``k`` strongest paths from the input layer to ``target`` (one per input vertex), as a DataFrame
    with ``source``, ``path`` (list of vertex ids) and ``score`` (product of weights).

    ``sign="positive"`` ranks by the largest product (excitatory), ``"negative"`` by the smallest, ``"abs"``
    by the largest magnitude.
    """
    import pandas as pd

    if sign not in ("positive", "negative", "abs"):
        raise ValueError(f"sign must be 'positive', 'negative' or 'abs', got {sign!r}")
    ps = path_scores(vertices, edges, target, weight)
    inputs = vertices.loc[vertices["layer"] == 0, "id"].to_numpy()
    table = ps.loc[inputs].dropna(subset=["max"])
    if sign == "positive":
        chosen = table["max"].nlargest(k).index
        tags = ["max"] * len(chosen)
    elif sign == "negative":
        chosen = table["min"].nsmallest(k).index
        tags = ["min"] * len(chosen)
    else:
        mag = np.maximum(table["max"].abs(), table["min"].abs())
        chosen = mag.nlargest(k).index
        tags = ["max" if abs(table.at[c, "max"]) >= abs(table.at[c, "min"]) else "min" for c in chosen]
    w_lookup = edges.set_index(["from_id", "to_id"])[weight]
    rows = []
    for src, tag in zip(chosen, tags):
        path, node, state, score = [int(src)], int(src), tag, float(ps.at[src, tag])
        while node != target:
            nxt = int(ps.at[node, "next_" + state])
            if w_lookup[(node, nxt)] < 0:  # a negative edge turns the best max into the next vertex's min
                state = "min" if state == "max" else "max"
            node = nxt
            path.append(node)
        rows.append({"source": int(src), "path": path, "score": score})
    return pd.DataFrame(rows)


def pixel_path_maps(vertices, edges, image_shape, weight: str = "weight"):
    """For each class, an image of the strongest excitatory path score from every input pixel (``path_scores``
    ``max`` over the input layer): ``{class index: 2-D array}``."""
    last = int(vertices["layer"].max())
    inputs = vertices.loc[vertices["layer"] == 0, "id"].to_numpy()
    maps = {}
    for vid, idx in vertices.loc[vertices["layer"] == last, ["id", "index"]].itertuples(index=False):
        ps = path_scores(vertices, edges, int(vid), weight)
        maps[int(idx)] = as_image(ps.loc[inputs, "max"].fillna(0).to_numpy(), image_shape)
    return maps
