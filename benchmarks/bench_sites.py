"""What does caching 3 sites cost on smollm2, through interplab.sites, plain PyTorch hooks and nnsight?

On the embedded SmolLM2-135M (batch 8 x 9 tokens, 2 threads), times, best of N interleaved rounds:
the plain forward; caching 3 residual sites (blocks 5, 15, 25 ``hook_resid_post``) with
``interplab.sites``; the same with hand-registered ``register_forward_hook`` (the baseline); and with
nnsight 0.8.1 ``.save()`` (the library considered for the layer). Target: the site layer costs <= 5% over
the plain forward. Each ratio is also printed as ``RATIO<TAB>name<TAB>value<TAB><=|>=<TAB>target``.

    python benchmarks/bench_sites.py [--rounds 15] [--threads 2] [--no-nnsight]
"""
from __future__ import annotations

import argparse
import os
import time

import torch

LAYERS = (5, 15, 25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-nnsight", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from interplab import sites

    sm = sites.wrap("smollm2")
    model = sm.model
    tokens = torch.randint(0, sm.adapter.d_vocab, (8, 9), generator=torch.Generator().manual_seed(0))
    names = [f"blocks.{i}.hook_resid_post" for i in LAYERS]

    def plain():
        with torch.no_grad():
            return model(tokens).logits

    def kit():
        return sm.run_with_cache(tokens, names=names)

    def hooks():
        cache, handles = {}, []
        for i in LAYERS:
            handles.append(model.model.layers[i].register_forward_hook(
                lambda mod, a, out, i=i: cache.__setitem__(i, (out[0] if isinstance(out, tuple) else out).detach())))
        try:
            with torch.no_grad():
                return model(tokens).logits, cache
        finally:
            for h in handles:
                h.remove()

    runs = {"plain forward": plain, "interplab.sites": kit, "plain hooks": hooks}
    if not args.no_nnsight:
        import nnsight

        nm = nnsight.NNsight(model)

        def nns():
            with torch.no_grad():
                with nm.trace(tokens):
                    a = nm.model.layers[5].output.save()
                    b = nm.model.layers[15].output.save()
                    c = nm.model.layers[25].output.save()
            return a, b, c

        runs["nnsight"] = nns
    # the same numbers from each
    _, cache = kit()
    _, ref = hooks()
    assert all(torch.equal(cache[n], ref[i]) for n, i in zip(names, LAYERS))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {args.threads} threads, load average {load:.1f}; smollm2, batch 8 x 9 tokens, "
          f"caching {', '.join(names)}; best of {args.rounds} interleaved rounds")
    for f in runs.values():  # warm up
        f()
    times = {k: [] for k in runs}
    for _ in range(args.rounds):
        for k, f in runs.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    base = best["plain forward"]
    for k, v in best.items():
        print(f"{k:>16}: {1000 * v:8.1f} ms  ({v / base:.3f}x the plain forward)")
    print(f"RATIO\tsites cache 3 / plain forward\t{best['interplab.sites'] / base:.3f}\t<=\t1.05")
    print(f"RATIO\tsites cache 3 / plain hooks\t{best['interplab.sites'] / best['plain hooks']:.3f}\t<=\t1.05")
    if "nnsight" in best:
        print(f"RATIO\tnnsight save 3 / plain forward\t{best['nnsight'] / base:.3f}\t<=\t1.05")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} at end (other work on the cores stretches all rows alike; compare the ratios)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
