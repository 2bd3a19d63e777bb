"""Benchmark: the full residual-stream patching sweep on smollm2 (30 layers x 9 positions), 2 CPU threads.

Methods, all computing the same normalised logit-difference map for "The Eiffel Tower is in the city of"
(clean, " Paris") vs "The Colosseum is in the city of" (corrupt, " Rome"):

* ``sequential``: the plain-hook baseline, one forward per patch with a ``register_forward_pre_hook``
  on the block (what a tutorial writes by hand; 6.3 s measured for 30 x 9 in issue 16);
* ``batched``: ``interplab.interventions.patch_residual`` (many patches per forward, through interplab.sites);
* ``attribution``: ``interplab.interventions.attribution_patch`` (2 forwards + 1 backward for the map).

Prints seconds per method (best of ``--repeat``: the machine is shared and noisy), the max |difference|
between batched and sequential, the correlation of attribution with exact patching, and each ratio
against the sequential baseline measured in the same run, also as ``RATIO<TAB>name<TAB>value<TAB><=<TAB>target``.
Targets: batched sweep <= 10 s and attribution <= 1 s on 2 threads (absolute, printed as information);
as ratios: batched / sequential <= 0.5 and attribution / sequential <= 0.16 (1 s over 6.3 s).

``--sample N`` times the sequential baseline on N evenly spread cells and scales it to the full map
(the default times 90 evenly spread cells of the 270, so ``make bench`` stays short; ``--sample 270`` runs all).

    .venv/bin/python benchmarks/bench_interventions.py [--threads 2] [--repeat 2] [--sample 90]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGETS = {"batched/sequential": 0.5, "attribution/sequential": 0.16}


def sequential(model, clean, corrupt, answer, wrong, cells):
    """One forward per patch with a plain PyTorch pre-hook (the baseline; independent of interplab.sites)."""
    import torch

    layers = model.model.layers
    cache = {}
    handles = [layer.register_forward_pre_hook(lambda m, a, kw, i=i: cache.__setitem__(i, (a[0] if a else kw["hidden_states"]).clone()),
                                               with_kwargs=True) for i, layer in enumerate(layers)]
    try:
        with torch.no_grad():
            lc = model(clean).logits[0, -1]
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        lx = model(corrupt).logits[0, -1]
    dc, dx = float(lc[answer] - lc[wrong]), float(lx[answer] - lx[wrong])
    out = {}
    with torch.no_grad():
        for i, p in cells:
            def hook(m, a, kw, i=i, p=p):
                if a:
                    x = a[0].clone()
                    x[:, p] = cache[i][:, p]
                    return (x, *a[1:]), kw
                x = kw["hidden_states"].clone()
                x[:, p] = cache[i][:, p]
                return a, {**kw, "hidden_states": x}

            h = layers[i].register_forward_pre_hook(hook, with_kwargs=True)
            try:
                lo = model(corrupt).logits[0, -1]
            finally:
                h.remove()
            out[(i, p)] = (float(lo[answer] - lo[wrong]) - dx) / (dc - dx)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--sample", type=int, default=90, help="cells the sequential baseline is timed on (scaled to all)")
    ap.add_argument("--batch-size", type=int, default=96)
    args = ap.parse_args()

    import numpy as np
    import torch

    from interplab import interventions as iv
    from interplab import sites

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, load average {load:.1f} at start")
    sm = sites.wrap("smollm2")
    pairs = iv.prompt_pairs(sm, ["The Eiffel Tower is in the city of"], ["The Colosseum is in the city of"], [" Paris"], [" Rome"])
    L, T = sm.adapter.n_layers, pairs.n_pos
    cells = [(i, p) for i in range(L) for p in range(T)]
    step = max(1, len(cells) // max(1, min(args.sample, len(cells))))
    sample = cells[::step][: args.sample]
    print(f"smollm2: {L} layers x {T} positions = {len(cells)} patches; clean diff {pairs.clean_diff[0]:.2f}, "
          f"corrupt diff {pairs.corrupt_diff[0]:.2f}; sequential timed on {len(sample)} cells")

    t_seq, t_bat, t_att = [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        seq = sequential(sm.model, pairs.clean, pairs.corrupt, pairs.answers[0], pairs.wrongs[0], sample)
        t_seq.append((time.perf_counter() - t0) * len(cells) / len(sample))
        t0 = time.perf_counter()
        bat = iv.patch_residual(sm, pairs, batch_size=args.batch_size, progress=False)
        t_bat.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        att = iv.attribution_patch(sm, pairs)
        t_att.append(time.perf_counter() - t0)
    s, b, a = min(t_seq), min(t_bat), min(t_att)
    diff = max(abs(bat.values[0, i, p] - v) for (i, p), v in seq.items())
    print(f"{'method':<12} {'seconds':>8}  (full {L} x {T} map)")
    print(f"{'sequential':<12} {s:>8.2f}  plain forward pre-hooks, one forward per patch")
    print(f"{'batched':<12} {b:>8.2f}  interplab.interventions.patch_residual (batch {args.batch_size}); target <= 10 s: "
          f"{'PASS' if b <= 10 else 'over'}")
    print(f"{'attribution':<12} {a:>8.2f}  interplab.interventions.attribution_patch; target <= 1 s: {'PASS' if a <= 1 else 'over'}")
    print(f"max |batched - sequential| = {diff:.2e}; attribution vs exact r = {iv.correlation(bat, att):.2f}")
    print(f"restoration: 'iffel' layers 0-20 {bat.values[0, :21, 2].min():.2f}-{bat.values[0, :21, 2].max():.2f}, "
          f"last position layers 25-29 {bat.values[0, 25:, -1].min():.2f}-{bat.values[0, 25:, -1].max():.2f}")
    ok = diff < 1e-3
    for name, value in (("batched/sequential", b / s), ("attribution/sequential", a / s)):
        print(f"RATIO\t{name}\t{value:.3f}\t<=\t{TARGETS[name]}")
        ok = ok and value <= TARGETS[name]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} at end (absolute seconds stretch when other work shares the cores; the ratios much less)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
