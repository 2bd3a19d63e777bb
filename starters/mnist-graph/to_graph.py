"""Turn results/model.pt into a graph: results/vertices.csv and results/edges.csv (schema: README.md).

    python to_graph.py                           # every weight: vertices (id, layer, index, bias), edges (from_id, to_id, weight)
    python to_graph.py --input 7                 # + activation flow of test image 7 (activation x weight on each edge)
    python to_graph.py --input digit.png         # ... of your own image (.png, .npy, .csv), same size as the training images
    python to_graph.py --prune 2000              # keep the 2,000 strongest edges (|weight|, or |flow| with --input)
    python to_graph.py --prune 5%                # keep the strongest 5%
    python to_graph.py --prune 100 --per-layer   # the 100 strongest edges of each layer

A model trained with `train.py --arch cnn` is exported as a graph of channels (one vertex per channel).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import interplab
from interplab import graph

HERE = Path(__file__).resolve().parent


def parse_keep(text: str) -> int | float:
    """``"2000"`` -> 2000 edges, ``"5%"`` -> 0.05, ``"0.05"`` -> 0.05 (what ``--prune`` accepts)."""
    text = str(text).strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"--prune takes a number of edges (2000) or a fraction (0.05 or 5%), got {text!r}") from None
    if text.endswith("%") or value < 1:
        if not 0 < value < 1:
            raise ValueError(f"--prune fraction must be between 0 and 1 (exclusive), got {text!r}")
        return value
    if not value.is_integer():
        raise ValueError(f"--prune count must be a whole number, got {text!r}")
    return int(value)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=HERE / "results" / "model.pt", help="checkpoint from train.py")
    p.add_argument("--input", default=None,
                   help="a test-set index (e.g. 7) or an image file: adds activation and flow columns")
    p.add_argument("--prune", default=None, help="keep the strongest edges: a count (2000) or a fraction (0.05 or 5%%)")
    p.add_argument("--per-layer", action="store_true",
                   help="apply --prune to each layer's edges separately (so every layer keeps some edges)")
    p.add_argument("--source", default="auto", help="where the MNIST test set comes from for --input N")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: the model's folder)")
    args = p.parse_args(argv)
    out = args.out or args.model.parent
    try:
        keep = parse_keep(args.prune) if args.prune is not None else None
        model = graph.load_model(args.model)
        if args.input is None:
            vertices, edges = graph.to_tables(model)
            by = "weight"
        else:
            if args.input.lstrip("-").isdigit():
                test_df = interplab.data.load("mnist", split="test", source=args.source)
                i = int(args.input)
                if not 0 <= i < len(test_df):
                    raise IndexError(f"--input {i}: the test set has {len(test_df)} images (0..{len(test_df) - 1})")
                image, label = test_df["image"].iloc[i], int(test_df["label"].iloc[i])
                what = f"test image {i} (label {label})"
            else:
                image, what = graph.read_image(args.input, model.image_shape), args.input
            vertices, edges = graph.activation_flow(model, image)
            by = "flow"
            logits = graph.logits_from_flow(vertices, edges)
            print(f"input: {what}; predicted class {int(np.argmax(logits))} (logits from the flow graph)")
        if keep is not None:
            n = len(edges)
            edges = graph.prune(edges, keep, by=by, vertices=vertices if args.per_layer else None)
            print(f"pruned to the {len(edges)} strongest of {n} edges by |{by}|")
    except (graph.ModelFileError, graph.InputShapeError, FileNotFoundError, IndexError, ValueError) as exc:
        print(f"to_graph.py: error: {exc}", file=sys.stderr)
        return 2
    vpath, epath = graph.write_graph(out, vertices, edges)
    print(f"wrote {vpath} ({len(vertices)} vertices) and {epath} ({len(edges)} edges)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
