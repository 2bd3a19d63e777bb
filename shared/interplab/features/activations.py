"""Collect a model's activations at named sites, once, into float16 memory-mapped files.

    model, tok = interplab.models.load_encoder()
    acts = collect(model, tok, texts, sites=["hidden.0", "hidden.3", "hidden.6"])
    acts["hidden.3"].values        # (n_tokens, d_model) float16, memory-mapped from disk
    acts["hidden.3"].pooled()      # (n_texts, d_model) float32, mean over each text's tokens

Site names
----------
Any site of ``interplab.sites`` with one vector per token, on any model the kit loads (toy, MiniLM/BERT,
smollm2/GPT-2/...): ``blocks.{i}.hook_resid_post`` (block ``i``'s output), ``blocks.{i}.hook_mlp_out``,
``blocks.{i}.mlp.hook_post``, ..., the toy's own names (``blocks.1.resid_post``) and ``hidden.{i}`` =
Hugging Face's ``hidden_states[i]``: ``hidden.0`` is the embedding output, ``hidden.{i}`` the residual
stream after block ``i - 1`` (``blocks.{i-1}.hook_resid_post``; the last one of a causal LM is after its
final norm, as in Hugging Face), ``hidden.-1`` the last one. Results are keyed by the names as given.

One row is stored per real token (padding is dropped; [CLS]/[SEP] are kept and flagged in
``special``). Results live in ``interplab.config.cache_dir("activations")``, one folder per
(model weights, site, inputs, max_length), so a second ``collect`` with the same arguments reads the
files instead of running the model.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import config

_HIDDEN = re.compile(r"^hidden\.(-?\d+)$")
FORMAT_VERSION = 1


@dataclass
class Activations:
    """One site's activations over a set of inputs: a row per token, grouped by input.

    ``values[offsets[t]:offsets[t+1]]`` are the rows of input ``t``; ``token_ids``/``tokens`` name the
    token of each row and ``special`` flags [CLS]/[SEP]/BOS-style tokens.
    """

    site: str
    values: np.ndarray  # (n_tokens, d) float16, memory-mapped
    token_ids: np.ndarray  # (n_tokens,) int64
    offsets: np.ndarray  # (n_inputs + 1,) int64
    tokens: list[str]
    special: np.ndarray  # (n_tokens,) bool
    texts: list[str] | None = None
    model_name: str = ""
    path: Path | None = None
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def __repr__(self) -> str:
        return (f"Activations(site={self.site!r}, model={self.model_name!r}, tokens={len(self)}, "
                f"inputs={self.n_inputs}, d={self.d})")

    @property
    def d(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_inputs(self) -> int:
        return len(self.offsets) - 1

    @property
    def input_index(self) -> np.ndarray:
        """For each row, the index of the input (text) it came from."""
        return np.repeat(np.arange(self.n_inputs), np.diff(self.offsets))

    @property
    def position(self) -> np.ndarray:
        """For each row, its token position within its input."""
        return np.arange(len(self)) - np.repeat(self.offsets[:-1], np.diff(self.offsets))

    def rows(self, exclude_special: bool = True) -> np.ndarray:
        """Row indices to use (all real tokens, or without [CLS]/[SEP]/BOS)."""
        return np.flatnonzero(~self.special) if exclude_special else np.arange(len(self))

    def rows_of(self, inputs, exclude_special: bool = True) -> np.ndarray:
        """Row indices of the tokens of the given inputs (e.g. a train/test split by text)."""
        keep = np.isin(self.input_index, np.asarray(inputs))
        if exclude_special:
            keep &= ~self.special
        return np.flatnonzero(keep)

    def array(self, exclude_special: bool = False, dtype=np.float32) -> np.ndarray:
        """The token rows as an in-memory array (float32 by default)."""
        if exclude_special:
            return np.asarray(self.values[self.rows(True)], dtype=dtype)
        return np.asarray(self.values, dtype=dtype)

    def pooled(self, how: str = "mean", exclude_special: bool = True) -> np.ndarray:
        """One vector per input: ``"mean"`` over its tokens, ``"first"`` ([CLS]) or ``"last"`` token."""
        out = np.zeros((self.n_inputs, self.d), dtype=np.float32)
        for t in range(self.n_inputs):
            lo, hi = int(self.offsets[t]), int(self.offsets[t + 1])
            if how == "first":
                out[t] = self.values[lo]
            elif how == "last":
                out[t] = self.values[hi - 1]
            elif how == "mean":
                block = np.asarray(self.values[lo:hi], dtype=np.float32)
                keep = ~self.special[lo:hi] if exclude_special else np.ones(hi - lo, bool)
                out[t] = block[keep].mean(0) if keep.any() else block.mean(0)
            else:
                raise ValueError(f"pooling must be 'mean', 'first' or 'last', got {how!r}")
        return out

    def token_labels(self, predicate) -> np.ndarray:
        """A 0/1 label per row from ``predicate(token_string) -> bool`` (e.g. ``is_number``)."""
        return np.fromiter((bool(predicate(t)) for t in self.tokens), dtype=np.int64, count=len(self))


def is_number(token: str) -> bool:
    """True for tokens that are (pieces of) numbers: ``1980``, ``##5``, ``10``, ``Ġ7``."""
    t = token.lstrip("#").lstrip("Ġ▁").replace(",", "").replace(".", "")
    return bool(t) and t.isdigit()


# --------------------------------------------------------------------------- keys and files


def _inputs_hash(items, max_length) -> str:
    h = hashlib.sha256(f"v{FORMAT_VERSION}|max_length={max_length}|".encode())
    for item in items:
        h.update((item if isinstance(item, str) else json.dumps([int(x) for x in item])).encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_")[:60] or "model"


def _folder(model_key: str, mname: str, site: str, data_key: str) -> Path:
    return config.cache_dir("activations") / f"{_slug(mname)}-{model_key}" / f"{_slug(site)}-{data_key}"


def _load(folder: Path, texts) -> Activations:
    meta = json.loads((folder / "meta.json").read_text())
    return Activations(
        site=meta["site"],
        values=np.load(folder / "values.npy", mmap_mode="r"),
        token_ids=np.load(folder / "token_ids.npy"),
        offsets=np.load(folder / "offsets.npy"),
        tokens=json.loads((folder / "tokens.json").read_text()),
        special=np.load(folder / "special.npy"),
        texts=texts,
        model_name=meta["model"],
        path=folder,
        meta=meta,
    )


def load(path: str | os.PathLike) -> Activations:
    """Open a collected site folder (``Activations.path``) again, e.g. in another session."""
    folder = Path(path)
    if not (folder / "meta.json").is_file():
        raise FileNotFoundError(f"{folder} is not an activations folder (no meta.json)")
    return _load(folder, None)


# --------------------------------------------------------------------------- sites (through interplab.sites)


def _resolve_sites(sm, sites) -> list[str]:
    """The sites as given (``hidden.-1`` written as ``hidden.{n}``), each checked by the site layer, no repeats
    (two names of one site are both kept: each is stored under its own name, from one forward pass)."""
    if isinstance(sites, str):
        sites = [sites]
    sites = list(sites)
    if not sites:
        raise ValueError("give at least one site, e.g. sites=['hidden.3'] or sites=['blocks.2.hook_resid_post']")
    out = []
    n = sm.adapter.n_layers
    for s in sites:
        sm.canonical(str(s))  # UnknownSiteError / SiteRangeError (ValueErrors), one line
        m = _HIDDEN.match(str(s))
        out.append(f"hidden.{int(m.group(1)) % (n + 1)}" if m else str(s))
    return list(dict.fromkeys(out))


def hidden_sites(model) -> list[str]:
    """Every ``hidden.{i}`` site of a model (embeddings, then each block's output; ``hidden_states[i]``)."""
    from ..sites import adapter

    return [f"hidden.{i}" for i in range(adapter(model).n_layers + 1)]


def _tokenize(tokenizer, items, max_length):
    """Token ids per input (lists of ints), without padding."""
    if all(isinstance(x, str) for x in items):
        if tokenizer is None:
            raise ValueError("texts are strings but tokenizer is None; pass the model's tokenizer")
        try:
            enc = tokenizer(list(items), truncation=True, max_length=max_length)
            ids = enc["input_ids"]
        except TypeError:
            ids = [tokenizer.encode(x)[:max_length] for x in items]
        return [list(map(int, x)) for x in ids]
    return [[int(t) for t in x][:max_length] for x in items]


def _token_strings(tokenizer, ids: np.ndarray) -> list[str]:
    uniq = np.unique(ids)
    if tokenizer is None:  # token-id inputs with no tokenizer: name tokens by their id
        names = [str(u) for u in uniq]
    elif hasattr(tokenizer, "convert_ids_to_tokens"):
        names = tokenizer.convert_ids_to_tokens([int(u) for u in uniq])
    else:
        names = [tokenizer.decode([int(u)]) for u in uniq]
    table = dict(zip(uniq.tolist(), [str(n) for n in names]))
    return [table[int(i)] for i in ids]


def _special_ids(tokenizer) -> set[int]:
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    for attr in ("bos_token_id", "eos_token_id", "cls_token_id", "sep_token_id", "pad_token_id"):
        v = getattr(tokenizer, attr, None)
        if isinstance(v, int):
            ids.add(v)
    return ids


class _RowWriter:
    """A ``.npy`` file of shape ``(n_rows, d)`` float16 written row-block by row-block at given offsets.

    Hand-written rather than ``np.lib.format.open_memmap``: batches arrive sorted by length, so their rows
    land all over the file, and writing them through a fresh memory map page-faults on every new page and
    then syncs the whole map to disk (together ~10% on top of MiniLM's forward pass, `bench_features.py`).
    ``os.pwrite`` into the page cache costs a fifth of that. The file is an ordinary ``.npy``: ``np.load``
    (with ``mmap_mode="r"``) reads it back.
    """

    def __init__(self, path: Path, n_rows: int, d: int):
        self.d = d
        self.file = open(path, "wb")
        np.lib.format.write_array_header_1_0(self.file, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)),
                                                         "fortran_order": False, "shape": (n_rows, d)})
        self.start = self.file.tell()
        self.file.truncate(self.start + n_rows * d * 2)  # rows never written (none, if all inputs come) read 0
        self.file.flush()

    def write(self, row: int, block: np.ndarray) -> None:
        os.pwrite(self.file.fileno(), np.ascontiguousarray(block, dtype=np.float16), self.start + row * self.d * 2)

    def close(self) -> None:
        self.file.close()


def _forward(sm, batch_ids, attention_mask, sites):
    """{site: (batch, seq, d) tensor} for one padded batch, through the site layer."""
    kwargs = {} if sm.adapter.is_toy else {"attention_mask": attention_mask}
    _, cache = sm.run_with_cache(batch_ids, names=sites, **kwargs)
    return {s: cache[s] for s in sites}


# --------------------------------------------------------------------------- collect


def collect(model, tokenizer, texts, sites, *, batch_size: int = 32, max_length: int = 128,
            progress: bool = True, cache: bool = True) -> dict[str, Activations]:
    """Run ``texts`` through ``model`` once and store the activations at ``sites`` (float16, on disk).

    ``texts`` is a list of strings, or of token-id sequences (for toy-model tasks; ``tokenizer`` may
    then be None and tokens are named by their id). Inputs are sorted
    by length into batches (little padding), and the rows are written in the original order. A site
    already collected for the same model weights, inputs and ``max_length`` is read from the cache
    (``cache=False`` collects again and replaces it). An interrupted run leaves nothing behind.
    Returns ``{site: Activations}``.
    """
    import torch
    from tqdm.auto import tqdm

    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings (got one string); wrap it: [text]")
    items = list(texts)
    if not items:
        raise ValueError("texts is empty: give at least one text to collect activations over")
    if any(isinstance(x, str) and not x.strip() for x in items):
        bad = next(i for i, x in enumerate(items) if isinstance(x, str) and not x.strip())
        raise ValueError(f"text {bad} is empty; drop empty texts before collecting")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    from ..sites import wrap

    sm = wrap(model, tokenizer)
    sites = _resolve_sites(sm, sites)
    from ..models import display_name
    from ..torchutil import weights_fingerprint

    mname = display_name(model)
    mkey = weights_fingerprint(model, mname)
    dkey = _inputs_hash(items, max_length)
    str_texts = [x if isinstance(x, str) else None for x in items]
    str_texts = str_texts if all(t is not None for t in str_texts) else None

    folders = {s: _folder(mkey, mname, s, dkey) for s in sites}
    result = {}
    todo = []
    for s in sites:
        if cache and (folders[s] / "meta.json").is_file():
            result[s] = _load(folders[s], str_texts)
        else:
            todo.append(s)
    if not todo:
        return {s: result[s] for s in sites}

    ids = _tokenize(tokenizer, items, max_length)
    if any(len(x) == 0 for x in ids):
        raise ValueError(f"input {next(i for i, x in enumerate(ids) if not x)} has no tokens after tokenization")
    lengths = np.array([len(x) for x in ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat_ids = np.fromiter((t for x in ids for t in x), dtype=np.int64, count=int(offsets[-1]))
    special = np.isin(flat_ids, list(_special_ids(tokenizer)))
    tokens = _token_strings(tokenizer, flat_ids)
    pad_id = getattr(tokenizer, "pad_token_id", None)
    pad_id = int(pad_id) if isinstance(pad_id, int) else 0

    # Write into temporary folders; rename when complete, so an interrupted run leaves no half cache.
    tmp, values = {}, {}
    for s in todo:
        tmp[s] = folders[s].with_name(folders[s].name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp[s], ignore_errors=True)
        tmp[s].mkdir(parents=True)
    order = np.argsort(-lengths, kind="stable")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            bar = tqdm(total=len(items), desc=f"collect {mname} ({len(todo)} site{'s' * (len(todo) > 1)})",
                       unit="text", disable=not progress)
            for start in range(0, len(items), batch_size):
                idx = order[start:start + batch_size]
                width = int(lengths[idx].max())
                batch = torch.full((len(idx), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for j, t in enumerate(idx):
                    batch[j, : lengths[t]] = torch.as_tensor(ids[t])
                    mask[j, : lengths[t]] = 1
                out = _forward(sm, batch.to(device), mask.to(device), todo)
                for s in todo:
                    h = out[s]
                    if h.dim() != 3:
                        raise ValueError(f"site {s!r} has shape {tuple(h.shape)}; collect needs (batch, position, d)")
                    if s not in values:
                        values[s] = _RowWriter(tmp[s] / "values.npy", int(offsets[-1]), int(h.shape[-1]))
                    h16 = h.to(torch.float16).cpu().numpy()
                    for j, t in enumerate(idx):
                        values[s].write(int(offsets[t]), h16[j, : lengths[t]])
                bar.update(len(idx))
            bar.close()
    except BaseException:
        for s in todo:
            if s in values:
                values.pop(s).close()
            shutil.rmtree(tmp[s], ignore_errors=True)
        raise
    finally:
        model.train(was_training)
    for s in todo:
        values.pop(s).close()
        np.save(tmp[s] / "token_ids.npy", flat_ids)
        np.save(tmp[s] / "offsets.npy", offsets)
        np.save(tmp[s] / "special.npy", special)
        (tmp[s] / "tokens.json").write_text(json.dumps(tokens))
        meta = {"format": FORMAT_VERSION, "model": mname, "model_key": mkey, "site": s, "data_key": dkey,
                "max_length": max_length, "n_inputs": len(items), "n_tokens": int(offsets[-1])}
        (tmp[s] / "meta.json").write_text(json.dumps(meta, indent=1))
        if folders[s].exists():
            shutil.rmtree(folders[s])
        tmp[s].rename(folders[s])
        result[s] = _load(folders[s], str_texts)
    return {s: result[s] for s in sites}
