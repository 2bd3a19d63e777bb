"""Training a toy model on CPU: a plain AdamW loop over a mix of synthetic tasks, with a tqdm bar.

    model = ToyTransformer(ToyConfig(n_layers=2, d_vocab=len(ToyTokenizer())))
    history = train(model, {"induction": 1.0}, steps=1500)
    history.plot()          # the loss curve, with the induction "phase change"

Loss is cross-entropy on each task's predictable positions only (``mask`` from ``tasks.py``).
The learning rate warms up linearly, stays flat, and decays over the last ``decay_frac`` of the steps.
``stop_when(model, step) -> bool`` (checked every ``check_every`` steps) ends training early; the
benchmark uses it to time how long the induction criteria take to appear.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import torch

from ..torchutil import limit_threads
from .tasks import get_task


@dataclass
class TrainHistory:
    """Per-step training record: ``loss[task]`` lists, ``lr``, tokens seen, CPU seconds."""

    steps: list[int] = field(default_factory=list)
    loss: dict[str, list[float]] = field(default_factory=dict)
    lr: list[float] = field(default_factory=list)
    tokens_seen: int = 0
    seconds: float = 0.0  # wall-clock seconds of training, not counting stop_when checks
    cpu_seconds: float = 0.0  # CPU seconds of this process (all threads), not counting checks
    stopped_at: int | None = None

    def to_dict(self) -> dict:
        return {"steps": self.steps, "loss": self.loss, "lr": self.lr, "tokens_seen": self.tokens_seen,
                "seconds": self.seconds, "cpu_seconds": self.cpu_seconds, "stopped_at": self.stopped_at}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainHistory":
        return cls(**{k: d[k] for k in ("steps", "loss", "lr", "tokens_seen", "seconds", "cpu_seconds", "stopped_at")
                   if k in d})

    def frame(self, smooth: int = 25):
        """Loss per task as a DataFrame indexed by step (rolling mean over ``smooth`` steps)."""
        import pandas as pd

        df = pd.DataFrame(self.loss, index=pd.Index(self.steps, name="step"))
        return df.rolling(smooth, min_periods=1).mean() if smooth > 1 else df

    def plot(self, ax=None, smooth: int = 25, title: str = "training loss"):
        """Loss curves (one line per task); a phase change shows up as a sudden drop."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3.5))
        self.frame(smooth).plot(ax=ax)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats, predictable positions)")
        ax.set_title(title)
        return ax


def _split(batch_size: int, mix: dict[str, float]) -> dict[str, int]:
    total = sum(mix.values())
    counts = {k: max(1, round(batch_size * v / total)) for k, v in mix.items()}
    return counts


def lr_at(step: int, steps: int, lr: float, warmup: int, decay_frac: float) -> float:
    """Linear warmup to ``lr``, flat, then linear decay to 10% over the last ``decay_frac`` of training."""
    if step < warmup:
        return lr * (step + 1) / warmup
    decay_start = int(steps * (1 - decay_frac))
    if step < decay_start or decay_frac <= 0:
        return lr
    return lr * (1 - 0.9 * (step - decay_start) / max(1, steps - decay_start))


def train(model, mix: dict[str, float] | None = None, *, steps: int = 1500, batch_size: int = 32, lr: float = 3e-3,
          weight_decay: float = 0.01, warmup: int = 50, decay_frac: float = 0.3, seed: int = 0,
          task_kwargs: dict[str, dict] | None = None, stop_when=None, check_every: int = 50,
          progress: bool = True, desc: str | None = None, threads: int | None = 1, position: int = 0) -> TrainHistory:
    """Train ``model`` in place on a mix of tasks (``{"induction": 0.75, "facts": 0.25}``) and return its history.

    ``threads=1`` (default): these models are so small that one CPU thread is as fast as several, and
    much faster when other work shares the cores; ``None`` keeps torch's setting.
    """
    mix = dict(mix or {"induction": 1.0})
    if not mix or any(v <= 0 for v in mix.values()):
        raise ValueError(f"mix must map task names to positive weights, got {mix}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    task_kwargs = task_kwargs or {}
    tasks = {}
    for name in mix:
        kwargs = dict(task_kwargs.get(name, {}))
        if name in ("induction", "facts"):
            kwargs.setdefault("n_ctx", model.cfg.n_ctx)
        tasks[name] = get_task(name, **kwargs)
        if getattr(tasks[name], "n_ctx", 0) > model.cfg.n_ctx:
            raise ValueError(f"task {name!r} needs n_ctx={tasks[name].n_ctx} > the model's {model.cfg.n_ctx}")
    counts = _split(batch_size, mix)
    generator = torch.Generator().manual_seed(seed)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() >= 2 and not n.endswith(("W_pos",)) else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98))
    history = TrainHistory(loss={k: [] for k in mix})
    from tqdm.auto import tqdm

    bar = tqdm(range(steps), desc=desc or f"training {model.cfg.name or 'toy model'}", disable=not progress,
               mininterval=0.5, leave=False, position=position)
    model.train()
    threads_limit = contextlib.ExitStack()
    threads_limit.enter_context(limit_threads(threads))
    t0, c0 = time.perf_counter(), time.process_time()
    check_wall = check_cpu = 0.0
    try:
        for step in bar:
            for group in opt.param_groups:
                group["lr"] = lr_at(step, steps, lr, warmup, decay_frac)
            total = 0.0
            opt.zero_grad(set_to_none=True)
            for name, task in tasks.items():
                tokens, mask = task.batch(counts[name], generator)
                loss = model.loss_on(tokens, mask)
                (loss * mix[name] / sum(mix.values())).backward()
                history.loss[name].append(float(loss.detach()))
                history.tokens_seen += tokens.numel()
                total += float(loss.detach()) * mix[name] / sum(mix.values())
            opt.step()
            history.steps.append(step + 1)
            history.lr.append(opt.param_groups[0]["lr"])
            if step % 20 == 0:
                bar.set_postfix(loss=f"{total:.3f}")
            if stop_when is not None and (step + 1) % check_every == 0:
                w, c = time.perf_counter(), time.process_time()
                model.eval()
                done = stop_when(model, step + 1)
                model.train()
                check_wall += time.perf_counter() - w
                check_cpu += time.process_time() - c
                if done:
                    history.stopped_at = step + 1
                    break
    finally:
        bar.close()
        model.eval()
        threads_limit.close()
        history.seconds = time.perf_counter() - t0 - check_wall
        history.cpu_seconds = time.process_time() - c0 - check_cpu
    return history
