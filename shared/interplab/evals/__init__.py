"""Inverse-scaling and TruthfulQA evaluation: prize-format tasks on any model that can score, and the scaling plot.

::

    from interplab import data, evals
    task = data.load_prize_task("my_task.csv")           # prompt, classes, answer_index (validated)
    res = evals.evaluate("toy:attn-only-2l", task)       # one row per item: loss, correct, total_logprob
    evals.write_results(res, "results/my_task/attn-only-2l.csv")   # the prize pipeline's CSV layout
    published = evals.read_results_dir(".../conjunction-fallacy-0shot-gpt3")  # {model: DataFrame}
    evals.plot_scaling(published, metric="loss", n_classes=2)      # log-log, one line per family
    evals.truthfulqa_mc("hf:gpt2", n=100)                 # MC1 / MC2 with the same scorer

Scoring follows the Inverse Scaling Prize pipeline exactly (see :mod:`interplab.evals.tasks`); the
local scorer (:mod:`interplab.evals.scoring`) runs each prompt once and reads every class from the
same forward pass. API models score through :mod:`interplab.lm` (completions with echo+logprobs).
"""
from __future__ import annotations

from .core import class_logprobs, evaluate
from .induction import induction_task, vocab_words
from .plot import plot_scaling
from .results import (PARAM_COUNTS, bootstrap_ci, model_family, param_count, published_results_dir, read_results,
                      read_results_dir, summarize, write_results)
from .scoring import continuation_logprobs
from .tasks import RESULT_COLUMNS, TASK_TYPES, TaskError, check_task, classification_row, detect_task_type, logodds_row
from .truthfulqa import QA_PRIMER, truthfulqa_mc

__all__ = ["evaluate", "class_logprobs", "continuation_logprobs", "check_task", "detect_task_type",
           "TaskError", "TASK_TYPES", "RESULT_COLUMNS", "classification_row", "logodds_row", "read_results",
           "write_results", "read_results_dir", "summarize", "bootstrap_ci", "PARAM_COUNTS", "param_count",
           "model_family", "plot_scaling", "truthfulqa_mc", "QA_PRIMER", "induction_task", "vocab_words",
           "published_results_dir"]
