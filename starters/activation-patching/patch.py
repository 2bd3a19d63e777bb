"""Activation patching on your own prompts: where does the model keep what decides the answer?

1. read clean/corrupt prompt pairs from ``prompts.csv`` (columns ``clean``, ``corrupt``, ``answer``,
   ``wrong``; answers are one token each, with their leading space; clean and corrupt prompts of a
   row must have the same number of tokens, and all rows the same length),
2. patch the clean residual stream (block inputs, ``blocks.{i}.hook_resid_pre``) into each corrupt
   run, layer by layer and position by position, and score the logit difference normalised so the
   clean run is 1 and the corrupt run 0 (``interplab.interventions.patch_residual``, batched),
3. estimate the same map from gradients (attribution patching) and report the correlation,
4. save ``results/patching.csv`` (every pair and cell), ``results/patching.png`` (the map).

    python patch.py                          # the embedded SmolLM2-135M, offline
    python patch.py --model gpt2             # any Hugging Face causal LM (downloads once)
    python patch.py --every 3                # every 3rd layer only (quicker first look)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from interplab import interventions as iv  # noqa: E402
from interplab import sites  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--prompts", default=str(HERE / "prompts.csv"))
    ap.add_argument("--every", type=int, default=1, help="patch every N-th layer")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    df = pd.read_csv(args.prompts, keep_default_na=False)
    sm = sites.wrap(args.model, device=args.device)
    pairs = iv.prompt_pairs(sm, df["clean"].tolist(), df["corrupt"].tolist(), df["answer"].tolist(), df["wrong"].tolist())
    print(pairs.frame().assign(clean=df["clean"]).round(2).to_string())
    layers = list(range(0, sm.adapter.n_layers, args.every))
    exact = iv.patch_residual(sm, pairs, layers=layers)
    attr = iv.attribution_patch(sm, pairs, layers=layers)
    r = iv.correlation(exact, attr)
    print(f"{exact.values.size} patched runs in {exact.seconds:.1f} s; attribution in {attr.seconds:.2f} s; r = {r:.2f}")
    print(exact.table().round(2).to_string())

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    table = exact.frame().rename(columns={"score": "exact"})
    table["attribution"] = attr.frame()["score"]
    table.to_csv(out / "patching.csv", index=False)
    ax = exact.plot()
    ax.figure.tight_layout()
    ax.figure.savefig(out / "patching.png", dpi=120)
    plt.close(ax.figure)
    print(f"wrote {out / 'patching.csv'} and {out / 'patching.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
