"""Anthropic HH-RLHF preference pairs (Bai et al. 2022), and a parsed view of each pair.

``load("hh-rlhf", split="test", subset="harmless-base")`` gives columns ``chosen`` and
``rejected`` (str): two full ``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` transcripts that share the
conversation so far and differ in the final assistant reply. ``subset`` is one of
``harmless-base`` (default), ``helpful-base``, ``helpful-online``, ``helpful-rejection-sampled``, or
``all`` (the four concatenated, with an extra ``subset`` column). Splits: ``train``, ``test``.
CONTENT WARNING: harmless-base holds offensive and harmful dialogue by design.

``load(..., parsed=True)`` (or :func:`parse_hh` on any such frame) adds:
``turns`` (list of ``{"role": "user"|"assistant", "content": str}`` for the shared conversation,
chat-template style; "Human" becomes "user"), ``n_turns``, ``prefix`` (the shared transcript text
up to and including the last ``"\\n\\nAssistant:"``), ``chosen_reply``, ``rejected_reply`` (the two
differing final replies, stripped) and ``same_prefix`` (False for the few pairs whose histories
differ before the last turn; their prefix is then the longest shared whole-turn prefix).

A local ``source`` is a ``.jsonl``/``.jsonl.gz`` file, or a folder laid out like the repo
(``<subset>/<split>.jsonl.gz``).
"""
from __future__ import annotations

import re
from pathlib import Path

from ._base import (CorruptFileError, DatasetError, HubFile, check_split, fallback_note, fetch_parse, find_file, mark,
                    origin_label, read_jsonl, real_note, resolve, sample_path)

REPO, REV = "Anthropic/hh-rlhf", "09be8c5bbc57cb3887f3a9732ad6aa7ec602a1fa"
SUBSETS = ("harmless-base", "helpful-base", "helpful-online", "helpful-rejection-sampled")
SPLITS = ("train", "test")
ROWS = {"harmless-base": (42_537, 2_312), "helpful-base": (43_835, 2_354), "helpful-online": (22_007, 1_137),
        "helpful-rejection-sampled": (52_421, 2_749)}
SAMPLE_SUBSETS = ("harmless-base", "helpful-base")
LICENSE = "MIT"

DATASETS = {
    "hh-rlhf": dict(
        title="Anthropic HH-RLHF", what="human preference pairs (chosen vs rejected assistant reply), helpful & harmless",
        license=LICENSE, rows={"train": 160_800, "test": 8_552}, splits=SPLITS, default_split="train",
        columns={"chosen": "str (full transcript)", "rejected": "str (full transcript)"},
        options={"subset": SUBSETS + ("all",), "parsed": "bool"},
        hub={f"{s}/{sp}": HubFile(REPO, f"{s}/{sp}.jsonl.gz", REV) for s in SUBSETS for sp in SPLITS},
        sample={f"{s}/{sp}": f"hh-rlhf/{s}/{sp}.jsonl" for s in SAMPLE_SUBSETS for sp in SPLITS},
    ),
}

_TURN = re.compile(r"\n\n(Human|Assistant):")


def _records_to_frame(records: list[dict], where):
    import pandas as pd

    for i, r in enumerate(records, 1):
        if not isinstance(r, dict) or not isinstance(r.get("chosen"), str) or not isinstance(r.get("rejected"), str):
            raise CorruptFileError(f"{where}: record {i} lacks string 'chosen'/'rejected' fields; nothing was loaded")
    return pd.DataFrame({"chosen": [r["chosen"] for r in records], "rejected": [r["rejected"] for r in records]})


def _read(path: Path):
    return _records_to_frame(read_jsonl(path), path)


def split_turns(transcript: str) -> list[dict]:
    """``"\\n\\nHuman: hi\\n\\nAssistant: hello"`` → ``[{"role": "user", ...}, {"role": "assistant", ...}]``."""
    parts = _TURN.split(transcript)
    turns = []
    for role, content in zip(parts[1::2], parts[2::2]):
        turns.append({"role": "user" if role == "Human" else "assistant", "content": content.strip()})
    return turns


def _parse_pair(chosen: str, rejected: str):
    marker = "\n\nAssistant:"
    cut = chosen.rfind(marker)
    if cut >= 0 and rejected.startswith(chosen[: cut + len(marker)]) and rejected.rfind(marker) == cut:
        prefix, same = chosen[: cut + len(marker)], True
    else:  # histories differ earlier: longest common prefix, cut back to a turn boundary
        n = 0
        for a, b in zip(chosen, rejected):
            if a != b:
                break
            n += 1
        common = chosen[:n]
        cut = common.rfind(marker)
        prefix, same = (common[: cut + len(marker)] if cut >= 0 else ""), False
    turns = split_turns(prefix[: -len(marker)] if prefix.endswith(marker) else prefix)
    return turns, prefix, chosen[len(prefix):].strip(), rejected[len(prefix):].strip(), same


def parse_hh(df):
    """Add ``turns``, ``n_turns``, ``prefix``, ``chosen_reply``, ``rejected_reply``, ``same_prefix`` to a
    chosen/rejected frame (returns a new frame of the same kind; attrs are kept)."""
    if "chosen" not in df.columns or "rejected" not in df.columns:
        raise DatasetError(f"parse_hh needs 'chosen' and 'rejected' columns, got {list(df.columns)}")
    parsed = [_parse_pair(c, r) for c, r in zip(df["chosen"], df["rejected"])]
    out = df.copy()
    out["turns"] = [p[0] for p in parsed]
    out["n_turns"] = [len(p[0]) for p in parsed]
    out["prefix"] = [p[1] for p in parsed]
    out["chosen_reply"] = [p[2] for p in parsed]
    out["rejected_reply"] = [p[3] for p in parsed]
    out["same_prefix"] = [p[4] for p in parsed]
    out.attrs.update(df.attrs)
    return out


def _read_local(path: Path, subset: str, split: str):
    if path.is_dir():
        path = find_file(path, [f"{subset}/{split}.jsonl.gz", f"{subset}/{split}.jsonl", f"{split}.jsonl.gz",
                                f"{split}.jsonl"], "hh-rlhf", f"{subset} {split}")
    return _read(path)


def load(name: str, split: str | None = None, source="auto", subset: str = "harmless-base", parsed: bool = False):
    import pandas as pd

    split = check_split(name, split, SPLITS, "train")
    meta = DATASETS[name]
    if subset not in SUBSETS + ("all",):
        raise DatasetError(f"hh-rlhf: unknown subset {subset!r}; subsets: {', '.join(SUBSETS + ('all',))}")
    wanted = SUBSETS if subset == "all" else (subset,)
    frames, origins, labels, reasons = [], [], [], []
    for sub in wanted:
        key = f"{sub}/{split}"
        spec = meta["hub"][key]

        def sample(key=key, sub=sub):
            if key not in meta["sample"]:
                raise DatasetError(f"hh-rlhf: no bundled sample for subset {sub!r}; samples exist for "
                                   f"{', '.join(SAMPLE_SUBSETS)} (or use source='hub' online)")
            return _read(sample_path(meta["sample"][key]))

        try:
            df, origin, reason = resolve(f"{name}/{sub}", split, source, hub=lambda spec=spec: fetch_parse(spec, _read),
                                         sample=sample, local=lambda p, sub=sub: _read_local(p, sub, split), note=False,
                                         real=[f"hh-rlhf/{sub}/{split}.jsonl.gz", f"hh-rlhf/{sub}/{split}.jsonl"])
        except (DatasetError, FileNotFoundError):
            if subset == "all" and frames is not None and sub != wanted[0]:
                continue  # subset="all": use the subsets that the sample / local folder has
            raise
        if subset == "all":
            df["subset"] = sub
        frames.append(df)
        origins.append(origin)
        reasons.append(reason if origin == "sample" else "")
        labels.append(origin_label(origin, reason, spec.label, source))
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    is_sample = "sample" in origins
    shown = name if subset == "all" else f"{name}/{subset}"
    if any(reasons):
        fallback_note(shown, split, next(r for r in reasons if r), df)
    elif "real" in origins:
        real_note(shown, split, "; ".join(labels), df)
    df = mark(df, dataset=name, split=split, source=labels[0] if len(set(labels)) == 1 else "; ".join(labels),
              sample=is_sample, license=LICENSE, subset=subset, real="real" in origins)
    return parse_hh(df) if parsed else df
