"""Sentence embeddings: ``embed`` (batched, cached on disk, truncation warned), ``context_length``, ``search``."""
from __future__ import annotations

import hashlib
import re
import warnings

import numpy as np

from .. import models
from ..inputs import as_texts
from ..store import SQLiteStore


class TruncationWarning(UserWarning):
    """Some texts were longer than the encoder's context and only their beginning was embedded."""


def context_length(model, tokenizer) -> int:
    """Tokens the encoder reads per text (special tokens included); longer texts are truncated.

    A sentence-transformers folder's ``max_seq_length`` wins (256 for all-MiniLM-L6-v2, what it was
    trained with), then the tokenizer's ``model_max_length``, capped by the position embeddings.
    """
    limits = []
    pos = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(pos, int) and pos > 0:
        limits.append(pos)
    tml = getattr(tokenizer, "model_max_length", None)
    if isinstance(tml, int) and 0 < tml < 1_000_000:
        limits.append(tml)
    st = _sentence_transformers_max(getattr(model, "name_or_path", "") or "")
    if st:
        limits.append(st)
    return min(limits) if limits else 512


def _sentence_transformers_max(name_or_path: str) -> int | None:
    """``max_seq_length`` of a sentence-transformers folder or cached hub id, read by sentence-transformers
    itself (it knows the legacy ``sentence_*_config.json`` names too); never downloads."""
    if not name_or_path:
        return None
    from sentence_transformers.base.modules.transformer import Transformer

    try:
        value = Transformer.load_config(name_or_path, local_files_only=True).get("max_seq_length")
    except Exception:  # not a hub id, no cache, unreadable file: fall back to the tokenizer's limit
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


def _fingerprint(model) -> str:
    """The weights' digest (``torchutil.weights_fingerprint``), so a fine-tuned model never reads another model's cache."""
    from ..torchutil import weights_fingerprint

    return weights_fingerprint(model, models.display_name(model))


class _Cache:
    """Embeddings of one (model, pooling, length) on disk: a SQLite file keyed by the text's hash.

    A file that is not a database (or breaks mid-run) warns once and the run goes on without it.
    """

    def __init__(self, model, pooling: str, normalize: bool, max_length: int):
        from .. import config

        label = re.sub(r"[^A-Za-z0-9._-]+", "-", models.display_name(model))[-40:]
        key = hashlib.blake2b(f"{_fingerprint(model)}|{pooling}|{normalize}|{max_length}".encode(), digest_size=8)
        self.path = config.cache_dir("embeddings") / f"{label}-{key.hexdigest()}.sqlite"
        self._store: SQLiteStore | None = SQLiteStore(self.path, "emb", "key TEXT PRIMARY KEY, n_tokens INTEGER, vec BLOB")

    def _broken(self, exc: Exception) -> None:
        warnings.warn(f"embedding cache {self.path} is unreadable ({exc}); embedding without it "
                      f"(delete the file to rebuild it)", RuntimeWarning, stacklevel=4)
        self.close()

    def get(self, keys: list[str]) -> dict[str, tuple[int, np.ndarray]]:
        import sqlite3

        if self._store is None or not keys:
            return {}
        try:
            rows = self._store.get_many(keys, "n_tokens, vec")
        except sqlite3.DatabaseError as exc:
            self._broken(exc)
            return {}
        return {k: (int(n), np.frombuffer(blob, dtype=np.float32)) for k, (n, blob) in rows.items()}

    def put(self, rows: list[tuple[str, int, np.ndarray]]) -> None:
        import sqlite3

        if self._store is None:
            return
        try:
            self._store.put_many([(k, int(n), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, n, v in rows])
        except sqlite3.DatabaseError as exc:
            self._broken(exc)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def _text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def encode_batch(model, input_ids, attention_mask, *, pooling: str = "mean", normalize: bool = True,
                 precision: str = "float32"):
    """Sentence vectors (a float32 tensor) of one padded batch: the encoder's last hidden states, pooled.

    The kit's one pooling path: ``embed`` and ``explain.EncoderClassifier`` (and so
    ``lm.sentiment``) call it, so a head trained on one sees the vectors the others make.
    ``pooling="mean"`` averages over the attention mask, ``"cls"`` takes the first token;
    ``normalize`` scales rows to unit length. Pooling is sentence-transformers' ``Pooling`` module
    (the package the embedded encoder ships with), so the vectors are the ones
    ``SentenceTransformer.encode`` gives; the encoder runs here, not inside a ``SentenceTransformer``,
    because the kit loads it once (``interplab.models``) for embeddings, attention and sites alike.
    ``precision`` ("float32", or "bfloat16" where the
    caller resolved it so) runs the encoder under autocast; pooling is always in float32. Call it
    under ``torch.inference_mode()``.
    """
    import torch

    from ..torchutil import autocast

    with autocast(precision, str(input_ids.device)):
        out = model(input_ids=input_ids, attention_mask=attention_mask)
    hidden = (out[0] if isinstance(out, tuple) else out.last_hidden_state).float()
    pool = _pooling(hidden.shape[-1], pooling)
    vec = pool({"token_embeddings": hidden, "attention_mask": attention_mask})["sentence_embedding"]
    return torch.nn.functional.normalize(vec, dim=-1) if normalize else vec


_POOLINGS: dict[tuple[int, str], object] = {}


def _pooling(dim: int, mode: str):
    """sentence-transformers' own ``Pooling`` module (what all-MiniLM-L6-v2's folder names), one per (dim, mode)."""
    if (dim, mode) not in _POOLINGS:
        from sentence_transformers.sentence_transformer.modules.pooling import Pooling

        _POOLINGS[(dim, mode)] = Pooling(dim, pooling_mode=mode)
    return _POOLINGS[(dim, mode)]


def embed(
    texts,
    model=None,
    tokenizer=None,
    *,
    batch_size: int = 64,
    max_length: int | None = None,
    pooling: str = "mean",
    normalize: bool = True,
    cache: bool = True,
    progress: bool | None = None,
) -> np.ndarray:
    """Sentence embeddings of ``texts``: an ``(n_texts, hidden_size)`` float32 array.

    ``model``: a model name (``None``/``"minilm"`` = the embedded all-MiniLM-L6-v2, or any Hugging
    Face encoder id, resolved by ``interplab.models``), or a loaded ``(model, tokenizer)`` pair.
    ``pooling="mean"`` averages token vectors over the attention mask (how sentence-transformers
    trained MiniLM; ``"cls"`` takes the first token) and ``normalize`` scales rows to unit length,
    so a dot product is the cosine similarity; both go through ``encode_batch``, the kit's one
    pooling path (sentence-transformers' own ``Pooling`` module).

    Texts are tokenized once, sorted by length and batched (little padding), with a progress bar
    when there is more than one batch. Vectors are cached on disk (``interplab.config.cache_dir
    ("embeddings")``), keyed by the model's weights and the text, so re-running a notebook is
    instant. Texts longer than the encoder's context (``context_length``) are cut to it, with one
    ``TruncationWarning``.
    """
    import torch

    items = as_texts(texts, "embed: texts", allow_empty=True)
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model, tokenizer = models.resolve(model, tokenizer, kind="encoder")
    limit = context_length(model, tokenizer)
    if max_length is None:
        max_length = limit
    elif max_length > limit:
        raise ValueError(f"max_length={max_length} is longer than the encoder's context of {limit} tokens")
    dim = int(getattr(model.config, "hidden_size", 0) or 0)
    if not items:
        return np.zeros((0, dim), dtype=np.float32)

    keys = [_text_key(t) for t in items]
    store = _Cache(model, pooling, normalize, max_length) if cache else None
    found = store.get(keys) if store else {}
    first: dict[str, int] = {}  # one position per distinct text that is not cached yet
    for i, k in enumerate(keys):
        if k not in found:
            first.setdefault(k, i)
    todo = list(first.values())

    fresh: dict[str, tuple[int, np.ndarray]] = {}
    if todo:
        enc = tokenizer([items[i] for i in todo], truncation=True, max_length=max_length,
                        return_attention_mask=False, return_token_type_ids=False, verbose=False)
        ids = enc["input_ids"]
        n_tokens = [len(x) for x in ids]
        at_limit = [j for j, n in enumerate(n_tokens) if n >= max_length]
        if at_limit:
            full = tokenizer([items[todo[j]] for j in at_limit], truncation=False, return_attention_mask=False,
                             return_token_type_ids=False, verbose=False)["input_ids"]
            for j, f in zip(at_limit, full):
                n_tokens[j] = len(f)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        device = next(model.parameters()).device
        order = sorted(range(len(todo)), key=lambda j: -len(ids[j]))
        n_batches = (len(order) + batch_size - 1) // batch_size
        from tqdm.auto import tqdm

        bar = tqdm(total=len(order), desc="embedding", unit="text",
                   disable=(n_batches <= 1) if progress is None else not progress)
        was_training = model.training
        model.eval()  # no dropout: the same text always gets the same vector
        try:
            with torch.inference_mode():
                for s in range(0, len(order), batch_size):
                    batch = order[s:s + batch_size]
                    width = max(len(ids[j]) for j in batch)
                    input_ids = np.full((len(batch), width), pad_id, dtype=np.int64)
                    mask = np.zeros((len(batch), width), dtype=np.int64)
                    for r, j in enumerate(batch):
                        input_ids[r, : len(ids[j])] = ids[j]
                        mask[r, : len(ids[j])] = 1
                    vec = encode_batch(model, torch.from_numpy(input_ids).to(device), torch.from_numpy(mask).to(device),
                                       pooling=pooling, normalize=normalize).cpu().numpy()
                    for r, j in enumerate(batch):
                        fresh[keys[todo[j]]] = (n_tokens[j], vec[r])
                    bar.update(len(batch))
        finally:
            bar.close()
            model.train(was_training)
        if store:
            store.put([(k, n, v) for k, (n, v) in fresh.items()])
    if store:
        store.close()

    allv = {**found, **fresh}
    out = np.stack([allv[k][1] for k in keys]).astype(np.float32, copy=False)
    long = [(i, allv[k][0]) for i, k in enumerate(keys) if allv[k][0] > max_length]
    if long:
        worst = max(n for _, n in long)
        warnings.warn(
            f"{len(long)} of {len(items)} texts are longer than the encoder's {max_length}-token context and were "
            f"truncated (longest: {worst} tokens; first: texts[{long[0][0]}]); only their beginning is embedded",
            TruncationWarning,
            stacklevel=2,
        )
    return out


def search(
    queries,
    texts,
    *,
    k: int = 5,
    embeddings=None,
    model=None,
    tokenizer=None,
    **embed_kwargs,
):
    """Nearest texts to each query by cosine similarity of their embeddings (semantic search).

    ``embeddings`` of ``texts`` may be passed (from ``embed``) to skip re-embedding. Returns a
    DataFrame with ``query``, ``rank`` (1 = nearest), ``index`` (position, or the Series' index
    label), ``score`` (cosine similarity) and ``text``.
    """
    import pandas as pd

    qs = as_texts(queries, "search: queries")
    labels = list(texts.index) if type(texts).__name__ == "Series" and hasattr(texts, "index") else None
    items = as_texts(texts, "search: texts")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    pair = models.resolve(model, tokenizer, kind="encoder")
    E = embed(items, pair, **embed_kwargs) if embeddings is None else np.asarray(embeddings, dtype=np.float32)
    if E.shape[0] != len(items):
        raise ValueError(f"embeddings has {E.shape[0]} rows for {len(items)} texts")
    Q = embed(qs, pair, **embed_kwargs)
    if Q.shape[1] != E.shape[1]:
        raise ValueError(f"query embeddings have {Q.shape[1]} dimensions, text embeddings {E.shape[1]}: same model?")
    S = _unit(Q) @ _unit(E).T
    rows = []
    for qi, q in enumerate(qs):
        order = np.argsort(-S[qi], kind="stable")[:k]
        for rank, j in enumerate(order, 1):
            rows.append({"query": q, "rank": rank, "index": labels[j] if labels else int(j),
                         "score": float(S[qi, j]), "text": items[j]})
    return pd.DataFrame(rows)


def _unit(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(n == 0, 1, n)
