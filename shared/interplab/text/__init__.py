"""Extract information from a pile of texts: what words it uses, what sets it apart, what it is about.

Small helpers over scikit-learn and the embedded MiniLM encoder, for studying model outputs or a
dataset (HH-RLHF chosen vs rejected replies, ETHICS scenarios, a CSV of your model's answers):

* ``frequencies(texts)``: word and n-gram counts with English stop words removed.
* ``tfidf(texts)`` / ``top_terms(texts)``: TF-IDF weights and each document's most characteristic terms.
* ``distinctive_terms(a, b)``: the terms that most set group A apart from group B (and B from A),
  by mean TF-IDF difference or by log-odds with an informative Dirichlet prior.
* ``embed(texts)``: sentence embeddings (mean pooling + L2 norm, as all-MiniLM-L6-v2 was trained),
  batched by length, with a progress bar, cached on disk, truncated to the encoder's context with
  a warning. ``project``/``plot_map`` draw them in 2-D (PCA, t-SNE, or UMAP when installed);
  ``search`` finds the nearest texts to a query.
* ``topics(texts)``: NMF or LDA topics: top words per topic, topic share per document and per group
  (it warns below ``MIN_TOPIC_TEXTS`` texts: topics from a hundred short texts are mostly noise).
* ``type_token_ratio(texts, n_tokens)``: vocabulary richness on equal-size token samples, so groups of
  different lengths can be compared (the plain ratio falls as a text grows).
* ``compare(a, b)``: all of the above for two sets of texts, side by side.

The tokenizer keeps contractions ("don't"), splits Chinese/Japanese into characters and keeps emoji
as tokens, so non-English and chat text gives sensible counts.
"""
from __future__ import annotations

from ..inputs import as_texts
from .comparison import Comparison, compare
from .embeddings import TruncationWarning, context_length, embed, search
from .maps import plot_map, project
from .terms import TfidfResult, distinctive_terms, frequencies, plot_terms, side_by_side, tfidf, top_terms
from .tokens import stop_words, tokenize, type_token_ratio
from .topic_models import MIN_TOPIC_TEXTS, FewTextsWarning, Topics, topics

__all__ = [
    "TruncationWarning",
    "FewTextsWarning",
    "MIN_TOPIC_TEXTS",
    "type_token_ratio",
    "as_texts",
    "tokenize",
    "stop_words",
    "frequencies",
    "tfidf",
    "top_terms",
    "distinctive_terms",
    "embed",
    "context_length",
    "project",
    "plot_map",
    "search",
    "topics",
    "Topics",
    "compare",
    "Comparison",
    "plot_terms",
]
