"""Text classifiers as one batched ``predict_proba(texts)``: what LIME, ELI5 and SHAP call thousands of times.

LIME hands its classifier 1,000-5,000 perturbed copies of one text in a single call; a naive
``classifier_fn`` either loops over them one at a time (slow) or tokenizes them all as one batch
(lime #681: out of memory on long texts). :class:`BatchedClassifier` sits in between: it
deduplicates identical texts, sorts the rest by length (so a batch pads to similar lengths), runs
fixed-size batches with a progress bar, and puts the probabilities back in the caller's order.

* :func:`wrap_classifier` wraps a scikit-learn pipeline, a ``transformers`` sequence classifier
  (with its tokenizer), an :class:`EncoderClassifier`, or any ``f(list[str]) -> probabilities``.
* :class:`EncoderClassifier` is a sentence-embedding classifier: a frozen encoder (the embedded
  MiniLM by default), mean pooling (what all-MiniLM-L6-v2 was trained for), and a
  logistic-regression head you fit in seconds.
* ``precision``: torch models run their matrix multiplies in bfloat16 where the hardware does
  that natively (a CPU with Intel AMX, a bf16 GPU; ``interplab.torchutil.fast_bfloat16``) and in
  float32 elsewhere. On an AMX CPU that makes LIME ~2x faster; probabilities move by < 0.01 and
  LIME weights by ~25x less than changing LIME's seed does (benchmarks/bench_explain.py).
  ``precision="float32"`` gives the plain float32 numbers everywhere.
* :func:`text_classifier` turns a model name (``"minilm"``, a Hugging Face id) into a classifier.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

DEFAULT_BATCH = 32          # torch models: big enough to fill 2 CPU cores, small enough for 512-token texts
DEFAULT_BATCH_SKLEARN = 512  # sklearn pipelines are cheap per text


def _as_texts(texts, what: str = "texts") -> list[str]:
    """A list of str (an empty list is fine); a single string is refused, with a clear TypeError."""
    from ..inputs import as_texts

    return as_texts(texts, what, allow_empty=True, one_string=False)


def batched_map(fn: Callable[[list[str]], np.ndarray], texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH,
                sort_by_length: bool = True, progress: bool | None = None, desc: str = "texts",
                stats: dict | None = None) -> np.ndarray:
    """Apply ``fn`` (one batch of texts -> one row per text) to ``texts`` in fixed-size batches.

    Identical texts are computed once; texts are sorted by length so each batch pads little; rows
    come back in the order of ``texts``. ``progress=None`` shows a bar when there are more than two
    batches. ``stats``, when given, is updated with texts/unique/batches/seconds.
    """
    from tqdm.auto import tqdm

    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    texts = _as_texts(texts)
    t0 = time.perf_counter()
    slot: dict[str, int] = {}
    unique: list[str] = []
    inverse = np.empty(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        j = slot.get(t)
        if j is None:
            j = slot[t] = len(unique)
            unique.append(t)
        inverse[i] = j
    order = sorted(range(len(unique)), key=lambda j: len(unique[j])) if sort_by_length else list(range(len(unique)))
    n_batches = -(-len(unique) // batch_size)
    show = n_batches > 2 if progress is None else bool(progress)
    out = None
    with tqdm(total=len(unique), desc=desc, unit="text", leave=False, disable=not show) as bar:
        for start in range(0, len(unique), batch_size):
            idx = order[start:start + batch_size]
            rows = np.asarray(fn([unique[j] for j in idx]))
            if rows.ndim == 0 or rows.shape[0] != len(idx):
                raise ValueError(f"the model returned {rows.shape[0] if rows.ndim else 'a scalar'} rows for a batch of {len(idx)} texts")
            if out is None:
                out = np.empty((len(unique),) + rows.shape[1:], dtype=rows.dtype if rows.dtype.kind == "f" else float)
            out[idx] = rows
            bar.update(len(idx))
    if stats is not None:
        stats["calls"] = stats.get("calls", 0) + 1
        stats["texts"] = stats.get("texts", 0) + len(texts)
        stats["unique"] = stats.get("unique", 0) + len(unique)
        stats["batches"] = stats.get("batches", 0) + n_batches
        stats["max_batch"] = max(stats.get("max_batch", 0), min(batch_size, len(unique)))
        stats["seconds"] = stats.get("seconds", 0.0) + time.perf_counter() - t0
    if out is None:
        return np.empty((0,))
    return out[inverse]


class BatchedClassifier:
    """``predict_proba(texts) -> (n_texts, n_classes)`` that dedupes, sorts by length and batches.

    Pass it wherever LIME, ELI5's TextExplainer or SHAP want a classifier function. ``stats`` counts
    what reached the model (texts asked for, unique texts run, batches, seconds).
    """

    def __init__(self, predict_batch: Callable[[list[str]], np.ndarray], *, batch_size: int = DEFAULT_BATCH,
                 class_names: Sequence[str] | None = None, tokenizer=None, estimator=None,
                 sort_by_length: bool = True, progress: bool | None = None, name: str = "classifier"):
        if not callable(predict_batch):
            raise TypeError(f"predict_batch must be callable, got {type(predict_batch).__name__}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.predict_batch = predict_batch
        self.batch_size = int(batch_size)
        self.class_names = [str(c) for c in class_names] if class_names is not None else None
        self.tokenizer = tokenizer
        self.estimator = estimator
        self.sort_by_length = sort_by_length
        self.progress = progress
        self.name = name
        self.stats: dict = {}

    def _batch(self, batch: list[str]) -> np.ndarray:
        p = np.asarray(self.predict_batch(batch), dtype=float)
        if p.ndim == 1:  # a probability of the positive class: make it two columns
            p = np.stack([1.0 - p, p], axis=1)
        if p.ndim != 2:
            raise ValueError(f"{self.name}: expected probabilities of shape (n_texts, n_classes), got shape {p.shape}")
        if not np.all(np.isfinite(p)) or p.min() < -1e-6 or np.abs(p.sum(axis=1) - 1).max() > 1e-3:
            raise ValueError(
                f"{self.name}: the model returned scores that are not probabilities (rows sum to "
                f"{p.sum(axis=1).min():.3g}..{p.sum(axis=1).max():.3g}); pass predict_proba, or softmax the logits"
            )
        if self.class_names is not None and p.shape[1] != len(self.class_names):
            raise ValueError(f"{self.name}: the model returned {p.shape[1]} classes but class_names has {len(self.class_names)}")
        # float32 heads leave rows summing to 1 +- 1e-7, which ELI5's sampler (numpy choice) rejects
        return np.clip(p, 0.0, None) / np.clip(p, 0.0, None).sum(axis=1, keepdims=True)

    def predict_proba(self, texts) -> np.ndarray:
        """Class probabilities for each text, shape (len(texts), n_classes)."""
        texts = _as_texts(texts)
        if not texts:
            return np.empty((0, len(self.class_names) if self.class_names else 0))
        return batched_map(self._batch, texts, batch_size=self.batch_size, sort_by_length=self.sort_by_length,
                           progress=self.progress, desc=self.name, stats=self.stats)

    __call__ = predict_proba

    def predict(self, texts) -> np.ndarray:
        """Index of the most probable class for each text.

        A wrapped :class:`EncoderClassifier` answers through its embedding cache (``embed``): held-out
        reviews scored again, in a re-run, another notebook or a test, are embedded once. Only here:
        LIME and SHAP call :meth:`predict_proba`, so their perturbed texts never fill the cache."""
        if isinstance(self.estimator, EncoderClassifier):
            texts = _as_texts(texts)
            if not texts:
                return np.empty(0, dtype=np.int64)
            return np.asarray(self.estimator.predict_proba(texts)).argmax(axis=1)
        return self.predict_proba(texts).argmax(axis=1)

    @property
    def n_classes(self) -> int | None:
        return len(self.class_names) if self.class_names is not None else None

    def reset_stats(self) -> None:
        self.stats = {}

    def __repr__(self) -> str:
        return f"BatchedClassifier({self.name!r}, batch_size={self.batch_size}, classes={self.class_names})"


def _is_torch_module(obj) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, torch.nn.Module)


def _hf_predict_batch(model, tokenizer, max_length: int, precision: str):
    import torch

    from ..torchutil import autocast

    def run(batch: list[str]) -> np.ndarray:
        enc = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        enc = {k: v.to(model.device) for k, v in enc.items()}
        with torch.inference_mode(), autocast(precision, str(model.device)):
            logits = model(**enc).logits.float()
        if logits.shape[-1] == 1:  # one sigmoid output
            p = torch.sigmoid(logits[:, 0])
            return torch.stack([1 - p, p], dim=1).cpu().numpy()
        return torch.softmax(logits, dim=-1).cpu().numpy()

    return run


def wrap_classifier(model, tokenizer=None, *, batch_size: int | None = None, class_names: Sequence[str] | None = None,
                    max_length: int = 256, precision: str = "auto", progress: bool | None = None,
                    name: str | None = None) -> BatchedClassifier:
    """Wrap a text classifier as a :class:`BatchedClassifier`.

    ``model`` may be a scikit-learn pipeline (anything with ``predict_proba`` over raw texts), an
    :class:`EncoderClassifier`, a ``transformers`` sequence-classification model (give its
    ``tokenizer``), a ``BatchedClassifier`` (returned re-configured), or a function
    ``f(list_of_texts) -> probabilities``. ``precision`` ("auto", "float32", "bfloat16") applies to
    a ``transformers`` model; an :class:`EncoderClassifier` keeps the precision it was built with.
    """
    if isinstance(model, BatchedClassifier):
        return BatchedClassifier(model.predict_batch, batch_size=model.batch_size if batch_size is None else batch_size,
                                 class_names=class_names or model.class_names, tokenizer=tokenizer or model.tokenizer,
                                 estimator=model.estimator, progress=progress, name=name or model.name)
    if isinstance(model, EncoderClassifier):
        return BatchedClassifier(model.predict_proba_batch, batch_size=model.batch_size if batch_size is None else batch_size,
                                 class_names=class_names or model.class_names, tokenizer=model.tokenizer,
                                 estimator=model, progress=progress, name=name or model.name)
    if _is_torch_module(model):
        if tokenizer is None:
            raise TypeError("a transformers model needs its tokenizer: wrap_classifier(model, tokenizer)")
        if not hasattr(getattr(model, "config", None), "num_labels") or not type(model).__name__.endswith("ForSequenceClassification"):
            raise TypeError(
                f"{type(model).__name__} is not a sequence classifier (no classification head); "
                "use EncoderClassifier(model, tokenizer).fit(texts, labels) to train a head on its embeddings"
            )
        from .. import models
        from ..torchutil import resolve_precision

        model.eval()
        prec = resolve_precision(precision, str(model.device))
        id2label = getattr(model.config, "id2label", None) or {}
        names = class_names or [str(id2label.get(i, i)) for i in range(max(model.config.num_labels, 2))]
        return BatchedClassifier(_hf_predict_batch(model, tokenizer, max_length, prec), batch_size=DEFAULT_BATCH if batch_size is None else batch_size,
                                 class_names=names, tokenizer=tokenizer, estimator=model, progress=progress,
                                 name=name or f"{models.display_name(model)} ({prec})")
    if hasattr(model, "predict_proba"):
        classes = getattr(model, "classes_", None)
        if classes is None:
            raise ValueError(f"{type(model).__name__} is not fitted yet (no classes_): call .fit(texts, labels) first")
        names = class_names or [str(c) for c in classes]
        return BatchedClassifier(lambda batch: model.predict_proba(batch), batch_size=DEFAULT_BATCH_SKLEARN if batch_size is None else batch_size,
                                 class_names=names, tokenizer=tokenizer, estimator=model, progress=progress,
                                 name=name or type(model).__name__)
    if callable(model):
        return BatchedClassifier(model, batch_size=DEFAULT_BATCH if batch_size is None else batch_size, class_names=class_names,
                                 tokenizer=tokenizer, progress=progress, name=name or getattr(model, "__name__", "classifier"))
    raise TypeError(f"cannot wrap {type(model).__name__} as a text classifier: give a sklearn pipeline, a "
                    "transformers sequence classifier with its tokenizer, an EncoderClassifier or a function")


class EncoderClassifier:
    """A frozen encoder + mean pooling + a logistic-regression head: ``EncoderClassifier(model, tok).fit(X, y)``.

    Embeddings are L2-normalised mean-pooled last hidden states (the sentence embedding
    all-MiniLM-L6-v2 was trained to produce). ``predict_proba`` is batched like
    :class:`BatchedClassifier`; ``wrap_classifier(clf)`` gives the wrapper LIME and SHAP call.
    ``precision`` ("auto", "float32", "bfloat16") is resolved once, here, and used for fitting and
    predicting alike, so the head is trained on the embeddings it will see (``clf.precision``).
    """

    def __init__(self, model, tokenizer, *, C: float = 10.0, max_length: int = 256, batch_size: int = DEFAULT_BATCH,
                 class_names: Sequence[str] | None = None, name: str | None = None, precision: str = "auto"):
        from .. import models
        from ..torchutil import resolve_precision

        self.precision = resolve_precision(precision, str(getattr(model, "device", "cpu")))
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.C = C
        self.max_length = max_length
        self.batch_size = batch_size
        self.class_names = list(class_names) if class_names is not None else None
        self.name = name or f"{models.display_name(model)} + logistic regression ({self.precision})"
        self.head = None

    def embed_batch(self, batch: list[str]) -> np.ndarray:
        """Sentence embeddings of one batch (no batching, dedupe or sorting here), pooled by
        ``interplab.text.embeddings.encode_batch``, the pooling ``text.embed`` uses."""
        import torch

        from ..text.embeddings import encode_batch

        enc = self.tokenizer(list(batch), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        device = self.model.device
        with torch.inference_mode():
            pooled = encode_batch(self.model, enc["input_ids"].to(device), enc["attention_mask"].to(device),
                                  precision=self.precision)
        return pooled.cpu().numpy()

    def embed(self, texts, *, progress: bool | None = None, cache: bool = True) -> np.ndarray:
        """Sentence embeddings of ``texts`` (batched, deduplicated, length-sorted), shape (n, hidden).

        In float32 they come through ``interplab.text.embed`` and its on-disk cache (keyed by the
        weights and the text), so training a head again on the same reviews, in a re-run or in
        another notebook, embeds nothing twice; bfloat16 vectors, which differ slightly, are not
        cached. (Explaining calls :meth:`embed_batch`: LIME's perturbed texts never fill the cache.)
        """
        if cache and self.precision == "float32":
            import warnings

            from ..text.embeddings import TruncationWarning, context_length, embed

            if self.max_length <= context_length(self.model, self.tokenizer):
                with warnings.catch_warnings():  # cutting texts at max_length is this classifier's documented rule
                    warnings.simplefilter("ignore", TruncationWarning)
                    return embed(_as_texts(texts), self.model, self.tokenizer, batch_size=self.batch_size,
                                 max_length=self.max_length, progress=progress)
        return batched_map(self.embed_batch, texts, batch_size=self.batch_size, progress=progress, desc="embedding")

    def fit(self, texts, labels, *, progress: bool | None = None) -> "EncoderClassifier":
        """Embed ``texts`` and fit the logistic-regression head on ``labels`` (``progress`` as in :meth:`embed`)."""
        from sklearn.linear_model import LogisticRegression

        texts = _as_texts(texts)
        y = np.asarray(labels)
        if len(texts) != len(y):
            raise ValueError(f"{len(texts)} texts but {len(y)} labels")
        if len(np.unique(y)) < 2:
            raise ValueError("labels must contain at least two classes to train a classifier")
        X = self.embed(texts, progress=progress)
        self.head = LogisticRegression(C=self.C, max_iter=2000).fit(X, y)
        if self.class_names is None:
            self.class_names = [str(c) for c in self.head.classes_]
        return self

    @property
    def classes_(self):
        self._check_fitted()
        return self.head.classes_

    def _check_fitted(self):
        if self.head is None:
            raise ValueError("the classifier head is not trained yet: call .fit(texts, labels) first")

    def predict_proba_batch(self, batch: list[str]) -> np.ndarray:
        self._check_fitted()
        return self.head.predict_proba(self.embed_batch(batch))

    def predict_proba(self, texts) -> np.ndarray:
        self._check_fitted()
        return self.head.predict_proba(self.embed(texts))

    def predict(self, texts) -> np.ndarray:
        return self.classes_[self.predict_proba(texts).argmax(axis=1)]

    def score(self, texts, labels) -> float:
        """Accuracy on ``texts``/``labels``."""
        return float(np.mean(self.predict(texts) == np.asarray(labels)))


def text_classifier(model: str | None = None, *, texts=None, labels=None, class_names: Sequence[str] | None = None,
                    batch_size: int | None = None, device: str = "cpu", precision: str = "auto",
                    progress: bool | None = None) -> BatchedClassifier:
    """A batched text classifier from a model name (the same names as :mod:`interplab.models`).

    * ``"minilm"`` (default, offline) or any encoder id such as ``"bert-base-uncased"``: the
      encoder's mean-pooled embeddings + a logistic-regression head trained on ``texts``/``labels``.
    * A Hugging Face sequence classifier such as
      ``"distilbert-base-uncased-finetuned-sst-2-english"``: used as is (``texts``/``labels`` unused).
    """
    from .. import models

    spec = models.parse_model_name(model)
    if spec.backend in ("toy", "openai"):
        raise models.ModelNotAvailableError(f"{str(spec)!r} is not a text classifier; use 'minilm' or a Hugging Face id")
    if spec.backend == "hf" and any(a.endswith("ForSequenceClassification") for a in models.architectures(spec.id)):
        net, tok = models.load_classifier(spec.id, device=device)
        return wrap_classifier(net, tok, batch_size=batch_size, class_names=class_names, precision=precision,
                               progress=progress)
    if texts is None or labels is None:
        raise ValueError(f"{str(spec)!r} is an encoder without a classification head: pass texts= and labels= to train one")
    enc, tok = models.load_encoder(model, attentions=False, device=device)
    clf = EncoderClassifier(enc, tok, batch_size=DEFAULT_BATCH if batch_size is None else batch_size, class_names=class_names,
                            precision=precision).fit(texts, labels, progress=progress)
    clf.name = f"{spec} + logistic regression ({clf.precision})"
    return wrap_classifier(clf, progress=progress)
