"""How long does the 2-layer attention-only toy model take to grow a real induction head on CPU?

For 5 seeds, train ``attn-only-2l`` with its zoo recipe and stop at the first check (every 50 steps)
where criteria (a) and (b) hold: a layer-1 head with induction score >= 0.8 on [BOS] r r, and >= 0.9
accuracy on the repeated half at every held-out repeat length. Then test (c) (ablating that head
breaks (b)) at that point. Prints steps, tokens seen, wall-clock and CPU seconds per seed (checks not
counted), and the medians. Goal: >= 4 of 5 seeds, median <= 60 s on 2 CPU cores.

    python benchmarks/bench_toy.py [--seeds 0 1] [--max-steps 3000] [--threads 2] [--full]

By default 2 seeds (to keep ``make bench`` short); ``--full`` runs the goal's 5.
"""
from __future__ import annotations

import argparse
import os
import statistics

import torch

from collect import ratio
from interplab.toy import check_induction, train_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--full", action="store_true", help="seeds 0-4, as the goal counts them")
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.full:
        args.seeds = [0, 1, 2, 3, 4]
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, load average {load:.1f} at start")
    print(f"{'seed':>4} {'steps':>6} {'tokens':>9} {'wall s':>7} {'cpu s':>7}  (a) score  (b) min acc  (c) ablated acc")
    rows = []
    for seed in args.seeds:
        def stop(model, step):
            chk = check_induction(model, batch_size=32, ablate=False)
            return chk.a and chk.b

        model, hist = train_model("attn-only-2l", seed=seed, progress=False, steps=args.max_steps,
                                  stop_when=stop, check_every=50, decay_frac=0.0)
        chk = check_induction(model)
        met = hist.stopped_at is not None
        rows.append((seed, met, hist, chk))
        abl = sum(chk.ablated_accuracy.values()) / len(chk.ablated_accuracy)
        if met:
            print(f"{seed:>4} {hist.stopped_at:>6} {hist.tokens_seen:>9} {hist.seconds:>7.1f} {hist.cpu_seconds:>7.1f}"
                  f"  {chk.induction_score:>9.2f}  {min(chk.accuracy.values()):>11.2f}  {abl:>15.2f}  (c) {'PASS' if chk.c else 'FAIL'}",
                  flush=True)
        else:
            print(f"{seed:>4} {'never':>6} {hist.tokens_seen:>9} {hist.seconds:>7.1f} {hist.cpu_seconds:>7.1f}"
                  f"  (a)/(b) not met in {args.max_steps} steps", flush=True)
    met = [r for r in rows if r[1]]
    full = [r for r in met if r[3].c]
    print(f"met (a)+(b): {len(met)}/{len(rows)} seeds; (a)+(b)+(c): {len(full)}/{len(rows)} seeds")
    if met:
        print(f"median over seeds that met (a)+(b): {statistics.median(r[2].stopped_at for r in met):.0f} steps, "
              f"{statistics.median(r[2].tokens_seen for r in met):.0f} tokens, "
              f"{statistics.median(r[2].seconds for r in met):.1f} s wall, {statistics.median(r[2].cpu_seconds for r in met):.1f} s CPU")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} at end (wall seconds stretch when other work shares the cores; CPU seconds do not, "
          f"but count every thread)")
    ratio("seeds meeting (a)+(b)+(c), fraction", len(full) / len(rows), ">=", 0.8)
    if met:
        ratio("median wall s to an induction head", statistics.median(r[2].seconds for r in met), "<=", 60)
    return 0 if len(full) >= 0.8 * len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
