"""``evaluate(model, task)``: one prize-format task on one model, as a tidy results table."""
from __future__ import annotations

import warnings

import numpy as np

from .tasks import RESULT_COLUMNS, TaskError, check_task, rows_from_logprobs


def _as_task(task, task_type):
    """A task DataFrame from a DataFrame, a path (through interplab.data.load_prize_task) or a list of dicts."""
    import pandas as pd

    if isinstance(task, (list, tuple)) and task and isinstance(task[0], dict):
        task = pd.DataFrame(list(task))
    if isinstance(task, pd.DataFrame):
        if task.attrs.get("task_type") and (task_type is None or task_type == task.attrs["task_type"]):
            return task  # already validated by interplab.data
        from .. import data

        return data.load_prize_task(task, task_type=task_type)  # parses string classes, names bad rows
    if isinstance(task, (str, bytes)) or hasattr(task, "__fspath__"):
        from pathlib import Path

        from .. import data

        if not Path(task).exists() and isinstance(task, str) and not task.endswith((".csv", ".jsonl", ".json")):
            return data.load(task if "/" in task else f"inverse-scaling/{task}")
        return data.load_prize_task(task, task_type=task_type)
    raise TaskError(f"a task is a DataFrame, a prize-format CSV/JSONL path or a task name, got {type(task).__name__}")


def _model(model, tokenizer=None):
    """``(kind, model, tokenizer, name)``: kind "api" for an ``openai:`` name (scored through interplab.lm),
    else "local", the model and tokenizer from :func:`interplab.models.resolve`."""
    from .. import models

    if isinstance(model, str) and models.parse_model_name(model).backend == "openai":
        return "api", None, None, model
    m, tok = models.resolve(model, tokenizer, kind="causal")
    return "local", m, tok, models.display_name(m)


MISSING_LOGPROB = -20.0  # first-token approximation: a class absent from the server's top-k (p ~ 2e-9)


def _api_logprobs(name, prompts, classes, *, approximate: bool, progress: bool = True, api_options=None):
    """Class log-probs through interplab.lm: exact with echo+logprobs, or the labelled first-token approximation."""
    from .. import lm

    opts = dict(api_options or {})
    try:
        return [np.asarray(v, dtype=float) for v in lm.score_many(name, prompts, classes, progress=progress, **opts)], None
    except lm.ScoringNotSupportedError as exc:
        if not approximate:
            raise lm.ScoringNotSupportedError(
                f"{exc} -- or evaluate(..., approximate=True): single-token classes scored from the first "
                "generated token's top_logprobs (an approximation, labelled as such in the results)") from None
    out = []
    for p, cs in zip(prompts, classes):
        if any(len(c.split()) != 1 for c in cs):
            raise lm.ScoringNotSupportedError(
                f"{name}: the first-token approximation scores single-word classes only, got {cs}; use a "
                "completions endpoint with echo+logprobs (vLLM, davinci-002) or a local model")
        got = lm.first_token_logprobs(name, p, cs, missing=MISSING_LOGPROB, **opts)
        out.append(np.asarray([got[c] for c in cs], dtype=float))
    return out, (f"first-token top_logprobs (APPROXIMATION: single-token classes only; a class outside the "
                 f"server's top 20 gets log-prob {MISSING_LOGPROB:g})")


def evaluate(model, task, *, tokenizer=None, task_type: str | None = None, approximate: bool = False,
             api_options: dict | None = None, progress: bool = True, **scoring_options):
    """Score a prize-format ``task`` on ``model``; one row per item, the prize pipeline's columns.

    ``model``: a model name (``"hf:gpt2"``, ``"toy:attn-only-2l"``, ``"openai:davinci-002"``), a
    ``(model, tokenizer)`` pair, or a model object with ``tokenizer=``. ``task``: a DataFrame from
    ``interplab.data.load_prize_task`` (or ``data.load("inverse-scaling/<task>")``), a path, or a task
    name. Returns a DataFrame indexed by ``index`` (the task's row) with ``loss, correct, total_logprob``
    (classification), ``loss`` (sequence_prob) or ``logodds_difference, correct, total_logprob``
    (logodds); ``attrs`` hold model, task_type, n_classes, n_params. Write it with ``write_results``.

    API models score through ``interplab.lm`` (completions with echo+logprobs). ``approximate=True``
    lets chat endpoints answer from the first generated token's ``top_logprobs`` (single-token classes
    only); the result's ``attrs["approximation"]`` then says so. ``api_options`` go to ``interplab.lm``
    (``base_url`` for vLLM / any OpenAI-compatible server, ``api_key``, ``cache``, ``budget``).
    Other keyword arguments go to :func:`continuation_logprobs` (``batch_tokens``, ``method``).
    """
    import pandas as pd

    from .scoring import continuation_logprobs

    df = _as_task(task, task_type)
    task_type = check_task(df, task_type)
    kind, m, tok, name = _model(model, tokenizer)
    prompts = df["prompt"].tolist()
    if task_type == "sequence_prob":
        classes = [[c] for c in df["completion"]]
    else:
        classes = [list(c) for c in df["classes"]]
    approx = None

    def score(ps, desc):
        nonlocal approx
        if kind == "api":
            vals, approx = _api_logprobs(name, ps, classes, approximate=approximate, progress=progress,
                                         api_options=api_options)
            return vals
        return continuation_logprobs(m, tok, ps, classes, progress=progress, desc=desc, **scoring_options)

    lps = score(prompts, f"{name}")
    other = score(df["other_prompt"].tolist(), f"{name} (other_prompt)") if "logodds" in task_type else None
    rows = rows_from_logprobs(task_type, df, lps, other)
    out = pd.DataFrame(rows, columns=RESULT_COLUMNS[task_type], index=pd.Index(df.index, name="index"))
    if "correct" in out:
        out["correct"] = out["correct"].astype(int)
    out.attrs.update({
        "model": name, "task_type": task_type,
        "n_classes": float(np.mean([len(c) for c in classes])) if task_type != "sequence_prob" else None,
        "n_params": _n_params(m) if kind == "local" else None,
        "task": getattr(df, "attrs", {}).get("dataset") or getattr(df, "attrs", {}).get("name"),
    })
    if approx:
        out.attrs["approximation"] = approx
        warnings.warn(f"{name}: scored by {approx}", stacklevel=2)
    return out


def _n_params(model):
    try:
        from ..models import n_params

        return n_params(model)
    except Exception:  # noqa: BLE001
        return None


def class_logprobs(model, prompts, classes, *, tokenizer=None, api_options: dict | None = None, progress: bool = True,
                   **scoring_options):
    """Raw class log-probs: ``out[i][c] = log p(classes[i][c] | prompts[i])`` (local models)."""
    from .scoring import continuation_logprobs

    kind, m, tok, name = _model(model, tokenizer)
    if kind == "api":
        return _api_logprobs(name, list(prompts), [list(c) for c in classes], approximate=False, progress=progress,
                             api_options=api_options)[0]
    return continuation_logprobs(m, tok, list(prompts), [list(c) for c in classes], progress=progress, **scoring_options)
