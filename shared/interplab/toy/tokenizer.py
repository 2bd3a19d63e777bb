"""Word-level tokenizer over the toy vocabulary, with the Hugging Face calls people already know.

Text is whitespace-separated tokens, one word per token, so text round-trips exactly::

    tok = ToyTokenizer()
    tok("t3 t9 t4 t3 t9")["input_ids"]   # [0, 10, 16, 11, 10, 16]  (<bos> first, like GPT-style LMs)
    tok.decode(ids)                        # "<bos> t3 t9 t4 t3 t9"

The vocabulary (identical for every toy model) is:

* ``<bos>`` (id 0, prepended by default), ``<pad>``, ``<unk>``: special tokens;
* ``+ = sort :``: markers of the algorithmic tasks (``t3 + t5 = t8``, ``sort t9 t2 t5 : t2 t5 t9``);
* ``t0 … t63``: the "random" tokens of the induction task, also the numbers of the algorithmic tasks;
* ``e0 … e95`` and ``a0 … a95``: entities and attributes of the facts task (``e5 a17`` means
  "e5 has attribute a17"), the task whose known features the GeLU / SoLU neurons are compared on.
"""
from __future__ import annotations

N_RANDOM = 64
N_ENTITIES = 96
SPECIALS = ["<bos>", "<pad>", "<unk>"]
MARKERS = ["+", "=", "sort", ":"]


def default_vocab() -> list[str]:
    return (SPECIALS + MARKERS + [f"t{i}" for i in range(N_RANDOM)]
            + [f"e{i}" for i in range(N_ENTITIES)] + [f"a{i}" for i in range(N_ENTITIES)])


class ToyTokenizer:
    """Whitespace word-level tokenizer: ``tok(text)["input_ids"]``, ``encode``, ``decode``, ``convert_ids_to_tokens``."""

    bos_token, pad_token, unk_token = "<bos>", "<pad>", "<unk>"
    eos_token = None
    padding_side = "right"

    def __init__(self, vocab: list[str] | None = None, model_max_length: int = 64):
        self.vocab = list(vocab or default_vocab())
        if len(set(self.vocab)) != len(self.vocab):
            raise ValueError("vocabulary has duplicate tokens")
        self.token_to_id = {t: i for i, t in enumerate(self.vocab)}
        self.model_max_length = model_max_length

    # --- ids of the special tokens ---------------------------------------------------------------
    @property
    def bos_token_id(self) -> int:
        return self.token_to_id[self.bos_token]

    @property
    def pad_token_id(self) -> int:
        return self.token_to_id[self.pad_token]

    @property
    def unk_token_id(self) -> int:
        return self.token_to_id[self.unk_token]

    eos_token_id = None

    @property
    def all_special_ids(self) -> list[int]:
        return [self.token_to_id[t] for t in SPECIALS]

    @property
    def all_special_tokens(self) -> list[str]:
        return list(SPECIALS)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.token_to_id)

    # --- text <-> ids ----------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        return text.split()

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self.token_to_id.get(tokens, self.unk_token_id)
        return [self.token_to_id.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        if isinstance(ids, int) or (hasattr(ids, "ndim") and ids.ndim == 0):
            return self.vocab[int(ids)]
        return [self.vocab[int(i)] for i in ids]

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text``, with ``<bos>`` first unless the text already starts with it."""
        words = self.tokenize(text)
        unknown = [w for w in words if w not in self.token_to_id]
        if unknown:
            raise ValueError(f"unknown toy token(s) {unknown[:5]}: toy text is whitespace-separated words from the "
                             f"toy vocabulary (t0..t{N_RANDOM - 1}, e0.., a.., + = sort :)")
        ids = [self.token_to_id[w] for w in words]
        if add_special_tokens and (not ids or ids[0] != self.bos_token_id):
            ids = [self.bos_token_id] + ids
        return ids

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, int):
            ids = [ids]
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return " ".join(self.vocab[int(i)] for i in ids if int(i) not in special)

    def batch_decode(self, batch, skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(ids, skip_special_tokens=skip_special_tokens) for ids in batch]

    def __call__(self, text, add_special_tokens: bool = True, return_tensors: str | None = None,
                 padding: bool | str = False, truncation: bool = False, max_length: int | None = None, **_):
        """HF-style call: a string or a list of strings -> ``{"input_ids", "attention_mask"}``."""
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        ids = [self.encode(t, add_special_tokens=add_special_tokens) for t in texts]
        if truncation:
            limit = max_length or self.model_max_length
            ids = [x[:limit] for x in ids]
        masks = [[1] * len(x) for x in ids]
        if padding or return_tensors is not None and len(ids) > 1:
            width = max(len(x) for x in ids) if ids else 0
            if padding == "max_length" and max_length:
                width = max_length
            pad = lambda x, v: x + [v] * (width - len(x)) if self.padding_side == "right" else [v] * (width - len(x)) + x  # noqa: E731
            ids = [pad(x, self.pad_token_id) for x in ids]
            masks = [pad(m, 0) for m in masks]
        if return_tensors == "pt":
            import torch

            return {"input_ids": torch.tensor(ids, dtype=torch.long), "attention_mask": torch.tensor(masks, dtype=torch.long)}
        if return_tensors is not None:
            raise ValueError(f"return_tensors must be None or 'pt', got {return_tensors!r}")
        if single:
            return {"input_ids": ids[0], "attention_mask": masks[0]}
        return {"input_ids": ids, "attention_mask": masks}

    def __repr__(self) -> str:
        return f"ToyTokenizer(vocab_size={self.vocab_size}, words like 't17', '<bos>' first)"
