"""A prize-format task any causal LM can be scored on, toy models included: in-context induction.

Each prompt is a run of random words, then the same run again, cut off part way; the two classes are
the word that came next the first time (correct) and another word from the run (a distractor that
is also in context, so only copying *what followed* wins, not copying any seen word). A model with
induction heads gets it right; unigram or bigram statistics leave it at chance.
"""
from __future__ import annotations

import numpy as np


def vocab_words(tokenizer, n: int = 200, seed: int = 0) -> list[str]:
    """Up to ``n`` words that are each ONE token when written after a space (found by re-encoding)."""
    from .scoring import encode

    if type(tokenizer).__name__ == "ToyTokenizer":  # the kit's toy models learned induction on t0..t63
        toy_words = [w for w in tokenizer.vocab if w[:1] == "t" and w[1:].isdigit()]
        if toy_words:
            return toy_words[:n]
    special = set()
    for attr in ("all_special_ids",):
        special |= set(getattr(tokenizer, attr, []) or [])
    for attr in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        v = getattr(tokenizer, attr, None)
        if isinstance(v, int):
            special.add(v)
    size = getattr(tokenizer, "vocab_size", None) or len(tokenizer)
    rng = np.random.default_rng(seed)
    base = encode(tokenizer, "")  # BOS or nothing, added to every encoding
    words, seen = [], set()
    for tid in rng.permutation(int(size)):
        if len(words) >= n:
            break
        if int(tid) in special:
            continue
        text = tokenizer.decode([int(tid)]).strip()
        if not text or not text.isalnum() or text in seen:
            continue
        if encode(tokenizer, " " + text)[len(base):] == [int(tid)]:
            words.append(text)
            seen.add(text)
    if len(words) < 4:
        raise ValueError("the tokenizer has too few single-token words for an induction task")
    return words


def induction_task(tokenizer=None, *, words: list[str] | None = None, n_items: int = 100, run_length=(6, 10),
                   seed: int = 0):
    """A classification task in prize format (prompt, classes, answer_index): predict the repeated word.

    ``tokenizer`` supplies the words (single tokens), or pass ``words``. ``run_length`` is the range
    of lengths of the random run. Answers are balanced between class 0 and class 1.
    """
    import pandas as pd

    if words is None:
        if tokenizer is None:
            raise ValueError("pass a tokenizer (to pick single-token words) or a list of words")
        words = vocab_words(tokenizer, seed=seed)
    words = list(dict.fromkeys(words))
    lo, hi = run_length
    if hi > len(words):
        raise ValueError(f"run_length up to {hi} needs at least {hi} distinct words, got {len(words)}")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_items):
        L = int(rng.integers(lo, hi + 1))
        run = [words[j] for j in rng.choice(len(words), size=L, replace=False)]
        cut = int(rng.integers(1, L))  # predict run[cut] after seeing run + run[:cut]
        answer = run[cut]
        distractor = run[int(rng.choice([k for k in range(L) if k != cut]))]
        classes = [" " + answer, " " + distractor]
        answer_index = i % 2
        if answer_index == 1:
            classes.reverse()
        rows.append({"prompt": " ".join(run + run[:cut]), "classes": classes, "answer_index": answer_index})
    df = pd.DataFrame(rows)
    df.attrs.update({"task_type": "classification", "dataset": "induction (generated)", "n_classes": 2})
    return df
