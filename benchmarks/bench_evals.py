"""Benchmark: scoring prize-format tasks on a GPT-2-small-sized model (random weights), 2 CPU threads.

Two tasks of 200 items, prompts of 60-100 tokens: 2 classes of one token each, and 4 classes of
3-6 tokens each. Methods, all computing the same class log-probs:

* ``per-class``: one plain forward pass per (item, class) (the prize pipeline's HF loop);
* ``lm-eval``: lm-evaluation-harness 0.4.13 ``HFLM.loglikelihood`` (batch 16), when installed;
* ``kv-cache``: a plain shared-prefix prototype (prompt once, then each class from the KV cache;
  ``--full`` only: it has no target);
* ``interplab``: ``interplab.evals.continuation_logprobs`` (classes packed into the prompt's pass).

Prints items/s per method (best of ``--repeat`` interleaved runs: the machine is shared and
noisy), the max |log-prob difference| against per-class, and the ratios the issue sets as targets
(interplab >= 1.6x / 4x lm-eval and >= 3.8x / 5.5x per-class, single / multi).

    .venv/bin/python benchmarks/bench_evals.py [--items 24] [--threads 2] [--repeat 2] [--full]

The defaults keep ``make bench`` short (24 items, per-class timed on 4, best of 2, no kv-cache
prototype: about 2 minutes on 2 cores); ``--full`` is the issue's setting (200 items, every method,
best of 3; past 15 minutes on 2 cores).
lm-evaluation-harness is NOT a kit dependency (about 30 packages); ``make bench`` installs it from the
``# bench:`` pin in requirements.txt. By hand:
    .venv/bin/pip install -c <(grep -v '^-e' requirements.txt) lm-eval==0.4.13
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collect import ratio  # noqa: E402

TARGETS = {"single": {"lm-eval": 1.6, "per-class": 3.8}, "multi": {"lm-eval": 4.0, "per-class": 5.5}}


def build_tokenizer(seed: int = 0):
    """A byte-level BPE tokenizer (GPT-2 style: spaces attach to the next word), trained here on synthetic text."""
    import numpy as np
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rng = np.random.default_rng(seed)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    words = sorted({"".join(rng.choice(letters, size=rng.integers(2, 9))) for _ in range(3000)})
    corpus = [" ".join(rng.choice(words, size=40)) for _ in range(3000)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=4000, special_tokens=["<|endoftext|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    return fast, words


def build_tasks(tok, words, n_items: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)

    def n_tokens(text):
        return len(tok(text)["input_ids"])

    singles = [w for w in words if n_tokens(" " + w) == 1]
    prompts = []
    while len(prompts) < 2 * n_items:
        target = int(rng.integers(60, 101))
        text = " ".join(rng.choice(words, size=target))
        ids = tok(text)["input_ids"][:target]
        text = tok.decode(ids).rstrip()
        if 60 <= n_tokens(text) <= 100:
            prompts.append(text)
    single = [(p, [" " + w for w in rng.choice(singles, size=2, replace=False)]) for p in prompts[:n_items]]
    multi = []
    for p in prompts[n_items:]:
        classes = []
        while len(classes) < 4:
            c = " " + " ".join(rng.choice(words, size=int(rng.integers(1, 4))))
            if 3 <= n_tokens(c) <= 6 and c not in classes:
                classes.append(c)
        multi.append((p, classes))
    return {"single": single, "multi": multi}


def kv_cache_prototype(model, tok, items):
    """Prompt once with use_cache, then each class's tokens on top of the cached prompt (cropped back after)."""
    import torch

    out = []
    for prompt, classes in items:
        p_ids = tok(prompt)["input_ids"]
        with torch.inference_mode():
            res = model(torch.tensor([p_ids]), use_cache=True)
            cache, last = res.past_key_values, torch.log_softmax(res.logits[0, -1].float(), -1)
            vals = []
            for c in classes:
                c_ids = tok(prompt + c)["input_ids"][len(p_ids):]
                lp = float(last[c_ids[0]])
                if len(c_ids) > 1:
                    r = model(torch.tensor([c_ids[:-1]]), past_key_values=cache, use_cache=True)
                    lps = torch.log_softmax(r.logits[0].float(), -1)
                    lp += float(sum(lps[j, c_ids[j + 1]] for j in range(len(c_ids) - 1)))
                    cache.crop(-(len(c_ids) - 1))  # back to the prompt alone
                vals.append(lp)
        out.append(vals)
    return out


def lm_eval_installed() -> bool:
    """True when lm-evaluation-harness is importable; otherwise says in one line how to add its column."""
    try:
        import lm_eval  # noqa: F401
        return True
    except ImportError:
        print("lm-eval column skipped: lm-evaluation-harness is not installed; to include it run\n"
              "  .venv/bin/pip install -c <(grep -v '^-e' requirements.txt) lm-eval==0.4.13")
        return False


def lm_eval_scores(model, tok, items, batch_size=16):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=batch_size, device="cpu")
    reqs, shape = [], []
    for prompt, classes in items:
        shape.append(len(classes))
        for c in classes:
            reqs.append(Instance(request_type="loglikelihood", doc={}, arguments=(prompt, c), idx=len(reqs)))
    res = lm.loglikelihood(reqs, disable_tqdm=True)
    out, k = [], 0
    for n in shape:
        out.append([float(r[0]) for r in res[k:k + n]])
        k += n
    return out


def main(argv=None) -> int:
    import numpy as np
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    from interplab.evals import continuation_logprobs

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2,
                    help="time every method this many times, interleaved, and keep its best (the machine is shared)")
    ap.add_argument("--skip-slow", action="store_true", help="skip the per-class baseline")
    ap.add_argument("--baseline-items", type=int, default=4,
                    help="time the slow per-class baseline on the first N items only (items/s is a rate)")
    ap.add_argument("--full", action="store_true", help="200 items, per-class on all of them, best of 3")
    args = ap.parse_args(argv)
    if args.full:
        args.items, args.repeat, args.baseline_items = 200, 3, None
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    tok, words = build_tokenizer()
    model = GPT2LMHeadModel(GPT2Config(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).eval()
    print(f"model: GPT-2 small config, random weights, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M params; "
          f"torch {torch.__version__}, {args.threads} threads; {args.items} items per task; best of {args.repeat} runs")
    tasks = build_tasks(tok, words, args.items)
    have_lm_eval = lm_eval_installed()
    methods = {
        "interplab": lambda items: continuation_logprobs(model, tok, [p for p, _ in items], [c for _, c in items],
                                                         progress=False),
    }
    if args.full or args.skip_slow:  # a comparison without a target: only in the long run (or as the reference)
        methods["kv-cache"] = lambda items: kv_cache_prototype(model, tok, items)
    if have_lm_eval:
        methods["lm-eval"] = lambda items: lm_eval_scores(model, tok, items)
    if not args.skip_slow:
        methods["per-class"] = lambda items: continuation_logprobs(
            model, tok, [p for p, _ in items], [c for _, c in items], method="reference", progress=False)
    # warm-up (and the scorer's one-time per-model probe) outside the timings
    continuation_logprobs(model, tok, [tasks["single"][0][0]], [tasks["single"][0][1]], progress=False)
    for name, items in tasks.items():
        ntok = [len(tok(p)["input_ids"]) for p, _ in items]
        ctok = [len(tok(p + c)["input_ids"]) - len(tok(p)["input_ids"]) for p, cs in items for c in cs]
        print(f"\n== {name}: {len(items)} items x {len(items[0][1])} classes; prompt tokens {min(ntok)}-{max(ntok)}, "
              f"class tokens {min(ctok)}-{max(ctok)}")
        speed, scores = {}, {}
        n_base = min(args.baseline_items or len(items), len(items))
        for _ in range(max(1, args.repeat)):
            for mname, fn in methods.items():
                subset = items[:n_base] if mname == "per-class" else items
                t0 = time.perf_counter()
                scores[mname] = np.asarray(fn(subset), dtype=float)
                speed[mname] = max(speed.get(mname, 0.0), len(subset) / (time.perf_counter() - t0))
        ref = "per-class" if "per-class" in scores else "kv-cache"
        n_ref = len(scores[ref])
        for mname in methods:
            diff = float(np.max(np.abs(scores[mname][:n_ref] - scores[ref])))
            print(f"  {mname:10s} {speed[mname]:7.2f} items/s ({len(scores[mname])} items)   "
                  f"max |logprob - {ref}| = {diff:.2e}")
        for base, target in TARGETS[name].items():
            if base in speed:
                r = speed["interplab"] / speed[base]
                print(f"  interplab / {base:9s} = {r:5.2f}x  (target >= {target}x: {'OK' if r >= target else 'MISSED'})")
                ratio(f"GPT-2 {name}-token classes: interplab / {base} items/s", r, ">=", target)
        if "kv-cache" in speed:
            r = speed["interplab"] / speed["kv-cache"]
            print(f"  interplab / kv-cache  = {r:5.2f}x  (goal > 1: past the shared-prefix prototype)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
