"""Words as the counting helpers see them: ``tokenize``, ``stop_words`` and ``type_token_ratio``.

The tokenizer keeps contractions ("don't"), splits Chinese/Japanese into characters and keeps emoji
as tokens, so non-English and chat text gives sensible counts.
"""
from __future__ import annotations

import re
from typing import Iterable

import numpy as np

from ..inputs import as_texts

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Emoji and pictographs as single tokens (skin-tone modifiers U+1F3FB-1F3FF are dropped).
_EMOJI = "\U0001f000-\U0001f3fa\U0001f400-\U0001faff\u2600-\u27bf"
_TOKEN = re.compile(
    rf"[{_CJK}]"  # one Chinese/Japanese character = one token (no spaces between words)
    rf"|[{_EMOJI}]"
    rf"|(?:(?![{_CJK}])[^\W_])+(?:'(?:(?![{_CJK}])[^\W_])+)*"  # words, keeping inner apostrophes
)
_SINGLE_OK = re.compile(rf"[{_CJK}{_EMOJI}]")
_CONTRACTIONS = {
    "i'm", "i've", "i'll", "i'd", "you're", "you've", "you'll", "you'd", "he's", "she's", "it's",
    "we're", "we've", "we'll", "we'd", "they're", "they've", "they'll", "they'd", "that's", "there's",
    "what's", "who's", "let's", "don't", "doesn't", "didn't", "can't", "cannot", "couldn't", "won't",
    "wouldn't", "shouldn't", "isn't", "aren't", "wasn't", "weren't", "hasn't", "haven't", "hadn't",
    "ll", "ve", "re",
}


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split one text into word tokens the way every counting helper here does.

    Words of two or more letters/digits (inner apostrophes kept: ``"don't"``), each Chinese or
    Japanese character, and each emoji. Curly apostrophes are straightened first.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize() needs a string, got {type(text).__name__}")
    text = text.replace("\u2019", "'")
    if lowercase:
        text = text.lower()
    return [t for t in _TOKEN.findall(text) if len(t) > 1 or _SINGLE_OK.match(t)]


def stop_words(language: str | Iterable[str] | None = "english", extra: Iterable[str] = ()) -> frozenset[str]:
    """The stop-word set the helpers use: scikit-learn's English list plus common contractions.

    ``language=None`` keeps every word; a list/set is used as given. ``extra`` adds words (e.g.
    ``["human", "assistant"]`` for raw HH-RLHF transcripts).
    """
    if language is None:
        words: set[str] = set()
    elif isinstance(language, str):
        if language != "english":
            raise ValueError(f"only 'english' stop words are built in, got {language!r}; pass your own list instead")
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        words = set(ENGLISH_STOP_WORDS) | _CONTRACTIONS
    else:
        words = {str(w).lower() for w in language}
    return frozenset(words | {str(w).lower() for w in extra})


def type_token_ratio(texts, n_tokens: int | None = None, *, draws: int = 20, seed: int = 0) -> float:
    """Distinct words / words, measured on samples of exactly ``n_tokens`` words drawn (without replacement)
    from all the texts' words, averaged over ``draws`` samples.

    The plain ratio falls as the amount of text grows (common words repeat), so two groups whose lengths
    differ can only be compared on samples of the same size: pass the same ``n_tokens`` for both (``compare``
    uses the smaller group's word count). ``None`` uses every word once (the plain ratio).
    """
    toks = np.array([w for t in as_texts(texts, "type_token_ratio: texts") for w in tokenize(t)], dtype=object)
    if n_tokens is None or n_tokens >= len(toks):
        if n_tokens is not None and n_tokens > len(toks):
            raise ValueError(f"n_tokens={n_tokens} is more than the {len(toks)} words in these texts")
        return len(set(toks.tolist())) / max(1, len(toks))
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be a positive integer, got {n_tokens!r}")
    rng = np.random.default_rng(seed)
    return float(np.mean([len(set(rng.choice(toks, n_tokens, replace=False).tolist())) / n_tokens for _ in range(draws)]))
