"""Execute the kit's notebooks headless and build an HTML gallery (``make demo``).

Each notebook in the README catalogue is executed with the embedded offline defaults, saved
executed (``build/gallery/<name>.ipynb``) and rendered (``<name>.html``); ``index.html`` has one
card per notebook with its title, status, run time and a link to the page. A failing notebook is
named with the cell that failed, the others still run, and the command exits non-zero.
"""
from __future__ import annotations

import html
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import config
from .notebooks import catalogue


# nbconvert adds require.js from a CDN; the kit's views carry their own scripts and need none.
_CDN_REQUIRE = re.compile(r'<script[^>]+src="https://[^"]*require(?:\.min)?\.js"[^>]*>\s*</script>')


@dataclass
class Result:
    path: str
    title: str
    ok: bool
    seconds: float
    error: str = ""


def execute(path: Path, out_dir: Path, timeout: int = 900) -> Result:
    """Execute one notebook, write the executed copy and its HTML page; never raises for cell errors."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    title = next((l[2:].strip() for l in nb.cells[0].source.splitlines() if l.startswith("# ")), path.stem)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start, error = time.perf_counter(), ""
    try:
        client.execute()
    except CellExecutionError as exc:
        failed = next((i for i, c in enumerate(nb.cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        error = f"cell {failed}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}"
    except Exception as exc:  # kernel died, timeout...
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / path.name)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(_without_widgets(nb))
    body = _CDN_REQUIRE.sub("", body)
    (out_dir / f"{path.stem}.html").write_text(body, encoding="utf-8")
    return Result(str(path.name), title, not error, seconds, error)


def _without_widgets(nb):
    """A copy without widget views (tqdm bars): the page shows their text, and needs no widget JS from a CDN."""
    import copy

    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and "application/vnd.jupyter.widget-view+json" in data:
                data.pop("application/vnd.jupyter.widget-view+json")
    return nb


def write_index(results: list[Result], out_dir: Path) -> Path:
    cards = []
    for r in results:
        status = "ok" if r.ok else "failed"
        err = f"<p class='err'>{html.escape(r.error)}</p>" if r.error else ""
        stem = Path(r.path).stem
        cards.append(
            f"<div class='card {status}'><h2><a href='{stem}.html'>{html.escape(r.title)}</a></h2>"
            f"<p><code>{html.escape(r.path)}</code></p><p>status: <b>{status}</b> &middot; {r.seconds:.0f} s</p>{err}</div>"
        )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>interplab gallery</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:1em}"
        ".card{border:1px solid #ccc;border-radius:8px;padding:1em}.ok{border-left:6px solid #2a2}.failed{border-left:6px solid #c22}"
        ".err{color:#c22;font-family:monospace;font-size:85%}</style></head><body>"
        f"<h1>interplab gallery</h1><p>{sum(r.ok for r in results)} of {len(results)} notebooks ran, offline defaults.</p>"
        f"<div class='grid'>{''.join(cards)}</div></body></html>"
    )
    out = out_dir / "index.html"
    out.write_text(page, encoding="utf-8")
    (out_dir / "results.json").write_text(json.dumps([r.__dict__ for r in results], indent=1), encoding="utf-8")
    return out


def build(out_dir: str | Path = "build/gallery", only: list[str] | None = None) -> list[Result]:
    from tqdm.auto import tqdm

    root = config.repo_root()
    out_dir = Path(out_dir)
    entries = [e for e in catalogue() if not only or any(o in e.path for o in only)]
    results = []
    bar = tqdm(entries, desc="notebooks", unit="nb")
    for e in bar:
        bar.set_postfix_str(Path(e.path).name)
        r = execute(root / e.path, out_dir)
        results.append(r)
        if not r.ok:
            tqdm.write(f"FAILED {e.path} at {r.error}")
    index = write_index(results, out_dir)
    print(f"gallery: {index}")
    return results


def cli(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="interplab gallery", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build/gallery")
    p.add_argument("only", nargs="*", help="run only notebooks whose path contains one of these")
    args = p.parse_args(argv)
    results = build(args.out, args.only)
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"notebook {r.path} failed at {r.error}", file=sys.stderr)
    return 1 if failed else 0
