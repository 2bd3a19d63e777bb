"""The notebooks whose results depend on data run top to bottom on the REAL files, and their final
asserts hold there too (a final-cell assert that passes on the sample and fails on real data is a defect).

The loaders read the real files through ``INTERPLAB_DATA_DIR`` (set to the shared datasets folder);
where that folder lacks the split a notebook asks for by default (it has only HH-RLHF harmless-base
test, ETHICS test/test_hard/ambiguous), the split parameter is pointed at one it has, papermill-style:
an extra cell right after the ``parameters`` cell. Each executed notebook is written to
``build/real-notebooks/`` for inspection.
"""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "real-notebooks"

# notebook -> parameter overrides (applied only to names the notebook's parameters cell assigns)
REAL_RUNS = {
    "explanations_text": {},
    "probes_and_saes": {},
    "text_info_extraction": {"HH_SUBSET": "harmless-base", "HH_SPLIT": "test", "ETHICS_SPLIT": "test"},
    # the prize winners' files are not in the shared folder: the pipeline's real prize-format data is
    "inverse_scaling": {"published_dir": "{data}/inverse-scaling-eval-pipeline/results",
                        "TASKS": ["induction", "{data}/inverse-scaling-eval-pipeline/data/sentiment_analysis.csv"]},
    "attention_bertviz": {},
}


def _assigned(source: str) -> set[str]:
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}


def with_real_parameters(nb, overrides: dict, data: Path):
    """Insert ``NAME = value`` lines after the ``parameters`` cell for the names it assigns; returns the
    overrides applied."""
    import nbformat

    idx = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if idx is None or not overrides:
        return {}
    names = _assigned(nb.cells[idx].source)
    def fill(v):
        if isinstance(v, str):
            return v.format(data=data)
        return [fill(x) for x in v] if isinstance(v, list) else v

    applied = {k: fill(v) for k, v in overrides.items() if k in names}
    if applied:
        cell = nbformat.v4.new_code_cell("# injected by tests/test_notebooks_real.py: real-data parameters\n"
                                         + "\n".join(f"{k} = {v!r}" for k, v in applied.items()))
        cell.metadata["tags"] = ["injected-parameters"]
        nb.cells.insert(idx + 1, cell)
    return applied


def test_parameter_injection_only_touches_assigned_names(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("HH_SPLIT = 'train'\nSEED = 0")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("import os"), p, nbformat.v4.new_code_cell("print(HH_SPLIT)")]
    applied = with_real_parameters(nb, {"HH_SPLIT": "test", "NOT_THERE": 1, "published_dir": "{data}/r"}, tmp_path)
    assert applied == {"HH_SPLIT": "test"} and nb.cells[2].source.endswith("HH_SPLIT = 'test'") and len(nb.cells) == 4


# real reviews, dialogues and prize files are longer than the samples: a real run takes about this many
# times its README run time (measured: explanations_text 394 s on real IMDB, 160 s on the sample)
REAL_SLOWER = 2.5


def background_runs(items) -> list:
    """The selected notebooks on the real data, in the session's background runs (``conftest.BackgroundRuns``,
    beside the other notebooks, as ``make demo`` runs them); none where the real data folder is absent."""
    import nbformat

    from conftest import SHARED_DATA, kernel_launcher, params_of
    from interplab import gallery

    if not SHARED_DATA.is_dir():
        return []
    env = {"INTERPLAB_DATA_DIR": str(SHARED_DATA), "INTERPLAB_TEST_DATA": str(SHARED_DATA),
           "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    seconds = gallery.expected_seconds()

    def run(name):
        def one(base, threads):
            path = ROOT / "notebooks" / f"{name}.ipynb"
            nb = nbformat.read(path, as_version=4)
            applied = with_real_parameters(nb, REAL_RUNS[name], SHARED_DATA)
            return gallery.execute(path, OUT, nb=nb, env=env, base=base, threads=threads,
                                   launcher=kernel_launcher()), applied
        return one

    return [(("real run", n), REAL_SLOWER * seconds.get(f"{n}.ipynb", 0.0), run(n))
            for n in params_of(items, "test_notebook_runs_and_its_asserts_hold_on_real_data", "name")]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REAL_RUNS))
def test_notebook_runs_and_its_asserts_hold_on_real_data(name, background, shared_data):
    r, applied = background.result(("real run", name))
    assert r.ok, (f"{name} on the real data in {shared_data} (parameters {applied or 'unchanged'}; "
                  f"executed copy: {(OUT / f'{name}.ipynb').relative_to(ROOT)}) failed at {r.error}")
