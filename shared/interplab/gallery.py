"""Execute the kit's notebooks headless and build an HTML gallery (``make demo``).

Each notebook in the README catalogue is executed with the embedded offline defaults, saved
executed (``build/gallery/<name>.ipynb``) and rendered (``<name>.html``, with a link back).
``index.html`` has one card per notebook: what you will learn (the README row), a thumbnail of
its main figure (the cell tagged ``gallery-figure``), the key numbers its last cell prints, cold
and warm run times (labelled), the Colab link and the starter it leads to. The page needs no
JavaScript and no network. A failing notebook is named with the cell that failed, the others
still run, and the command exits non-zero.

Executed output is cleaned the way a reader needs it: progress bars show their final state
(tqdm's widget bars are otherwise saved at 0 %), bars over zero items are dropped, carriage-return
text bars are collapsed, and kernels talk over IPC (no TCP-transport warning per notebook).

Repository tooling behind the ``interplab`` command, not one of the kit's public modules (``interplab.__all__``).
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import config
from .html import HTMLView
from .notebooks import catalogue

FIGURE_TAG = "gallery-figure"
MAX_RESULTS = 8
# nbconvert adds require.js from a CDN; the kit's views carry their own scripts and need none.
_CDN_REQUIRE = re.compile(r'<script[^>]+src="https://[^"]*require(?:\.min)?\.js"[^>]*>\s*</script>')
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_BAR = re.compile(r"\d+%\|")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes in a kernel traceback


@dataclass
class Result:
    path: str
    title: str
    ok: bool
    seconds: float
    error: str = ""
    figure: str = ""                       # thumbnail file name beside index.html ("" = none tagged)
    results: list[str] = field(default_factory=list)  # the last cell's printed lines
    cold: bool = False                     # ran in a build that started with an empty kit cache
    parallel: bool = False                 # ran beside other notebooks (its time is not its time alone)
    cpu_seconds: float | None = None       # CPU time of the kernel and its children (where it could be read)


def _kernel_manager(folder: Path, launcher: list[str] | None = None):
    """A kernel manager over IPC sockets in ``folder`` (no TCP-transport warning), its command behind ``launcher``."""
    from jupyter_client.manager import KernelManager

    prefix = list(launcher or [])

    class Launched(KernelManager):
        """The kernel's command behind a command prefix that runs it (none: the plain command)."""

        def format_kernel_cmd(self, extra_arguments=None):
            return [*prefix, *super().format_kernel_cmd(extra_arguments)]

    return Launched(kernel_name="python3", transport="ipc", ip=str(folder / "kernel"))


def kernel_env(threads: int | None = None, env: dict | None = None, base: dict | None = None) -> dict:
    """The environment a notebook's kernel starts with: ``base`` (default: this process's, as it is now),
    plus ``env``; with ``threads``, torch and the BLAS/OpenMP pools of that kernel use that many CPU
    threads (notebooks run side by side each get their share of the cores instead of spin-waiting on
    each other's). A caller running kernels from background threads passes ``base``, a copy taken
    before, so that a change to ``os.environ`` meanwhile does not reach them."""
    out = {**(os.environ if base is None else base), **(env or {})}
    if threads:
        out.update({k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    return out


def execute(path: Path, out_dir: Path, timeout: int = 900, cold: bool = False, *, nb=None,
            env: dict | None = None, threads: int | None = None, base: dict | None = None,
            launcher: list[str] | None = None) -> Result:
    """Execute one notebook, write the executed copy, its HTML page and its thumbnail; never raises for cell errors.

    ``cold``: this run belongs to a build that started with an empty kit cache (labelled so on the card).
    ``nb``: the notebook to run instead of the file's contents (e.g. with injected parameters); ``env``,
    ``threads`` and ``base``: see :func:`kernel_env`. ``launcher``: a command prefix the kernel's command
    runs behind (the test suite's warm-kernel client); one that runs the kernel in another process
    writes that process's pid to ``<connection file>.pid``, where its CPU seconds are read."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = nbformat.read(path, as_version=4) if nb is None else nb
    title = next((l[2:].strip() for l in nb.cells[0].source.splitlines() if l.startswith("# ")), path.stem)
    start, error = time.perf_counter(), ""
    with tempfile.TemporaryDirectory(prefix="interplab-kernel-") as sockets:
        km = _kernel_manager(Path(sockets), launcher)
        client = NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute(env=kernel_env(threads, env, base))
        except CellExecutionError as exc:
            failed = next((i for i, c in enumerate(nb.cells)
                           if any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
            text = _ANSI.sub("", str(exc)).strip()
            error = f"cell {failed}: {text.splitlines()[-1] if text else type(exc).__name__}"
        except Exception as exc:  # kernel died, timeout...
            error = f"{type(exc).__name__}: {exc}"
        finally:  # nbclient leaves a kernel it did not create running: stop it, or every notebook's stays up
            cpu = _cpu_seconds(km)
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    seconds = time.perf_counter() - start
    finish_progress_bars(nb)
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / path.name)
    (out_dir / f"{path.stem}.html").write_text(_page(nb), encoding="utf-8")
    figure = _thumbnail(nb, out_dir / f"{path.stem}.png")
    return Result(str(path.name), title, not error, seconds, error, figure, last_cell_lines(nb), cold,
                  cpu_seconds=cpu)


def _cpu_seconds(km) -> float | None:
    """CPU seconds the kernel process and its finished children used (what a notebook costs beside
    others, whatever its wall time was), or None where the process cannot be read."""
    try:
        import psutil

        pids = [km.provisioner.process.pid]
        elsewhere = Path(f"{km.connection_file}.pid")  # a launcher ran the kernel in another process
        if elsewhere.is_file():
            pids.append(int(elsewhere.read_text()))
        times = [psutil.Process(p).cpu_times() for p in pids]
        return float(sum(t.user + t.system + t.children_user + t.children_system for t in times))
    except Exception:  # no kernel, no psutil, another provisioner: the figure is optional
        return None


def _cache_is_empty() -> bool:
    root = config.cache_root()
    return not any(p for p in root.iterdir() if not p.name.startswith("."))


# ------------------------------------------------------------------------------- clean executed output
def _bar_text(state: dict, model_id: str) -> tuple[str, float, float] | None:
    """(text, value, max) of a tqdm widget bar (an HBox of HTML, FloatProgress, HTML) from its saved state."""
    box = state.get(model_id, {})
    if box.get("model_name") != "HBoxModel":
        return None
    kids = [state.get(c.removeprefix("IPY_MODEL_"), {}) for c in box.get("state", {}).get("children", [])]
    names = [k.get("model_name") for k in kids]
    if names != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, bar, right = (k.get("state", {}) for k in kids)
    value, top = float(bar.get("value", 0)), float(bar.get("max", 0) or 0)

    def plain(s):
        return html.unescape(str(s.get("value", ""))).replace("\u2007", " ").strip()

    frac = value / top if top else 0.0
    cells = int(round(10 * min(frac, 1.0)))
    ltext, rtext = plain(left), plain(right)
    layout = state.get(str(box.get("state", {}).get("layout", "")).removeprefix("IPY_MODEL_"), {})
    if top and value >= top and layout.get("state", {}).get("visibility") == "hidden":
        # A finished bar with leave=False (the kit's bars): tqdm sets its value and hides it, but leaves the
        # labels as last drawn ("90%", "65/72", the time left then). Its final numbers are the value and max.
        ltext = re.sub(r"[ \d]{3}%$", "100%", ltext)
        count = "/".join(str(int(x)) if float(x).is_integer() else f"{x:g}" for x in (value, top))
        rtext = re.sub(r"^\S+/\S+(\s*\[.*\])?", count, rtext) if re.match(r"^\S+/\S+", rtext) else count
    text = f"{ltext}|{'█' * cells}{' ' * (10 - cells)}| {rtext}".strip()
    return text, value, top


def finish_progress_bars(nb) -> None:
    """Rewrite saved progress bars to their final state, in place.

    nbclient saves a tqdm widget's text fallback as first drawn (``0%``); the final numbers live in
    the saved widget state, so the fallback is rebuilt from it. Bars over zero items (``0/0``,
    ``0it``) are dropped, and carriage-return text bars in streams keep only their last line."""
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    CoalesceStreamsPreprocessor().preprocess(nb, {})
    state = nb.metadata.get("widgets", {}).get(_WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(_WIDGET_VIEW)
            if view:
                bar = _bar_text(state, view.get("model_id", ""))
                if bar is not None:
                    text, value, top = bar
                    if value == 0 and top <= 1 and re.search(r"(^|\s)0(/0|it)\b", text):
                        continue  # a bar over zero items says nothing
                    out["data"]["text/plain"] = text
            elif out.get("output_type") == "stream" and "\r" in out.get("text", ""):
                out["text"] = "\n".join(line.rsplit("\r", 1)[-1] for line in out["text"].split("\n"))
            kept.append(out)
        cell["outputs"] = kept


def last_cell_lines(nb) -> list[str]:
    """The key results a notebook's last code cell prints (its stdout lines, at most MAX_RESULTS)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code:
        return []
    lines = []
    for out in code[-1].get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            lines += [l.strip() for l in out.get("text", "").splitlines() if l.strip()]
    return lines[:MAX_RESULTS]


#: warnings that may remain in executed output, each with why the kit does not prevent it
ALLOWED_WARNINGS: dict[str, str] = {
    r"FewTextsWarning": "deliberate: topic models of fewer than 200 texts (the offline SAMPLE) are noise, and the "
                        "reader must be told so where the topics are shown",
}
_WARNING = re.compile(r"\b\w*(Warning|WARNING)\b|\bwarn(ing)?:", re.I)


def scan(nb) -> list[str]:
    """What a reader of an executed notebook should not see: a progress bar below 100 % or a warning
    the kit could have prevented (not in ``ALLOWED_WARNINGS``). One line per problem."""
    problems = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            texts = [out.get("text", "")] if out.get("output_type") == "stream" else [out.get("data", {}).get("text/plain", "")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                for m in re.finditer(r"(\d+)%\s*\|", text):
                    if int(m.group(1)) < 100:
                        problems.append(f"cell {i}: progress bar at {m.group(1)}%: {text.strip().splitlines()[-1][:120]}")
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    for line in text.splitlines():
                        if _WARNING.search(line) and not any(re.search(a, line) for a in ALLOWED_WARNINGS):
                            problems.append(f"cell {i}: warning: {line.strip()[:160]}")
    return problems


def _thumbnail(nb, dest: Path) -> str:
    """Save the last PNG drawn by the cell tagged ``gallery-figure``; returns its file name or ""."""
    for cell in reversed(nb.cells):
        if cell.cell_type == "code" and FIGURE_TAG in cell.get("metadata", {}).get("tags", []):
            pngs = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
            if pngs:
                dest.write_bytes(base64.b64decode(pngs[-1]))
                return dest.name
    dest.unlink(missing_ok=True)
    return ""


def _without_widgets(nb):
    """A copy without widget views (tqdm bars): the page shows their text, and needs no widget JS from a CDN."""
    import copy

    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and _WIDGET_VIEW in data:
                data.pop(_WIDGET_VIEW)
    return nb


def _page(nb) -> str:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(_without_widgets(nb))
    body = _CDN_REQUIRE.sub("", body)
    back = ("<div style='font:14px system-ui,sans-serif;padding:8px 16px;border-bottom:1px solid #ddd'>"
            "<a href='index.html'>&larr; interplab gallery</a></div>")
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + back, body, count=1)


# ------------------------------------------------------------------------------------------ timings
def _load_timings(out_dir: Path) -> dict:
    try:
        return json.loads((out_dir / "timings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def record_timings(results: list[Result], out_dir: Path) -> dict:
    """Keep the latest cold (empty kit cache) and warm seconds of each notebook in timings.json; a time
    measured beside other notebooks is kept apart (``cold-parallel``), so the README's times stay times alone."""
    timings = _load_timings(out_dir)
    for r in results:
        if r.ok:
            kind = ("cold" if r.cold else "warm") + ("-parallel" if r.parallel else "")
            timings.setdefault(r.path, {})[kind] = round(r.seconds, 1)
    (out_dir / "timings.json").write_text(json.dumps(timings, indent=1, sort_keys=True), encoding="utf-8")
    return timings


def runtime_label(seconds: float) -> str:
    """A README run-time cell from measured seconds: '~40 s', '~2 min'."""
    if seconds < 90:
        return f"~{max(5, int(round(seconds / 5.0)) * 5)} s"
    return f"~{int(round(seconds / 60.0))} min"


def update_readme(timings: dict, readme: Path | None = None) -> list[str]:
    """Write each notebook's cold run time (2-core ``make demo``) into the README table's run-time column."""
    readme = Path(readme or config.repo_root() / "README.md")
    lines, changed = readme.read_text(encoding="utf-8").splitlines(keepends=True), []
    for i, line in enumerate(lines):
        m = re.match(r"^(\|\s*\[[^\]]+\]\((notebooks/[^)]+\.ipynb)\)\s*\|[^|]*\|)([^|]*)(\|.*)$", line.rstrip("\n"))
        if not m:
            continue
        cold = timings.get(Path(m.group(2)).name, {}).get("cold")
        if cold is None:
            continue
        cell = f" {runtime_label(cold)} (cold) "
        if m.group(3) != cell:
            lines[i] = m.group(1) + cell + m.group(4) + "\n"
            changed.append(m.group(2))
    readme.write_text("".join(lines), encoding="utf-8")
    for path in {m for m in re.findall(r"\]\((notebooks/[^)]+\.ipynb)\)", "".join(lines))}:
        cold = timings.get(Path(path).name, {}).get("cold")
        if cold is not None and update_notebook_runtime(readme.parent / path, cold):
            changed.append(path) if path not in changed else None
    return changed


_RUNTIME = re.compile(r"(\*\*Run time:\*\* )~\d+ (?:s|min)( \(cold\) on 2 CPU cores)")


def update_notebook_runtime(nb_path: Path, cold: float) -> bool:
    """Rewrite a notebook's intro line ``**Run time:** ~N s (cold) on 2 CPU cores`` from the measured
    seconds (the same number as the README table); the file is edited as text, nothing else changes."""
    try:
        raw = Path(nb_path).read_text(encoding="utf-8")
    except OSError:
        return False
    new = _RUNTIME.sub(lambda m: f"{m.group(1)}{runtime_label(cold)}{m.group(2)}", raw, count=1)
    if new != raw:
        Path(nb_path).write_text(new, encoding="utf-8")
    return new != raw


# ---------------------------------------------------------------------------------------- the index
def _links(markdown: str) -> str:
    """The README's starter cell (markdown links) as HTML links into the checkout."""
    found = re.findall(r"\[([^\]]+)\]\(([^)]+)\)", markdown)
    if not found:
        return html.escape(markdown.strip() or "—")
    return ", ".join(f"<a href='../../{html.escape(u)}'>{html.escape(t)}</a>" for t, u in found)


def _colab(nb_path: str) -> str:
    from .notebooks import badge

    try:
        url = re.search(r"\]\((https://colab[^)]+)\)\s*$", badge(nb_path)).group(1)
    except Exception:  # no repository URL in an unusual install: no link
        return ""
    return f"<a class='colab' href='{html.escape(url)}'>Open in Colab</a>"


def _seconds(t: dict | None, kind: str) -> str:
    if t and kind in t:
        return f"{t[kind]:.0f} s"
    if t and f"{kind}-parallel" in t:
        return f"{t[kind + '-parallel']:.0f} s (beside another notebook)"
    return "not measured yet"


def write_index(results: list[Result], out_dir: Path, timings: dict | None = None) -> Path:
    """Write index.html (one card per notebook, no JavaScript) and results.json."""
    entries = {Path(e.path).name: e for e in catalogue()} if config.repo_root() else {}
    timings = timings if timings is not None else _load_timings(out_dir)
    cards = []
    for r in results:
        stem, status = Path(r.path).stem, "ok" if r.ok else "failed"
        entry = entries.get(r.path)
        learn = f"<p class='learn'>{html.escape(entry.learn)}</p>" if entry else ""
        img = (f"<a href='{stem}.html'><img src='{html.escape(r.figure)}' alt='main figure of {html.escape(r.title)}'></a>"
               if r.figure else "<p class='nofig'>no figure</p>")
        checks = "".join(f"<li>{html.escape(line)}</li>" for line in r.results)
        checks = f"<ul class='results'>{checks}</ul>" if checks else "<p class='nofig'>no printed results</p>"
        err = f"<p class='err'>{html.escape(r.error)}</p>" if r.error else ""
        t = timings.get(r.path)
        times = (f"<p class='times'>run time on this machine: cold {_seconds(t, 'cold')} &middot; "
                 f"warm {_seconds(t, 'warm')} &middot; status <b>{status}</b></p>")
        links = (f"<p class='links'>{_colab('notebooks/' + r.path)} &middot; starter: "
                 f"{_links(entry.starter) if entry else '—'}</p>")
        cards.append(f"<div class='card {status}'><h2><a href='{stem}.html'>{html.escape(r.title)}</a></h2>"
                     f"{learn}{img}<h3>Key results</h3>{checks}{err}{times}{links}</div>")
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}"
        ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:1.2em}"
        ".card{border:1px solid #ccc;border-radius:8px;padding:1em;overflow:hidden}"
        ".ok{border-left:6px solid #2a2}.failed{border-left:6px solid #c22}"
        ".card img{width:100%;max-height:260px;object-fit:contain;background:#fafafa;border:1px solid #eee}"
        ".card h2{font-size:1.15em;margin:.2em 0}.card h3{font-size:.95em;margin:.6em 0 .2em}"
        ".learn{font-size:.9em;color:#444}.results{font:12px ui-monospace,monospace;padding-left:1.2em;margin:.2em 0}"
        ".results li{margin:.15em 0;overflow-wrap:anywhere}.times,.links{font-size:.85em;color:#555;margin:.4em 0}"
        ".colab{background:#f9ab00;color:#000;padding:1px 6px;border-radius:4px;text-decoration:none}"
        ".nofig{color:#999;font-style:italic}.err{color:#c22;font-family:monospace;font-size:85%}"
    )
    body = (
        f"<style>{style}</style>"
        f"<h1>interplab gallery</h1><p>{sum(r.ok for r in results)} of {len(results)} notebooks ran, offline, on the "
        "embedded defaults (MiniLM-L6, SmolLM2-135M, the kit's toy models and project-written SAMPLE data). "
        "Cold: first run with an empty kit cache; warm: a later run.</p>"
        f"<div class='grid'>{''.join(cards)}</div>"
    )
    out = HTMLView(body, title="interplab gallery").save(out_dir / "index.html")
    (out_dir / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=1), encoding="utf-8")
    return out


def expected_seconds() -> dict[str, float]:
    """``{notebook file name: seconds}`` from the README table's run times (empty outside a checkout):
    what runs notebooks side by side starts the longest first, so the lanes finish together."""
    return {Path(e.path).name: _readme_seconds(e.runtime) for e in (catalogue() if config.repo_root() else [])}


def _readme_seconds(label: str) -> float:
    """Seconds from a README run-time cell ('~3 min (cold)' -> 180, '~40 s' -> 40; 0 if none)."""
    m = re.search(r"(\d+(?:\.\d+)?)\s*(min|s)\b", label or "")
    return float(m.group(1)) * (60 if m.group(2) == "min" else 1) if m else 0.0


def default_jobs() -> int:
    """Notebooks run at once by ``make demo``: two where there are at least two CPU cores ($INTERPLAB_JOBS overrides).

    Much of a notebook's time is single-threaded (kernel start, imports, tokenizing, LIME's and SHAP's
    Python loops), so two side by side, each on half the cores, finish sooner than one after another."""
    env = os.environ.get("INTERPLAB_JOBS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"INTERPLAB_JOBS must be a whole number >= 1, got {env!r}")
        return int(env)
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def threads_per_job(jobs: int) -> int | None:
    """CPU threads each of ``jobs`` side-by-side runs gets (None for one run alone: it keeps the default)."""
    return max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None


def execute_many(paths, out_dir: Path, *, jobs: int | None = None, cold: bool = False, env: dict | None = None,
                 prepare=None, timeout: int = 900, order: dict | None = None, progress: bool = True) -> list[Result]:
    """Execute several notebooks, ``jobs`` at a time (default :func:`default_jobs`), each kernel on its share
    of the CPU cores; results in the order of ``paths``.

    ``prepare(path) -> nb`` gives the notebook to run for a path (default: the file as it is); ``order``
    maps a notebook's file name to its last run time (default: the README table's run times), so the
    longest start first and the lanes finish together. The kit's caches are safe to fill from several
    kernels at once (``config.cache_lock``)."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    paths = [Path(p) for p in paths]
    jobs = max(1, min(jobs or default_jobs(), len(paths) or 1))
    order = {**expected_seconds(), **(order or {})}
    threads = threads_per_job(jobs)
    queue = sorted(range(len(paths)), key=lambda i: -order.get(paths[i].name, 0.0))
    results: list[Result | None] = [None] * len(paths)
    bar = tqdm(total=len(paths), desc=f"notebooks ({jobs} at a time)" if jobs > 1 else "notebooks", unit="nb",
               disable=not progress)

    def one(i):
        p = paths[i]
        r = execute(p, out_dir, timeout, cold, nb=prepare(p) if prepare else None, env=env, threads=threads)
        r.parallel = jobs > 1
        results[i] = r
        bar.set_postfix_str(p.name)
        bar.update(1)
        if not r.ok:
            tqdm.write(f"FAILED {p.name} at {r.error}")
        return r

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, queue))
    bar.close()
    return results


def build(out_dir: str | Path = "build/gallery", only: list[str] | None = None, readme: bool = False,
          jobs: int | None = None) -> list[Result]:
    """Run the catalogue's notebooks (or those whose path contains one of ``only``) and write the gallery.

    ``jobs`` notebooks run at once (default :func:`default_jobs`). ``readme=True`` measures the run
    times the README states, so it runs one notebook at a time (each alone on the machine, as a reader runs it)."""
    root = config.repo_root()
    if root is None:
        raise RuntimeError("the gallery runs the notebooks of a source checkout (git clone the kit, then make demo)")
    out_dir = Path(out_dir)
    entries = [e for e in catalogue() if not only or any(o in e.path for o in only)]
    cold = _cache_is_empty()
    last = {name: max(t.values()) for name, t in _load_timings(out_dir).items() if t}
    t0 = time.perf_counter()
    results = execute_many([root / e.path for e in entries], out_dir, jobs=1 if readme else jobs, cold=cold,
                           order=last)
    timings = record_timings(results, out_dir)
    index = write_index(results, out_dir, timings)
    print(f"gallery: {index} ({len(results)} notebooks in {time.perf_counter() - t0:.0f} s"
          f"{', cold cache' if cold else ''})")
    if readme:
        changed = update_readme(timings)
        print(f"README run times updated for {len(changed)} notebook(s)")
    return results


def cli(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="interplab gallery", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build/gallery")
    p.add_argument("--readme", action="store_true",
                   help="write the measured cold run times into README.md's notebook table")
    p.add_argument("--jobs", type=int, default=None,
                   help="notebooks run at once (default: 2 on a machine with 2 or more cores; 1 with --readme)")
    p.add_argument("only", nargs="*", help="run only notebooks whose path contains one of these")
    args = p.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        p.error(f"--jobs must be >= 1, got {args.jobs}")
    results = build(args.out, args.only, readme=args.readme, jobs=args.jobs)
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"notebook {r.path} failed at {r.error}", file=sys.stderr)
    return 1 if failed else 0
