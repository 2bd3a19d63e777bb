"""interplab.lm speed: 1,000 prompts against the loopback OpenAI-compatible server with 50 ms latency.

* sequential (one request in flight) vs the concurrent batch (default 16 in flight): goal ratio >= 8;
* replaying the same 1,000 prompts from the response cache: goal < 1 s.

Run: ``.venv/bin/python benchmarks/bench_lm.py [--n 300] [--latency 0.05] [--full]`` (``--full``: 1,000 prompts)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
import tempfile
import time

from collect import ratio


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--full", action="store_true", help="1,000 prompts")
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args(argv)
    if args.full:
        args.n = 1000
    tmp = tempfile.mkdtemp(prefix="bench-lm-")
    os.environ["INTERPLAB_CACHE"] = tmp
    from interplab import lm

    prompts = [f"benchmark prompt number {i}" for i in range(args.n)]
    model = "openai:loopback-chat"
    # The server runs in its own process (as a real one would), so it does not share this one's GIL; it serves the
    # protocol toy (no model behind it), so the time measured is the client's and the latency's, not an LM's.
    server = subprocess.Popen([sys.executable, "-m", "interplab.lm.loopback", "--model", "toy", "--port", "0",
                               "--latency", str(args.latency)], stdout=subprocess.PIPE, text=True)
    try:
        base_url = re.search(r"(http://\S+/v1)", server.stdout.readline()).group(1)

        def stats():
            with urllib.request.urlopen(base_url.replace("/v1", "/_loopback/stats")) as r:
                return json.load(r)

        common = dict(base_url=base_url, max_tokens=8, progress=False)
        lm.generate_many(model, prompts[:20], cache=False, **common)  # warm up the connection pool

        t = time.perf_counter()
        seq = lm.generate_many(model, prompts, concurrency=1, cache=False, **common)
        t_seq = time.perf_counter() - t

        t = time.perf_counter()
        conc = lm.generate_many(model, prompts, concurrency=args.concurrency, cache=True, **common)
        t_conc = time.perf_counter() - t
        max_in_flight = stats()["max_in_flight"]
        served = stats()["served"]

        t = time.perf_counter()
        replay = lm.generate_many(model, prompts, concurrency=args.concurrency, cache=True, **common)
        t_replay = time.perf_counter() - t
        assert stats()["served"] == served, "the replay sent requests"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # SIGINT is ignored where the bench was started as a background job
            server.kill()
            server.wait()
    assert seq == conc == replay and all(c.cached for c in replay)

    speed = t_seq / t_conc
    print(f"{args.n} prompts, {args.latency * 1000:.0f} ms server latency, loopback OpenAI-compatible server "
          f"(separate process), official openai SDK")
    print(f"{'run':<34}{'seconds':>9}{'prompts/s':>11}")
    print(f"{'sequential (1 in flight)':<34}{t_seq:9.2f}{args.n / t_seq:11.0f}")
    print(f"{f'concurrent ({args.concurrency} in flight, max seen {max_in_flight})':<34}{t_conc:9.2f}"
          f"{args.n / t_conc:11.0f}")
    print(f"{'cache replay':<34}{t_replay:9.3f}{args.n / t_replay:11.0f}")
    print(f"speed-up concurrent vs sequential: {speed:.1f}x (goal >= 8)  "
          f"{'OK' if speed >= 8 else 'MISSED'}")
    print(f"cache replay of {args.n}: {t_replay:.3f} s (goal < 1 s)  {'OK' if t_replay < 1 else 'MISSED'}")
    ratio("concurrent / sequential prompts/s", speed, ">=", 8)
    ratio(f"cache replay of {args.n} prompts (s)", t_replay, "<=", 1)
    return 0 if speed >= 8 and t_replay < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
