"""``interplab datasets list | info NAME | download NAME``."""
from __future__ import annotations

import argparse
import json
import sys


def _cached_text(meta: dict) -> str:
    from ._base import is_cached

    files = list(meta.get("hub", {}).values())
    if not files:
        return "-"
    n = sum(is_cached(f) for f in files)
    return "yes" if n == len(files) else ("no" if n == 0 else f"{n}/{len(files)} files")


def _sample_rows(name: str) -> str:
    if name == "mnist":
        return "sklearn 8x8"
    import logging

    from . import load

    try:
        logging.getLogger("interplab.data").disabled = True
        return str(len(load(name, source="sample")))
    except Exception:
        return "-"
    finally:
        logging.getLogger("interplab.data").disabled = False


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def cmd_list(args) -> int:
    from . import _registry, names

    reg = _registry()
    rows = [["name", "rows", "sample", "license", "cached"]]
    for name in names():
        meta = reg[name][1]
        total = sum(meta.get("rows", {}).values())
        rows.append([name, f"{total:,}", _sample_rows(name), meta.get("license", "")[:40], _cached_text(meta)])
    print(_table(rows))
    print("\nrows = real dataset, all splits; sample = bundled project-written rows (default split) used offline;"
          "\ncached = pinned hub files already in the Hugging Face cache. Cards: datasets/<name>/README.md")
    return 0


def cmd_info(args) -> int:
    from . import info

    meta = info(args.name)
    if args.json:
        print(json.dumps(meta, indent=2, default=str))
        return 0
    print(f"{meta['name']}: {meta.get('title', '')}")
    print(f"  what:     {meta.get('what', '')}")
    print(f"  license:  {meta.get('license', '')}")
    print(f"  splits:   " + ", ".join(f"{s} ({meta['rows'].get(s, '?'):,} rows)" if isinstance(meta['rows'].get(s), int)
                                      else s for s in meta.get("splits", ())) + f"; default {meta.get('default_split')}")
    print("  columns:  " + "; ".join(f"{c}: {t}" for c, t in meta.get("columns", {}).items()))
    if meta.get("options"):
        print("  options:  " + "; ".join(f"{k}={v}" for k, v in meta["options"].items()))
    for key, f in meta["hub"].items():
        cached = "cached" if meta["cached"].get(key) else "not cached"
        sha = f" sha256 {f['sha256'][:12]}..." if f.get("sha256") else ""
        print(f"  hub [{key}]: {f['repo_id']}@{f['revision'][:10]} {f['filename']}{sha} ({cached})")
    print(f"  sample:   {', '.join(f'{k}: {v}' for k, v in meta.get('sample', {}).items())}")
    print(f"  card:     {meta['card']}")
    return 0


def cmd_download(args) -> int:
    from ..hub import HubError, OfflineError
    from . import DatasetError, info, load

    meta = info(args.name)
    splits = meta["splits"] if args.split == "all" else [args.split or meta["default_split"]]
    opts = {"subset": args.subset} if args.subset else {}
    try:
        for split in splits:
            if not any(k == split or k.endswith(f"/{split}") for k in meta["hub"]):
                print(f"{args.name} [{split}]: no hub copy (bundled sample / local file only)")
                continue
            df = load(args.name, split=split, source="hub", **opts)
            print(f"{args.name} [{split}]: {len(df):,} rows from {df.attrs['source']} (checksum verified)")
    except OfflineError as exc:
        print(f"interplab datasets download: {exc}", file=sys.stderr)
        return 1
    except (HubError, DatasetError, ValueError) as exc:
        print(f"interplab datasets download: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="interplab datasets", description="The kit's datasets: list, describe, download.")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="name, rows, sample rows, license, cached yes/no").set_defaults(fn=cmd_list)
    pi = sub.add_parser("info", help="schema, splits, pinned hub files, card")
    pi.add_argument("name")
    pi.add_argument("--json", action="store_true", help="print the metadata as JSON")
    pi.set_defaults(fn=cmd_info)
    pd_ = sub.add_parser("download", help="fetch the pinned hub file(s) into the Hugging Face cache and check them")
    pd_.add_argument("name")
    pd_.add_argument("--split", default=None, help="a split, or 'all' (default: the dataset's default split)")
    pd_.add_argument("--subset", default=None, help="hh-rlhf subset (harmless-base, helpful-base, ..., all)")
    pd_.set_defaults(fn=cmd_download)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except KeyError as exc:  # UnknownDatasetError
        print(f"interplab datasets: {exc}", file=sys.stderr)
        return 2
