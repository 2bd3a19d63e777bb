"""The gallery runner: executed notebooks, HTML pages, an index, and failures named by cell."""
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


@pytest.mark.browser
def test_attention_notebook_page_renders_offline(open_offline, tmp_path):
    """The gallery page of the attention notebook shows BertViz drawn, with the network off."""
    from interplab.config import repo_root

    r = gallery.execute(repo_root() / "notebooks" / "attention_bertviz.ipynb", tmp_path)
    assert r.ok, r.error
    page = open_offline(tmp_path / "attention_bertviz.html")
    page.page.wait_for_selector("svg line", state="attached", timeout=15_000)
    assert page.page.locator("svg line").count() > 1000
    # Only MathJax (for LaTeX in markdown, optional) may come from a CDN; nothing the views need does.
    scripts = [u for u in page.requests if (u.endswith(".js") or ".js?" in u) and "mathjax" not in u]
    assert scripts == [], scripts
    assert not [e for e in page.errors if "Uncaught" in e or "Error:" in e], page.errors
