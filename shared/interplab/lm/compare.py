"""Compare models on the same prompts, and a ready-made probe that tells them apart.

* ``compare_scores(models, prompts, continuations, labels=...)``: one tidy DataFrame of
  log-probs (model x prompt x continuation), ready for ``groupby`` and a bar plot.
* ``repeat_probe(model, ...)``: prompts made of a random token sequence followed by the start of
  the same sequence again, with two continuations of equal length: the one that *repeats* the
  sequence and a *fresh* random one. A model with induction heads ("copy what followed last
  time") gives the repeat a far higher log-prob; one without cannot tell them apart. The tokens
  come from the model's own vocabulary, so the probe works for toy models and Hugging Face models.
"""
from __future__ import annotations

from dataclasses import dataclass


def compare_scores(models, prompts, continuations, labels=None, **options):
    """Log-prob of every continuation after every prompt under every model, as a DataFrame.

    ``continuations``: one list shared by all prompts or one list per prompt; ``labels`` names
    the continuations' positions (e.g. ["repeat", "fresh"]). Columns: model, prompt_id, prompt,
    label, continuation, logprob.
    """
    import pandas as pd

    from .core import score_many

    prompts = list(prompts)
    if continuations and all(isinstance(c, str) for c in continuations):
        continuations = [list(continuations)] * len(prompts)
    rows = []
    for model in models:
        name = model if isinstance(model, str) else getattr(model[0], "interplab_name", "local model")
        scores = score_many(model, prompts, continuations, **options)
        for i, (p, conts, vals) in enumerate(zip(prompts, continuations, scores)):
            for j, (c, v) in enumerate(zip(conts, vals)):
                rows.append({"model": name, "prompt_id": i, "prompt": p,
                             "label": labels[j] if labels else j, "continuation": c, "logprob": v})
    return pd.DataFrame(rows)


@dataclass
class RepeatProbe:
    """Prompts (sequence + its first half again) and, per prompt, [repeat, fresh] continuations."""

    prompts: list[str]
    continuations: list[list[str]]
    n_tokens: int
    labels: tuple[str, str] = ("repeat", "fresh")


def repeat_probe(model, n: int = 20, length: int = 12, continuation: int = 4, seed: int = 0,
                 vocab=None) -> RepeatProbe:
    """``n`` induction probes built from ``model``'s tokenizer (a model string or a (model, tokenizer) pair).

    Tokens are drawn without replacement from ``vocab`` (token strings), by default the whole
    vocabulary less special tokens; for the kit's toy models, the random tokens of their induction
    task (``t0 ... t63``), the only ones they saw in random order.
    """
    import numpy as np

    from .core import get_backend

    backend = get_backend(model)
    if not hasattr(backend, "load"):
        raise ValueError("repeat_probe needs a local model (hf: or toy:) to draw tokens from its vocabulary")
    _, tok = backend.load()
    size = int(getattr(tok, "vocab_size", 0) or len(tok))
    special = set(getattr(tok, "all_special_ids", []) or [])
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        if getattr(tok, name, None) is not None:
            special.add(getattr(tok, name))
    if vocab is None and type(tok).__name__ == "ToyTokenizer":
        vocab = [t for t in tok.get_vocab() if t[:1] == "t" and t[1:].isdigit()]
    if vocab is not None:
        table = tok.get_vocab()
        missing = [t for t in vocab if t not in table]
        if missing:
            raise ValueError(f"tokens not in the model's vocabulary: {missing[:5]}")
        pool = [table[t] for t in vocab if table[t] not in special]
    else:
        pool = [i for i in range(size) if i not in special]
    if len(pool) < length + continuation:
        raise ValueError(f"need at least {length + continuation} distinct tokens to draw from, have {len(pool)}")

    def text(ids):
        try:
            return tok.decode(list(ids), skip_special_tokens=True)
        except TypeError:
            return tok.decode(list(ids))

    half = length // 2
    if continuation > length - half:
        raise ValueError("continuation must fit in the second half of the sequence")
    rng = np.random.default_rng(seed)
    prompts, conts = [], []
    while len(prompts) < n:
        seq = [int(x) for x in rng.choice(pool, size=length + continuation, replace=False)]
        a, fresh = seq[:length], seq[length:]
        prompt = text(a + a[:half])
        rep_full, fresh_full = text(a + a[:half + continuation]), text(a + a[:half] + fresh)
        if not (rep_full.startswith(prompt) and fresh_full.startswith(prompt)):
            continue  # a tokenizer whose decode is not compositional here: draw again
        rep, frs = rep_full[len(prompt):], fresh_full[len(prompt):]
        if not rep.strip() or not frs.strip() or rep == frs:
            continue
        prompts.append(prompt)
        conts.append([rep, frs])
    return RepeatProbe(prompts, conts, continuation)
