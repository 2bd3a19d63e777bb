"""Every notebook follows the conventions and is in the README catalogue; the README's links resolve."""
import json
import re
from pathlib import Path

import pytest

from interplab import notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_catalogue_matches_disk():
    listed = [e.path for e in notebooks.catalogue()]
    assert len(listed) == len(set(listed)), "a notebook is listed twice in README.md"
    assert sorted(listed) == NOTEBOOKS, "README.md's notebook table and notebooks/*.ipynb differ"


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_notebook_conventions(path):
    assert notebooks.check(ROOT / path) == []


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_catalogue_row_is_complete(path):
    entry = next(e for e in notebooks.catalogue() if e.path == path)
    assert entry.learn and entry.runtime and entry.title


def test_check_catches_outputs_and_keys(tmp_path):
    src = json.loads((ROOT / NOTEBOOKS[0]).read_text())
    src["cells"][-1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi"}]
    src["cells"][-2]["source"] = 'client = OpenAI(api_key="sk-' + "x" * 30 + '")'
    bad = tmp_path / "bad.ipynb"
    bad.write_text(json.dumps(src))
    problems = " | ".join(notebooks.check(bad))
    assert "outputs" in problems and "API key" in problems


def test_check_catches_missing_parameters_and_setup(tmp_path):
    src = json.loads((ROOT / NOTEBOOKS[0]).read_text())
    for c in src["cells"]:
        c.get("metadata", {}).pop("tags", None)
    src["cells"] = [c for c in src["cells"] if not "".join(c["source"]).startswith(notebooks.SETUP_MARKER)]
    bad = tmp_path / "bad.ipynb"
    bad.write_text(json.dumps(src))
    problems = " | ".join(notebooks.check(bad))
    assert "parameters" in problems and "setup cell" in problems


def test_setup_cell_keeps_colab_torch_and_uses_the_one_url():
    src = notebooks.setup_source()
    assert "google.colab" in src and "%pip install" in src and "torch" not in src.split("%pip", 1)[1]
    assert notebooks.repo_url() in src
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'Repository = "' + re.escape(notebooks.repo_url()) + '"', pyproject)


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if target.startswith("http"):
            continue
        assert (ROOT / target).exists(), f"README.md links to missing {target}"
