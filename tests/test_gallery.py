"""The gallery runner: executed notebooks, HTML pages, an index, and failures named by cell."""
import os

import nbformat
import pytest

from interplab import gallery


def _nb(path, cells):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Tiny test notebook")] + [nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(nb, path)
    return path


def test_execute_ok_and_failing(tmp_path):
    ok = gallery.execute(_nb(tmp_path / "ok.ipynb", ["x = 6 * 7", "print(x)"]), tmp_path / "out")
    bad = gallery.execute(_nb(tmp_path / "bad.ipynb", ["y = 1", "raise ValueError('boom')"]), tmp_path / "out")
    assert ok.ok and ok.title == "Tiny test notebook"
    assert not bad.ok and bad.error.startswith("cell 2") and "boom" in bad.error
    executed = nbformat.read(tmp_path / "out" / "ok.ipynb", as_version=4)
    assert executed.cells[2].outputs[0]["text"].strip() == "42"
    index = gallery.write_index([ok, bad], tmp_path / "out")
    html = index.read_text()
    assert "1 of 2 notebooks ran" in html and "ok.html" in html and "boom" in html
    assert (tmp_path / "out" / "ok.html").read_text().count("42") >= 1


def _nb_tagged(path, cells):
    """A notebook from (source, tags) pairs."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Tagged test notebook")])
    for src, tags in cells:
        c = nbformat.v4.new_code_cell(src)
        c.metadata["tags"] = tags
        nb.cells.append(c)
    nbformat.write(nb, path)
    return path


BARS = ("from tqdm.auto import tqdm\n"
        "for i in tqdm(range(50), desc='work'): pass\n"
        "for i in tqdm([], desc='empty'): pass\n"
        "bar = tqdm(total=72, desc='gen', leave=False, mininterval=1000)\n"  # the kit's bars: hidden when done,
        "bar.update(65); bar.update(7); bar.close()\n"  # their labels left as last drawn (0/72 here)
        "import sys\n"
        "for i in range(3): sys.stderr.write(f'\\rtext {i}/3'); sys.stderr.flush()\n"
        "print('done')")


def test_progress_bars_end_in_their_final_state(tmp_path):
    r = gallery.execute(_nb(tmp_path / "bars.ipynb", [BARS]), tmp_path / "out")
    assert r.ok, r.error
    nb = nbformat.read(tmp_path / "out" / "bars.ipynb", as_version=4)
    texts = [o.get("data", {}).get("text/plain", "") or o.get("text", "") for o in nb.cells[1].outputs]
    joined = "\n".join(texts)
    assert "work" in joined and "100%" in joined and "50/50" in joined, texts
    assert "0%|" not in joined.replace("100%|", ""), texts
    assert "empty" not in joined, "a bar over zero items is dropped"
    assert "gen: 100%|██████████| 72/72" in joined and "0/72" not in joined, texts
    assert "text 2/3" in joined and "text 0/3" not in joined, "carriage-return bars keep their last state"
    assert gallery.scan(nb) == []
    page = (tmp_path / "out" / "bars.html").read_text()
    assert "50/50" in page and "index.html" in page  # the page shows the final bar and links back


def test_scan_reports_frozen_bars_and_warnings(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output("display_data", data={"text/plain": "Loading weights:   0%|          | 0/103"}),
        nbformat.v4.new_output("stream", name="stderr", text="FutureWarning: this will change\n"),
        nbformat.v4.new_output("display_data", data={"text/plain": "prompts:  90% |█████████ | 65/72 [00:41<00:03]"}),
        nbformat.v4.new_output("display_data", data={"text/plain": "prompts: 100% |██████████| 72/72"}),
    ]
    problems = gallery.scan(nb)
    assert len(problems) == 3 and "0%" in problems[0] and "FutureWarning" in problems[1], problems
    assert "at 90%" in problems[2], problems


def test_kernel_runs_without_tcp_warning_and_is_stopped_after(tmp_path, capfd):
    from conftest import process_gone

    r = gallery.execute(_nb(tmp_path / "quiet.ipynb", ["import os; print(os.getpid())"]), tmp_path / "out")
    assert r.ok
    pid = int(nbformat.read(tmp_path / "out" / "quiet.ipynb", as_version=4).cells[1].outputs[0]["text"])
    # the kernel is shut down before execute returns (reaping may take a moment)
    assert process_gone(pid), f"the notebook's kernel (pid {pid}) is still running after execute()"
    captured = capfd.readouterr()
    assert "without encryption" not in captured.out + captured.err
    assert "Parent appears to have exited" not in captured.out + captured.err


def test_cards_have_figure_results_times_and_links(tmp_path):
    plot = ("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
            "%matplotlib inline\nplt.plot([1, 3, 2]); plt.show()")
    path = _nb_tagged(tmp_path / "fig.ipynb", [(plot, ["gallery-figure"]), ("print('accuracy 0.91 (chance 0.50)')\nprint('3 heads found')", [])])
    r = gallery.execute(path, tmp_path / "out", cold=True)
    assert r.ok, r.error
    assert r.figure == "fig.png" and (tmp_path / "out" / "fig.png").read_bytes()[:4] == b"\x89PNG"
    assert r.results == ["accuracy 0.91 (chance 0.50)", "3 heads found"]
    timings = gallery.record_timings([r], tmp_path / "out")
    assert "cold" in timings["fig.ipynb"] and "warm" not in timings["fig.ipynb"]
    page = gallery.write_index([r], tmp_path / "out", timings).read_text()
    assert "<img src='fig.png'" in page and "<li>accuracy 0.91 (chance 0.50)</li>" in page
    assert "cold " in page and "warm not measured yet" in page and "<script" not in page
    untagged = gallery.execute(_nb(tmp_path / "plain.ipynb", ["print(2)"]), tmp_path / "out")
    assert untagged.figure == "" and not (tmp_path / "out" / "plain.png").exists()


def test_execute_many_runs_notebooks_side_by_side_each_on_its_share_of_cores(tmp_path):
    """Two at a time: each notebook records when it ran; the two intervals overlap, results come back in
    the order asked, each kernel was told its thread share, and the times are kept apart from times alone."""
    stamp = ("import os, time, json, torch\nstart = time.time()\ntime.sleep(5)\n"
             "json.dump({'start': start, 'end': time.time(), 'omp': os.environ.get('OMP_NUM_THREADS'),"
             " 'torch': torch.get_num_threads(), 'extra': os.environ.get('GALLERY_TEST')},"
             " open(os.path.join(OUT, os.path.basename(os.getcwd()) + '-' + NAME + '.json'), 'w'))\n"
             "print('done')")
    paths = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        paths.append(_nb(folder / f"{name}.ipynb", [f"OUT, NAME = {str(tmp_path)!r}, {name!r}\n" + stamp]))
    results = gallery.execute_many(paths, tmp_path / "out", jobs=2, env={"GALLERY_TEST": "yes"},
                                   order={"second.ipynb": 99.0}, progress=False)
    assert [r.path for r in results] == ["first.ipynb", "second.ipynb"] and all(r.ok for r in results)
    import json
    import os
    a, b = (json.loads((tmp_path / f"{n}-{n}.json").read_text()) for n in ("first", "second"))
    assert a["start"] < b["end"] and b["start"] < a["end"], "the two notebooks did not run at the same time"
    share = str(max(1, (os.cpu_count() or 1) // 2))
    assert a["omp"] == b["omp"] == share and a["torch"] == b["torch"] == int(share)
    assert a["extra"] == b["extra"] == "yes"
    assert all(r.parallel for r in results)
    timings = gallery.record_timings(results, tmp_path / "out")
    assert set(timings["first.ipynb"]) == {"warm-parallel"}  # never read as a time alone (the README's)
    page = gallery.write_index(results, tmp_path / "out", timings).read_text()
    assert "(beside another notebook)" in page
    alone = gallery.execute_many(paths[:1], tmp_path / "out", jobs=2, progress=False)  # one notebook: runs alone
    assert not alone[0].parallel and gallery.record_timings(alone, tmp_path / "out")["first.ipynb"]["warm"] > 0


def test_kernel_env_from_a_copy_ignores_later_changes_to_this_process(monkeypatch):
    """Kernels started from background threads get the environment copied before, not a test's monkeypatch."""
    monkeypatch.setenv("GALLERY_BASE", "before")
    base = dict(os.environ)
    monkeypatch.setenv("GALLERY_BASE", "changed")
    monkeypatch.setenv("GALLERY_ADDED", "meanwhile")
    env = gallery.kernel_env(1, {"EXTRA": "x"}, base=base)
    assert env["GALLERY_BASE"] == "before" and "GALLERY_ADDED" not in env and env["EXTRA"] == "x"
    assert env["OMP_NUM_THREADS"] == "1"
    now = gallery.kernel_env(None, None)
    assert now["GALLERY_BASE"] == "changed" and now["GALLERY_ADDED"] == "meanwhile" and "EXTRA" not in now


def test_jobs_setting_is_checked(monkeypatch):
    monkeypatch.setenv("INTERPLAB_JOBS", "3")
    assert gallery.default_jobs() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("INTERPLAB_JOBS", bad)
        with pytest.raises(ValueError, match="INTERPLAB_JOBS must be a whole number"):
            gallery.default_jobs()
    from interplab import cli
    with pytest.raises(SystemExit):
        cli.main(["gallery", "--jobs", "0"])


def test_readme_run_times_come_from_the_gallery(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("| Notebook | What | CPU run time | Colab | Starter |\n|---|---|---|---|---|\n"
                      "| [A](notebooks/a.ipynb) | learn a | ~1 min | badge | — |\n"
                      "| [B](notebooks/b.ipynb) | learn b | ~9 min | badge | — |\n")
    changed = gallery.update_readme({"a.ipynb": {"cold": 151.0, "warm": 40.0}, "b.ipynb": {"warm": 3.0}}, readme)
    text = readme.read_text()
    assert changed == ["notebooks/a.ipynb"]
    assert "| ~3 min (cold) |" in text and "| ~9 min |" in text  # b has no cold run yet: left alone
    assert gallery.runtime_label(42) == "~40 s" and gallery.runtime_label(95) == "~2 min"


def test_notebook_intro_run_time_follows_the_readme(tmp_path):
    """The notebook's own "Run time" line gets the same measured number as its README row (one source)."""
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "# A\n\n**Run time:** ~9 min (cold) on 2 CPU cores, offline.\n\nThe first step takes ~9 min (cold) on 2 CPU cores too.")])
    nbformat.write(nb, tmp_path / "notebooks" / "a.ipynb")
    readme = tmp_path / "README.md"
    readme.write_text("| Notebook | What | CPU run time | Colab | Starter |\n|---|---|---|---|---|\n"
                      "| [A](notebooks/a.ipynb) | learn a | ~9 min (cold) | badge | — |\n")
    changed = gallery.update_readme({"a.ipynb": {"cold": 151.0}}, readme)
    assert changed == ["notebooks/a.ipynb"]
    src = nbformat.read(tmp_path / "notebooks" / "a.ipynb", as_version=4).cells[0].source
    assert "**Run time:** ~3 min (cold) on 2 CPU cores, offline." in src
    assert "takes ~9 min (cold) on 2 CPU cores too" in src  # only the intro's Run time line is rewritten
    assert gallery.update_readme({"a.ipynb": {"cold": 151.0}}, readme) == []  # nothing left to change


def test_every_notebook_intro_states_the_readme_run_time():
    """Each notebook with a Run time line says what its README row says."""
    import re

    from interplab.config import repo_root

    root = repo_root()
    rows = dict(re.findall(r"^\|\s*\[[^\]]+\]\((notebooks/[^)]+\.ipynb)\)\s*\|[^|]*\|\s*([^|]*?)\s*\|", 
                           (root / "README.md").read_text(encoding="utf-8"), flags=re.M))
    assert len(rows) >= 10
    for path, cell in rows.items():
        intro = nbformat.read(root / path, as_version=4).cells[0].source
        m = re.search(r"\*\*Run time:\*\* (~\d+ (?:s|min) \(cold\))", intro)
        if m:
            assert m.group(1) == cell, (path, m.group(1), cell)


@pytest.mark.browser
def test_gallery_index_renders_offline_with_images_and_results(open_offline, tmp_path):
    plot = "import matplotlib.pyplot as plt\n%matplotlib inline\nplt.imshow([[0, 1], [1, 0]]); plt.show()"
    results = [gallery.execute(_nb_tagged(tmp_path / f"n{i}.ipynb", [(plot, ["gallery-figure"]), (f"print('result {i}')", [])]),
                               tmp_path / "out") for i in range(2)]
    index = gallery.write_index(results, tmp_path / "out")
    page = open_offline(index)
    cards = page.page.locator(".card")
    assert cards.count() == 2
    for i in range(2):
        card = cards.nth(i)
        assert card.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
        assert card.locator(".results li").count() >= 1
    page.page.screenshot(path=str(tmp_path / "gallery.png"), full_page=True)
    assert page.requests == [] and page.errors == []
