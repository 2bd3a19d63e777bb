"""Train the network that to_graph.py turns into a graph, and write results/model.pt.

    python train.py                      # 784 -> 500 -> 10 MLP, ReLU (8x8 digits offline: 64 -> 500 -> 10)
    python train.py --arch cnn           # a small conv net, exported by to_graph.py as a graph of channels
    python train.py --hidden 100 --epochs 3 --out my_results

Data: interplab.data.load("mnist") -- full MNIST from the Hugging Face Hub when online, scikit-learn's
bundled 8x8 digits (labelled as a stand-in) offline. The input size follows the image size.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import interplab
from interplab import graph

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=graph.ARCHS, default="mlp", help="mlp (default) or cnn")
    p.add_argument("--hidden", type=int, nargs="+", default=[500], help="hidden layer size(s) of the MLP (default 500)")
    p.add_argument("--channels", type=int, nargs="+", default=[8, 16], help="conv channels of the CNN (default 8 16)")
    p.add_argument("--epochs", type=int, default=None, help="passes over the data (default: about 2,000 steps)")
    p.add_argument("--source", default="auto", help="where MNIST comes from: auto, hub, sample or a local folder")
    p.add_argument("--max-train", type=int, default=None, help="train on the first N images only (quick runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE / "results", help="folder for model.pt (default: results/)")
    args = p.parse_args(argv)

    train_df = interplab.data.load("mnist", split="train", source=args.source)
    test_df = interplab.data.load("mnist", split="test", source=args.source)
    if args.max_train:
        train_df = train_df.iloc[: args.max_train]
    print(f"data: {train_df.attrs.get('description') or train_df.attrs.get('source', 'mnist')}")
    model = graph.train(train_df, arch=args.arch, hidden=args.hidden, channels=args.channels,
                        epochs=args.epochs, seed=args.seed)
    acc = graph.accuracy(model, test_df)
    path = graph.save_model(model, args.out / "model.pt", test_accuracy=acc, source=str(train_df.attrs.get("source", "")))
    sizes = " -> ".join(str(s) for s in model.sizes)
    print(f"{args.arch} {sizes}: test accuracy {acc:.3f} on {len(test_df)} images; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
