"""Benchmark interplab.features on CPU (run on demand: `make bench` or this file directly).

Prints, side by side in one run:
1. activation collection throughput vs. the raw encoder forward on the same batches (target: <= 10% overhead);
2. SAE training throughput (activations/s) at 1 and 2 CPU threads;
3. seconds (and steps) until a TopK SAE reaches fraction of variance explained 0.8 on MiniLM's residual stream.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_features.py [--texts 200] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from collect import ratio


def _texts(n: int) -> list[str]:
    import pandas as pd

    import interplab

    frames = [interplab.data.load("imdb", split=s) for s in ("train", "test")]
    texts = pd.concat(frames, ignore_index=True)["text"].tolist()
    return (texts * (n // len(texts) + 1))[:n]


def raw_forward(model, tok, texts, batch_size, max_length):
    """What collection is measured against: tokenize + forward over the same length-sorted batches."""
    ids = tok(texts, truncation=True, max_length=max_length)["input_ids"]
    order = np.argsort([-len(x) for x in ids], kind="stable")
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = [ids[i] for i in order[start:start + batch_size]]
            enc = tok.pad({"input_ids": batch}, return_tensors="pt")
            model(**enc, output_hidden_states=True)


def bench_collection(model, tok, texts, repeats, batch_size=32, max_length=128):
    from interplab import features as F

    sites = F.hidden_sites(model)
    raw, coll = [], []
    for r in range(repeats):  # interleaved, so load changes on a shared machine hit both alike
        t0 = time.perf_counter()
        raw_forward(model, tok, texts, batch_size, max_length)
        raw.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as cache:
            os.environ["INTERPLAB_CACHE"] = cache  # an empty cache: really collect
            t0 = time.perf_counter()
            acts = F.collect(model, tok, texts, sites, batch_size=batch_size, max_length=max_length, progress=False)
            coll.append(time.perf_counter() - t0)
            n_tokens = len(acts[sites[0]])
            t0 = time.perf_counter()
            F.collect(model, tok, texts, sites, batch_size=batch_size, max_length=max_length, progress=False)
            cached = time.perf_counter() - t0
    raw_s, coll_s = min(raw), min(coll)
    return {"tokens": n_tokens, "sites": len(sites), "raw_s": raw_s, "collect_s": coll_s,
            "overhead": coll_s / raw_s - 1, "cached_s": cached}


def bench_sae(x, threads, steps=100, batch_size=512, k=32):
    from interplab import features as F

    t0 = time.perf_counter()
    F.train_sae(x, expansion=4, k=k, steps=steps, batch_size=batch_size, eval_every=steps, progress=False,
                threads=threads)
    return steps * batch_size / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--texts", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--site", default="hidden.3")
    p.add_argument("--k", type=int, default=16)
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from interplab import features as F
    from interplab.models import load_encoder

    torch.set_num_threads(2)
    model, tok = load_encoder(attentions=False)
    texts = _texts(args.texts)
    print(f"machine: {os.cpu_count()} CPUs visible, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}")

    c = bench_collection(model, tok, texts, args.repeats)
    print("\n== activation collection (MiniLM-L6, all 7 hidden sites, float16 memmap)")
    print(f"{c['tokens']} tokens; raw forward {c['raw_s']:.2f}s ({c['tokens'] / c['raw_s']:.0f} tok/s) | "
          f"collect {c['collect_s']:.2f}s ({c['tokens'] / c['collect_s']:.0f} tok/s) | "
          f"overhead {c['overhead']:+.1%} (target <= +10%) | cached re-read {c['cached_s'] * 1000:.0f} ms")
    ratio("activation collection / raw forward", c["collect_s"] / c["raw_s"], "<=", 1.10)

    with tempfile.TemporaryDirectory() as cache:
        os.environ["INTERPLAB_CACHE"] = cache
        site = F.collect(model, tok, texts, [args.site], progress=False)[args.site]
    x = site.array(exclude_special=True)
    print(f"\n== SAE training on {args.site}: {x.shape[0]} tokens x {x.shape[1]} dims, d_sae {4 * x.shape[1]}, "
          f"TopK k={args.k}, batch 512")
    rates = {t: bench_sae(x, t, k=args.k) for t in (1, 2)}
    print("throughput: " + " | ".join(f"{t} thread{'s' * (t > 1)}: {r:,.0f} activations/s" for t, r in rates.items()))

    best = max(rates, key=rates.get)
    _, log = F.train_sae(x, expansion=4, k=args.k, steps=2000, eval_every=25, target_fve=0.8, progress=False,
                         threads=best)
    hit = log[log["fve"] >= 0.8]
    if len(hit):
        row = hit.iloc[0]
        print(f"time to FVE 0.8: {row['seconds']:.1f}s ({int(row['step'])} steps, "
              f"{int(row['step']) * 512:,} activations) at {best} thread(s)")
    else:
        print(f"time to FVE 0.8: never within 2000 steps (best {log['fve'].max():.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
