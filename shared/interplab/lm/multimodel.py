"""Compare models on the same prompts, at the level of text, and a ready-made induction probe.

* ``compare_scores(models, prompts, continuations, labels=...)``: one tidy DataFrame of
  log-probs (model x prompt x continuation). Every model scores the same *text*, each with its own
  tokenizer, so models with different tokenizers (a toy and smollm2, GPT-2 and Pythia) compare
  directly: the sum log-prob of a continuation's text is a property of the text, not of the tokens.
* ``repeat_probe(models, ...)``: prompts made of a random word sequence followed by its first half
  again, each with three continuations of the same number of words: ``repeat`` (what followed last
  time), ``seen`` (words that also occur once earlier in the context, in an order that never
  occurred there) and ``unseen`` (words absent from the context). ``repeat - seen`` is induction
  ("copy what followed last time") with the in-context frequency bias controlled; ``seen - unseen``
  is that bias alone (a model that merely favours words it has seen scores ``seen`` high too).
* ``induction_gaps(scores)``: both gaps per model, averaged over prompts with their spread.
"""
from __future__ import annotations

from dataclasses import dataclass


def _name(model) -> str:
    if isinstance(model, str):
        return model
    if isinstance(model, tuple):
        from ..models import display_name

        return display_name(model[0])
    return getattr(model, "model_id", None) or "local model"


def compare_scores(models, prompts, continuations, labels=None, **options):
    """Log-prob of every continuation after every prompt under every model, as a DataFrame.

    ``continuations``: one list shared by all prompts or one list per prompt; ``labels`` names
    the continuations' positions (e.g. ``probe.labels``). Columns: model, prompt_id, prompt, label,
    continuation, logprob. A model whose tokenizer cannot write the text raises one ValueError
    naming the model (build a probe every model can read: ``repeat_probe([model_a, model_b])``).
    """
    import pandas as pd

    from .core import score_many

    prompts = list(prompts)
    if continuations and all(isinstance(c, str) for c in continuations):
        continuations = [list(continuations)] * len(prompts)
    rows = []
    for model in models:
        name = _name(model)
        try:
            scores = score_many(model, prompts, continuations, **options)
        except ValueError as exc:
            if "unknown toy token" in str(exc) or "no tokens" in str(exc):
                raise ValueError(f"{name} cannot read these prompts' text ({str(exc).splitlines()[0]}); build "
                                 "them from words every compared model knows: lm.repeat_probe([all models])") from None
            raise
        for i, (p, conts, vals) in enumerate(zip(prompts, continuations, scores)):
            for j, (c, v) in enumerate(zip(conts, vals)):
                rows.append({"model": name, "prompt_id": i, "prompt": p,
                             "label": labels[j] if labels else j, "continuation": c, "logprob": v})
    return pd.DataFrame(rows)


@dataclass
class RepeatProbe:
    """Prompts (a word sequence + its first half again) and, per prompt, [repeat, seen, unseen] continuations."""

    prompts: list[str]
    continuations: list[list[str]]
    n_words: int
    labels: tuple[str, str, str] = ("repeat", "seen", "unseen")


def _words(backend) -> list[str]:
    """Words the model's tokenizer writes as one token: the toy task's ``t0..t63``, or a Hugging Face
    vocabulary's space-led lowercase words (``" river"``), which re-encode to that one token."""
    _, tok = backend.load()
    if type(tok).__name__ == "ToyTokenizer":
        return [t for t in tok.get_vocab() if t[:1] == "t" and t[1:].isdigit()]
    words = []
    for i in range(int(getattr(tok, "vocab_size", 0) or len(tok))):
        text = tok.decode([i])
        w = text[1:]
        if text[:1] == " " and 4 <= len(w) <= 10 and w.isascii() and w.isalpha() and w.islower():
            if tok(text, add_special_tokens=False)["input_ids"] == [i]:
                words.append(w)
    return words


def repeat_probe(models, n: int = 20, length: int = 16, continuation: int = 4, seed: int = 0,
                 vocab=None) -> RepeatProbe:
    """``n`` induction probes as text every model in ``models`` (one model or a list) can read.

    Words come from ``vocab`` or, by default, from the models: with a kit toy model among them, the
    toy's random-sequence words (``t0 ... t63``, the only ones it saw in random order; other
    tokenizers write them as text too), otherwise the first model's one-token words. Each prompt is
    ``length`` distinct words, then its first ``length // 2`` again; ``seen`` takes ``continuation``
    words from the part of the sequence after the repeat's words (each occurs once in the context,
    like the repeat's) in an order with no pair that was adjacent there. Needs
    ``length >= length // 2 + 2 * continuation``.
    """
    import numpy as np

    from .core import get_backend

    models = list(models) if isinstance(models, list) else [models]
    backends = [get_backend(m) for m in models]
    if not all(hasattr(b, "load") for b in backends):
        raise ValueError("repeat_probe needs local models (smollm2, hf:..., toy:...) to draw its words from")
    half = length // 2
    if length < half + 2 * continuation:
        raise ValueError(f"length {length} leaves no room for {continuation} 'seen' words after the repeat's "
                         f"(need length >= length // 2 + 2 * continuation = {half + 2 * continuation})")
    if vocab is None:
        toys = [b for b in backends if type(b.load()[1]).__name__ == "ToyTokenizer"]
        vocab = _words(toys[0] if toys else backends[0])
    vocab = sorted(set(vocab))
    if len(vocab) < length + continuation:
        raise ValueError(f"need at least {length + continuation} distinct words to draw from, have {len(vocab)}")
    rng = np.random.default_rng(seed)
    prompts, conts = [], []
    while len(prompts) < n:
        picks = [vocab[int(i)] for i in rng.choice(len(vocab), size=length + continuation, replace=False)]
        a, unseen = picks[:length], picks[length:]
        repeat = a[half:half + continuation]
        pool = a[half + continuation:]
        adjacent = {(x, y) for x, y in zip(a, a[1:])} | {(a[half - 1], pool[0])}
        for _ in range(100):  # an order of `pool` words that never follows the context's own order
            seen = [pool[int(i)] for i in rng.choice(len(pool), size=continuation, replace=False)]
            if not ({(a[half - 1], seen[0])} | set(zip(seen, seen[1:]))) & adjacent:
                break
        else:
            continue
        prompts.append(" ".join(a + a[:half]))
        conts.append([" " + " ".join(w) for w in (repeat, seen, unseen)])
    return RepeatProbe(prompts, conts, continuation)


def induction_gaps(scores, n_words: int | None = None, n_boot: int = 2000, seed: int = 0):
    """Per model: ``repeat - seen`` (induction) and ``seen - unseen`` (in-context bias) in log-prob per
    word, averaged over prompts, with the standard deviation across prompts, a bootstrap 95%
    interval of the mean, and the share of prompts where the repeat beats the seen words.

    ``scores`` is ``compare_scores(..., labels=probe.labels)``; ``n_words`` (``probe.n_words``)
    turns sums into per-word values.
    """
    import numpy as np
    import pandas as pd

    wide = scores.pivot_table(index=["model", "prompt_id"], columns="label", values="logprob")
    if n_words:
        wide = wide / n_words
    rng = np.random.default_rng(seed)
    rows = []
    for model, g in wide.groupby(level="model", sort=False):
        row = {"model": model, "prompts": len(g)}
        for name, diff in (("induction", g["repeat"] - g["seen"]), ("in_context_bias", g["seen"] - g["unseen"])):
            d = diff.to_numpy()
            boot = rng.choice(d, size=(n_boot, len(d))).mean(axis=1)
            row.update({f"{name}": d.mean(), f"{name}_sd": d.std(ddof=1) if len(d) > 1 else float("nan"),
                        f"{name}_lo": np.quantile(boot, 0.025), f"{name}_hi": np.quantile(boot, 0.975)})
        row["repeat_beats_seen"] = float((g["repeat"] > g["seen"]).mean())
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")
