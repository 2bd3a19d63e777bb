"""Why did the classifier say that? LIME, ELI5 and SHAP on one set of models, compared and stress-tested.

Text::

    from interplab import explain
    clf = explain.text_classifier("minilm", texts=train.text, labels=train.label,
                                  class_names=["neg", "pos"])       # MiniLM + logistic regression
    att = explain.explain_text(review, clf, "lime", label="pos", num_samples=1000)
    att                                     # highlighted text + weight bars (plain HTML, offline)
    att.plot()                              # the same as a static matplotlib figure
    table = explain.word_weights([att, explain.explain_text(review, clf, "shap", label="pos")])
    explain.rank_correlation(table)         # do the methods agree?
    explain.stability(review, clf, seeds=(0, 1, 2), num_samples=(250, 1000)).summary
    per_text, summary = explain.agreement_over(random_reviews, {"lime": f, "shap": g})  # many texts, with spread
    explain.faithfulness([att, shap_att], clf).summary   # do the weights match what deleting a word does?
    explain.minimal_pairs(pairs, clf, label="pos")      # "good" vs "not good": is the edit credited?

``wrap_classifier`` makes any text classifier (scikit-learn pipeline, ``transformers`` sequence
classifier, or a function) a batched, deduplicating ``predict_proba`` that LIME and SHAP can call
thousands of times without running out of memory. Tabular models: ``global_rankings``,
``permutation_ranking``, ``shap_values``, ``lime_tabular``, ``linear_baseline`` (see :mod:`interplab.explain.tabular`).
"""
from __future__ import annotations

from .attribution import Attribution
from .classifier import BatchedClassifier, EncoderClassifier, batched_map, text_classifier, wrap_classifier
from .faithfulness import (Faithfulness, MinimalPairs, delete_words, deletion_effects, faithfulness,
                           minimal_pairs)
from .render import (attribution_html, compare_html, eli5_html, overlapping_texts, plot_comparison, plot_stability,
                     plot_text, plot_waterfall, plot_weights)
from .tabular import (global_rankings, lime_ranking, lime_tabular, linear_baseline, model_output, permutation_ranking,
                      ranking_agreement, shap_values)
from .text import (METHODS, Stability, agreement_over, explain_text, first_words, rank_correlation, stability,
                   stability_over, top_overlap, word_weights)

__all__ = [
    "Attribution", "BatchedClassifier", "agreement_over", "stability_over", "EncoderClassifier", "METHODS", "Stability", "attribution_html",
    "batched_map", "compare_html", "first_words", "eli5_html", "explain_text", "global_rankings", "lime_ranking",
    "lime_tabular", "linear_baseline", "model_output", "permutation_ranking", "plot_comparison", "plot_stability", "plot_text", "plot_weights", "plot_waterfall", "overlapping_texts",
    "rank_correlation", "ranking_agreement", "shap_values", "stability", "text_classifier", "top_overlap", "word_weights",
    "wrap_classifier", "Faithfulness", "MinimalPairs", "delete_words", "deletion_effects", "faithfulness",
    "minimal_pairs",
]
