"""Every notebook in the README catalogue runs top to bottom offline, through the gallery's runner
(the one ``make demo`` uses), and what it leaves behind is what a reader should see.

One execution per notebook serves three checks: the notebook runs without an error (its last cell
asserts its key results); its executed output is clean (``gallery.scan``: no progress bar below
100 %, no warning the kit could have prevented); and its gallery card has what the index shows (a
thumbnail from the ``gallery-figure`` cell and the printed key results). The executed copies, pages
and an index are left in ``build/test-gallery/`` for inspection.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from interplab import gallery
from interplab.config import repo_root
from interplab.notebooks import catalogue

ROOT = repo_root()
OUT = ROOT / "build" / "test-gallery"
RESULTS: dict[str, gallery.Result] = {}
PATHS = [e.path for e in catalogue()]
ATTENTION = "notebooks/attention_bertviz.ipynb"


def background_runs(items) -> list:
    """Every selected notebook, run once through the gallery's runner (as ``make demo`` runs them, beside
    another notebook) in the session's background runs (``conftest.BackgroundRuns``), longest first."""
    from conftest import kernel_launcher, params_of, selected

    seconds = gallery.expected_seconds()

    def run(path):
        return lambda env, threads: gallery.execute(ROOT / path, OUT, base=env, threads=threads,
                                                    launcher=kernel_launcher())

    paths = params_of(items, "test_notebook_runs_clean_with_a_full_card", "path")
    if selected(items, "test_attention_notebook_page_renders_offline"):
        paths = sorted(set(paths) | {ATTENTION})
    return [(("sample run", p), seconds.get(Path(p).name, 0.0), run(p)) for p in paths]


@pytest.fixture
def executed(background, path) -> gallery.Result:
    r = background.result(("sample run", path))
    r.parallel = gallery.default_jobs() > 1
    return r


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.split("/")[-1].removesuffix(".ipynb"))
def test_notebook_runs_clean_with_a_full_card(path, executed):
    nb_path = ROOT / path
    r = executed
    RESULTS[path] = r
    assert r.ok, f"{path} failed at {r.error} (executed copy: {OUT / nb_path.name})"
    problems = gallery.scan(nbformat.read(OUT / nb_path.name, as_version=4))
    assert problems == [], f"{path}: what a reader should not see:\n" + "\n".join(problems)
    assert r.results, f"{path}: its last cell prints no key results for the gallery card"
    tagged = any(gallery.FIGURE_TAG in c.get("metadata", {}).get("tags", [])
                 for c in nbformat.read(nb_path, as_version=4).cells)
    assert tagged, f"{path}: no cell is tagged {gallery.FIGURE_TAG!r} (the card's thumbnail)"
    assert r.figure and (OUT / r.figure).stat().st_size > 1000, f"{path}: the {gallery.FIGURE_TAG!r} cell drew no figure"


def test_index_of_the_notebooks_run():
    """The index of what this session ran (all of the catalogue when the slow tests ran)."""
    if not RESULTS:
        pytest.skip("no notebook ran in this session (run without -m 'not slow')")
    index = gallery.write_index(list(RESULTS.values()), OUT)
    text = index.read_text(encoding="utf-8")
    for path, r in RESULTS.items():
        assert f"{path.split('/')[-1].removesuffix('.ipynb')}.html" in text


@pytest.mark.slow
@pytest.mark.browser
def test_attention_notebook_page_renders_offline(background, open_offline):
    """The gallery page of the attention notebook (this session's run of it) shows BertViz drawn, with
    the network off."""
    r = background.result(("sample run", ATTENTION))
    assert r.ok, r.error
    page = open_offline(OUT / "attention_bertviz.html")
    page.page.wait_for_selector("svg line", state="attached", timeout=15_000)
    assert page.page.locator("svg line").count() > 1000
    # Only MathJax (for LaTeX in markdown, optional) may come from a CDN; nothing the views need does.
    scripts = [u for u in page.requests if (u.endswith(".js") or ".js?" in u) and "mathjax" not in u]
    assert scripts == [], scripts
    assert not [e for e in page.errors if "Uncaught" in e or "Error:" in e], page.errors
