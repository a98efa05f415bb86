"""Notebooks are committed clean, keep their nbgrader metadata, and run headless."""
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SOURCE = sorted((ROOT / "source").glob("*/*.ipynb"))
RELEASE = sorted((ROOT / "release").glob("*/*.ipynb"))
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ALL = SOURCE + RELEASE + LESSONS + [ROOT / "source" / "header.ipynb"]
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
HAND_NAMED = re.compile(r"^[a-z][a-z0-9_]*$")


def rel(path):
    return str(path.relative_to(ROOT))


def nbgrader_cells(path):
    nb = json.loads(path.read_text())
    return [c for c in nb["cells"] if "nbgrader" in c["metadata"]]


def run(path, **options):
    """Execute a notebook in a real kernel, in its own folder; return the executed notebook."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}, **options).execute()
    return nb


def test_every_assignment_has_a_release_and_vice_versa():
    assert SOURCE and [p.parent.name for p in SOURCE] == [p.parent.name for p in RELEASE]
    assert [p.name for p in SOURCE] == [p.name for p in RELEASE]


@pytest.mark.parametrize("path", ALL, ids=rel)
def test_committed_without_outputs_and_with_one_kernelspec(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        assert not cell.get("outputs") and not cell.get("execution_count"), f"{rel(path)}: {cell.get('id')}"
    assert nb["metadata"]["kernelspec"] == KERNELSPEC


@pytest.mark.parametrize("path", SOURCE, ids=rel)
def test_grade_ids_are_hand_named_and_tests_say_what_they_check(path):
    cells = nbgrader_cells(path)
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in cells]
    assert len(ids) == len(set(ids))
    for cell, grade_id in zip(cells, ids):
        assert HAND_NAMED.match(grade_id) and not grade_id.startswith("cell"), grade_id
        meta = cell["metadata"]["nbgrader"]
        if meta["grade"]:
            assert grade_id.startswith("test_") and meta["points"] > 0
            assert "".join(cell["source"]).startswith('"""Check'), f"{grade_id} opens without a docstring"
        if meta["solution"]:
            assert "### BEGIN SOLUTION" in "".join(cell["source"])


@pytest.mark.parametrize("source", SOURCE, ids=rel)
def test_release_keeps_every_nbgrader_block(source):
    release = ROOT / "release" / source.parent.name / source.name
    want = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"] for c in nbgrader_cells(source)}
    got = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"] for c in nbgrader_cells(release)}
    assert set(want) <= set(got)  # the release adds the header's cell
    for grade_id, meta in want.items():
        for key in ("grade", "solution", "locked", "points"):
            assert got[grade_id].get(key) == meta.get(key), (grade_id, key)


def stream(cell, name):
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o["output_type"] == "stream" and o["name"] == name)


@pytest.mark.parametrize("path", SOURCE, ids=rel)
def test_source_solution_passes_every_test_silently(path):
    nb = run(path)
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert tests
    for cell in tests:
        assert "checks passed" in stream(cell, "stdout"), cell.metadata.nbgrader.grade_id
        assert stream(cell, "stderr") == "", cell.metadata.nbgrader.grade_id
    widgets = nb.metadata.get("widgets", {})
    if "step_explorer" in {c.get("id") for c in nb.cells} or "training_explorer" in {c.get("id") for c in nb.cells}:
        assert widgets, "the explorer should have rendered its widgets"


@pytest.mark.parametrize("path", LESSONS, ids=rel)
def test_lesson_notebooks_run_without_error(path):
    nb = run(path)
    assert all(o["output_type"] != "error" for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.parametrize("path", RELEASE, ids=rel)
def test_untouched_release_explains_instead_of_tracebacks_outside_tests(path):
    """Unwritten functions fail their tests, but figures and explorers say so in a sentence."""
    nb = run(path, allow_errors=True)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
        if "figure-only" in cell.metadata.get("tags", []):
            assert not errors, cell.get("id")
        if meta.get("solution") or meta.get("grade"):
            continue
        assert not errors, cell.get("id")
