"""Synthetic tasks the toy models are trained on, each with a known algorithm or known features.

Every task makes batches of fixed-length token sequences plus a mask of the positions the loss is
taken on (``mask[b, t]`` is True where predicting token ``t + 1`` from ``tokens[b, :t + 1]`` is
possible in principle). Token ids come from the shared toy vocabulary (``tokenizer.py``).

* ``InductionTask``: random tokens with a segment repeated once, ``[BOS] prefix r r suffix``. Built
  against the *positional shortcut*: the repeat length varies (2..30) and the repeat starts after a
  random prefix, so no fixed offset predicts the copy; a few lengths are held out of training
  (``eval_lengths``) to test that what was learned is real induction. Only the repeated half is
  predictable, so only it is in the loss.
* ``FactsTask``: ``[BOS] e5 a17 e9 a2 ...``: 96 entities, each with one fixed attribute (a random
  permutation, the same for every model). More facts than residual dimensions, so the MLP has to
  store them: the known features for comparing GeLU and SoLU neurons are the entities.
* ``SortTask``: ``[BOS] sort t9 t2 t5 : t2 t5 t9``: sort a list of distinct numbers (attention can do it:
  each output attends to the smallest input larger than the previous output).
* ``ModAddTask``: ``[BOS] t3 + t5 = t8`` modulo ``p`` (the task of the grokking / Fourier-circuit papers).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .tokenizer import N_ENTITIES, N_RANDOM, ToyTokenizer

_TOK = ToyTokenizer()
BOS = _TOK.bos_token_id
T0 = _TOK.token_to_id["t0"]  # ids of t0..t63 are T0..T0+63
E0 = _TOK.token_to_id["e0"]
A0 = _TOK.token_to_id["a0"]


def _check_batch(batch_size: int):
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


@dataclass
class InductionTask:
    """Repeated random tokens: ``[BOS] prefix r r suffix`` with varied repeat length and prefix."""

    n_ctx: int = 64
    n_tokens: int = N_RANDOM
    min_len: int = 2
    max_len: int = 30
    eval_lengths: tuple[int, ...] = (5, 9, 14, 19, 25)
    name: str = "induction"

    def __post_init__(self):
        if 1 + 2 * self.max_len > self.n_ctx:
            raise ValueError(f"max_len={self.max_len} repeated twice does not fit in n_ctx={self.n_ctx}")

    @property
    def train_lengths(self) -> list[int]:
        return [L for L in range(self.min_len, self.max_len + 1) if L not in self.eval_lengths]

    def batch(self, batch_size: int, generator: torch.Generator | None = None):
        """``(tokens [B, n_ctx], mask [B, n_ctx - 1])``; the mask marks the predictable repeated half."""
        _check_batch(batch_size)
        B, T, g = batch_size, self.n_ctx, generator
        tokens = torch.randint(T0, T0 + self.n_tokens, (B, T), generator=g)
        tokens[:, 0] = BOS
        lengths = torch.tensor(self.train_lengths)[torch.randint(len(self.train_lengths), (B,), generator=g)]
        room = T - 1 - 2 * lengths  # free positions for prefix + suffix
        start = 1 + (torch.rand(B, generator=g) * (room + 1)).long()  # first token of r
        pos = torch.arange(T)[None]
        second = (pos >= (start + lengths)[:, None]) & (pos < (start + 2 * lengths)[:, None])
        copied = tokens.gather(1, (pos - lengths[:, None]).clamp(min=0))
        tokens = torch.where(second, copied, tokens)
        # input position t predicts t+1: inputs from the first token of the copy to the one before its last
        mask = second[:, :-1] & (pos[:, :-1] < (start + 2 * lengths - 1)[:, None])
        return tokens, mask

    def repeated(self, length: int, batch_size: int = 64, generator: torch.Generator | None = None) -> torch.Tensor:
        """Evaluation sequences ``[BOS] r r`` (r: ``length`` distinct random tokens), shape [B, 1 + 2*length]."""
        _check_batch(batch_size)
        if not 1 <= length <= min(self.n_tokens, (self.n_ctx - 1) // 2):
            raise ValueError(f"repeat length must be in 1..{min(self.n_tokens, (self.n_ctx - 1) // 2)}, got {length}")
        r = torch.stack([torch.randperm(self.n_tokens, generator=generator)[:length] for _ in range(batch_size)]) + T0
        return torch.cat([torch.full((batch_size, 1), BOS), r, r], dim=1)


@dataclass
class FactsTask:
    """Entity -> attribute lookups ``[BOS] e a e a ...``; the attribute table is fixed by ``table_seed``."""

    n_ctx: int = 64
    n_entities: int = N_ENTITIES
    table_seed: int = 0
    name: str = "facts"

    def __post_init__(self):
        if self.n_entities > N_ENTITIES:
            raise ValueError(f"the toy vocabulary has {N_ENTITIES} entities, asked for {self.n_entities}")
        self.table = torch.randperm(self.n_entities, generator=torch.Generator().manual_seed(self.table_seed))

    def batch(self, batch_size: int, generator: torch.Generator | None = None):
        _check_batch(batch_size)
        n_pairs = (self.n_ctx - 1) // 2
        ent = torch.randint(0, self.n_entities, (batch_size, n_pairs), generator=generator)
        pairs = torch.stack([ent + E0, self.table[ent] + A0], dim=-1).reshape(batch_size, -1)
        tokens = torch.full((batch_size, self.n_ctx), _TOK.pad_token_id)
        tokens[:, 0] = BOS
        tokens[:, 1:1 + 2 * n_pairs] = pairs
        mask = torch.zeros(batch_size, self.n_ctx - 1, dtype=torch.bool)
        mask[:, 1:2 * n_pairs:2] = True  # at each entity, predict its attribute
        return tokens, mask

    def attribute(self, entity: int) -> int:
        return int(self.table[entity])


@dataclass
class SortTask:
    """``[BOS] sort x1 .. xn : sorted(x)`` with ``n`` distinct numbers from t0..t{n_values-1}."""

    length: int = 6
    n_values: int = 32
    name: str = "sort"

    @property
    def n_ctx(self) -> int:
        return 3 + 2 * self.length

    def batch(self, batch_size: int, generator: torch.Generator | None = None):
        _check_batch(batch_size)
        x = torch.stack([torch.randperm(self.n_values, generator=generator)[:self.length] for _ in range(batch_size)])
        ids = _TOK.token_to_id
        head = torch.tensor([BOS, ids["sort"]]).expand(batch_size, 2)
        sep = torch.full((batch_size, 1), ids[":"])
        tokens = torch.cat([head, x + T0, sep, x.sort(-1).values + T0], dim=1)
        mask = torch.zeros(batch_size, tokens.shape[1] - 1, dtype=torch.bool)
        mask[:, 2 + self.length:] = True  # from ':' on, predict the sorted list
        return tokens, mask


@dataclass
class ModAddTask:
    """``[BOS] a + b = (a+b) mod p`` over t0..t{p-1}; the loss is on the answer only."""

    p: int = 23
    name: str = "modadd"
    n_ctx: int = 6

    def __post_init__(self):
        if not 2 <= self.p <= N_RANDOM:
            raise ValueError(f"p must be in 2..{N_RANDOM}, got {self.p}")

    def batch(self, batch_size: int, generator: torch.Generator | None = None):
        _check_batch(batch_size)
        a = torch.randint(0, self.p, (batch_size,), generator=generator)
        b = torch.randint(0, self.p, (batch_size,), generator=generator)
        ids = _TOK.token_to_id
        const = lambda name: torch.full_like(a, ids[name])  # noqa: E731
        tokens = torch.stack([const("<bos>"), a + T0, const("+"), b + T0, const("="), (a + b) % self.p + T0], dim=1)
        mask = torch.zeros(batch_size, tokens.shape[1] - 1, dtype=torch.bool)
        mask[:, -1] = True  # at '=', predict the sum
        return tokens, mask


TASKS = {"induction": InductionTask, "facts": FactsTask, "sort": SortTask, "modadd": ModAddTask}


def get_task(name: str, **kwargs):
    """A task by name (``induction``, ``facts``, ``sort``, ``modadd``)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {sorted(TASKS)}")
    return TASKS[name](**kwargs)
