"""Toy transformers built on CPU: a zoo of 12 small models with induction heads found and explained.

    model, tok = interplab.toy.load("attn-only-2l")   # trains (~30 s CPU) on first use, then cached
    tokens = tok("t3 t9 t4 t3 t9", return_tensors="pt")["input_ids"]
    logits, cache = model.run_with_cache(tokens)      # cache["blocks.1.attn.pattern"]: [B, H, T, T]
    interplab.toy.check_induction(model)              # criteria (a), (b), (c), with numbers

**Text format.** Toy text is whitespace-separated words from one shared vocabulary, one word per
token, ``<bos>`` prepended by the tokenizer: ``t0 … t63`` are the "random" tokens of the induction
task (``"t3 t9 t4 t3 t9"`` should continue with ``" t4"``), ``e0 … e95`` / ``a0 … a95`` the entities and
attributes of the facts task (``"e5 a17"``), and ``+ = sort :`` the markers of the algorithmic tasks
(``"t3 + t5 = t8"``, ``"sort t9 t2 t5 : t2 t5 t9"``). ``tok.decode(tok.encode(text))`` gives the text
back (with ``<bos>`` first).

**Models.** ``attn-only-{1,2,3,4}l``, ``gelu-{1..4}l`` and ``solu-{1..4}l`` (``list_models()`` lists them, with
``RECIPES`` for the exact shapes and training). ``interplab.models.load_causal_lm("toy:attn-only-2l")``
gives the same pair, so every notebook that takes a model name takes a toy model.

Modules: ``model`` (the transformer, one readable file), ``tokenizer``, ``tasks`` (synthetic data),
``train`` (the loop), ``diagnostics`` (head scores, logit attribution, ablations, the induction
criteria), ``neurons`` (GeLU vs SoLU neuron statistics), ``zoo`` (build / load / cache / CLI).
"""
from __future__ import annotations

from .diagnostics import (SCORE_KINDS, InductionCheck, ablation_table, attention_result, check_induction,
                          direct_logit_attribution, induction_scores, loss_by_position, plot_in_context_loss, repeat_metrics,
                          repeated_tokens,
                          scores_from_patterns)
from .model import ToyConfig, ToyTransformer
from .tasks import FactsTask, InductionTask, ModAddTask, SortTask, get_task
from .tokenizer import ToyTokenizer
from .train import TrainHistory, train
from .zoo import NAMES, RECIPES, build, list_models, load, original_configs, train_model

__all__ = [
    "NAMES", "RECIPES", "SCORE_KINDS", "FactsTask", "InductionCheck", "InductionTask", "ModAddTask", "SortTask",
    "ToyConfig", "ToyTokenizer", "ToyTransformer", "TrainHistory", "ablation_table", "attention_result", "build",
    "check_induction", "direct_logit_attribution", "get_task", "induction_scores", "load", "loss_by_position",
    "original_configs", "plot_in_context_loss", "repeat_metrics", "repeated_tokens", "scores_from_patterns", "train", "train_model", "list_models",
]
