"""How fast interplab.text.embed is, and what it costs on top of calling the encoder yourself.

Target (issue 8): embedding 2,000 texts of ~60 tokens with the embedded MiniLM encoder on 2 CPU
threads, the helper (tokenize once, sort by length, batch, mean-pool, normalise, disk cache, progress
bar) adds at most 10% to the raw batched encoder: ``tokenizer(batch, padding=True)`` + ``model(...)``
+ mean pooling + L2 norm, batch after batch in the given order (same batch size).

Rows: raw encoder in the given order, and sorted by length (what sentence-transformers does; the
fair baseline for the helper's own overhead); ``embed(cache=False)``; ``embed`` with an empty cache (embeds and writes every
vector); ``embed`` with a warm cache (reads only). Raw and helper runs alternate and each time is the
best of ``--repeats`` runs, so a busy machine hurts both alike.
Run: .venv/bin/python benchmarks/bench_text.py [--n 300] [--repeats 2] [--threads 2] [--full]
(``--full``: the issue's 2,000 texts, best of 3)
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collect import ratio  # noqa: E402


def make_texts(tokenizer, n: int, target_tokens: int = 60, seed: int = 0) -> list[str]:
    """n distinct English-like texts of about ``target_tokens`` MiniLM tokens, from the bundled samples' words."""
    import numpy as np

    from interplab import data
    from interplab import text as T

    words: list[str] = []
    for name, col, kw in (("hh-rlhf", "chosen", {"subset": "all"}), ("ethics-commonsense", "input", {})):
        df = data.load(name, source="sample", **kw)
        for t in df[col]:
            words += T.tokenize(t)
    vocab = sorted(set(words))
    rng = np.random.default_rng(seed)
    texts = []
    for i in range(n):
        k = int(rng.integers(38, 50))
        texts.append(f"{i}. " + " ".join(rng.choice(vocab, k)) + ".")
    return texts


def raw_embed(model, tokenizer, texts, batch_size: int, sort: bool = False):
    """The baseline: what a user writes by hand with transformers (``sort``: batches of similar length,
    as sentence-transformers does, so the comparison isolates the helper's own overhead)."""
    import numpy as np
    import torch

    order = np.arange(len(texts))
    if sort:
        order = np.argsort([-len(x) for x in tokenizer(texts, truncation=True, max_length=256)["input_ids"]],
                           kind="stable")
    out = []
    with torch.inference_mode():
        for s in range(0, len(texts), batch_size):
            batch = [texts[i] for i in order[s:s + batch_size]]
            enc = tokenizer(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
            h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(v, dim=-1))
    res = torch.cat(out).numpy()
    unsorted = np.empty_like(res)
    unsorted[order] = res
    return unsorted


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--full", action="store_true", help="2,000 texts, best of 3")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args(argv)
    if args.full:
        args.n, args.repeats = 2000, 3

    import logging

    import numpy as np
    import torch

    logging.getLogger("interplab.data").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    os.environ["INTERPLAB_CACHE"] = tempfile.mkdtemp(prefix="bench-text-")
    from interplab import text as T
    from interplab.models import load_encoder

    model, tok = load_encoder(attentions=False)
    texts = make_texts(tok, args.n)
    lengths = [len(x) for x in tok(texts)["input_ids"]]
    print(f"{args.n} texts, {np.mean(lengths):.1f} tokens on average ({min(lengths)}-{max(lengths)}), "
          f"batch {args.batch_size}, {torch.get_num_threads()} threads")
    raw_embed(model, tok, texts[:64], args.batch_size)  # warm-up

    best = {k: float("inf") for k in ("raw", "sorted", "embed", "cold", "warm")}
    cpu = dict(best)
    out = {}

    def timed(key, fn):
        w, c = time.perf_counter(), time.process_time()
        out[key] = fn()
        best[key] = min(best[key], time.perf_counter() - w)
        cpu[key] = min(cpu[key], time.process_time() - c)

    def cold():
        os.environ["INTERPLAB_CACHE"] = tempfile.mkdtemp(prefix="bench-text-")  # an empty cache each time
        return T.embed(texts, (model, tok), batch_size=args.batch_size, progress=True)

    for _ in range(args.repeats):
        timed("raw", lambda: raw_embed(model, tok, texts, args.batch_size))
        timed("sorted", lambda: raw_embed(model, tok, texts, args.batch_size, sort=True))
        timed("embed", lambda: T.embed(texts, (model, tok), batch_size=args.batch_size, cache=False, progress=False))
        timed("cold", cold)
    timed("warm", lambda: T.embed(texts, (model, tok), batch_size=args.batch_size))
    diff = float(np.abs(out["raw"] - out["embed"]).max())
    warm = best["warm"]

    rows = [("raw batched encoder", best["raw"]), ("raw, sorted by length", best["sorted"]),
            ("embed(cache=False)", best["embed"]), ("embed, empty cache", best["cold"]), ("embed, warm cache", warm)]
    keys = ["raw", "sorted", "embed", "cold", "warm"]
    print(f"{'':24s} {'wall s':>8s} {'texts/s':>9s} {'time / raw':>11s} {'/ sorted raw':>13s} {'CPU s':>8s} "
          f"{'CPU / raw':>10s}")
    for (name, sec), key in zip(rows, keys):
        print(f"{name:24s} {sec:8.2f} {args.n / sec:9.0f} {sec / best['raw']:11.3f} {sec / best['sorted']:13.3f} "
              f"{cpu[key]:8.2f} {cpu[key] / cpu['raw']:10.3f}")
    print(f"max |embed - raw| = {diff:.2e}")
    for base in ("raw", "sorted"):
        overhead = best["cold"] / best[base] - 1
        over_cpu = cpu["cold"] / cpu[base] - 1
        print(f"helper (empty cache) vs {'sorted raw' if base == 'sorted' else 'raw':10s}: {overhead:+.1%} wall, {over_cpu:+.1%} CPU "
              f"(target <= +10%): {'OK' if min(overhead, over_cpu) <= 0.10 else 'OVER'}")
    ratio("embed (empty cache) / sorted raw encoder", best["cold"] / best["sorted"], "<=", 1.10)
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
