"""Reading a submission and matching it to the notebook the student was given (pure: no
sandbox, no nbgrader run)."""
import copy
from pathlib import Path

import nbformat
import pytest

from autograder.submission import Unreadable, autograded_notebook, grade_id, match, read_notebook

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "release" / "02_gradient_step" / "gradient_step.ipynb"
OTHER = ROOT / "release" / "01_sigmoid" / "sigmoid.ipynb"
SOURCE = ROOT / "source" / "02_gradient_step" / "gradient_step.ipynb"


@pytest.fixture
def given():
    return read_notebook(RELEASE.read_bytes())[0]


def cell_of(nb, gid):
    return next(c for c in nb["cells"] if grade_id(c) == gid)


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"  \n", "empty file"),
    (b'{"cells": [\xff\xfe]}', "not UTF-8"),
    (RELEASE.read_bytes()[:500], "cut off"),
    (b"[1, 2, 3]", "not a notebook"),
    (b'{"nbformat": 2, "cells": []}', "unsupported nbformat 2"),
])
def test_unreadable_files_say_why(data, reason):
    with pytest.raises(Unreadable, match=reason):
        read_notebook(data)


def test_nbformat_3_is_converted_with_a_note():
    v3 = nbformat.writes(nbformat.convert(nbformat.read(RELEASE, as_version=4), 3))
    nb, notes = read_notebook(v3.encode())
    assert notes == ["converted from nbformat 3"]
    assert cell_of(nb, "quiz")


def test_an_untouched_notebook_matches_cleanly(given):
    matched = match(given, given)
    assert matched.flags == [] and matched.notes == []
    assert "quiz" in matched.reruns and "gradient_step" in matched.reruns
    assert not any("BEGIN HIDDEN" in source for source in matched.cells)


def test_tests_and_read_only_cells_come_from_the_instructor(given):
    mine = copy.deepcopy(given)
    cell_of(mine, "setup")["source"] = "import numpy as np\nnp.isclose = lambda *a, **k: True"
    cell_of(mine, "test_h")["source"] = "pass"
    matched = match(mine, given)
    assert all("np.isclose = lambda" not in source for source in matched.cells)
    assert any("read-only cell 'setup' was edited" in note for note in matched.notes)


def test_edited_metadata_is_a_tamper_flag(given):
    mine = copy.deepcopy(given)
    cell_of(mine, "test_del_w")["metadata"]["nbgrader"]["points"] = 20
    cell_of(mine, "quiz")["metadata"]["nbgrader"]["schema_version"] = 99
    flags = match(mine, given).flags
    assert any("edited metadata of cell 'test_del_w' (points)" in f for f in flags)
    assert any("edited metadata of cell 'quiz' (schema_version)" in f for f in flags)


def test_duplicated_and_deleted_cells_are_flagged_and_all_copies_run(given):
    mine = copy.deepcopy(given)
    quiz = cell_of(mine, "quiz")
    quiz["source"] = "h = 1"
    second = copy.deepcopy(quiz)
    second["source"] = "h = 2"
    mine["cells"].insert(mine["cells"].index(quiz) + 1, second)
    mine["cells"].remove(cell_of(mine, "test_error"))
    matched = match(mine, given)
    assert "structure changed: answer cell 'quiz' appears 2 times; all copies run, in order" \
        in matched.flags
    assert any("test cell 'test_error' was deleted" in f for f in matched.flags)
    assert matched.reruns["quiz"] == ["h = 1", "h = 2"]


def test_a_students_own_cell_runs_where_they_put_it(given):
    mine = copy.deepcopy(given)
    quiz = cell_of(mine, "quiz")
    helper = nbformat.v4.new_code_cell("def helper():\n    return 1")
    mine["cells"].insert(mine["cells"].index(quiz) + 1, helper)
    matched = match(mine, given)
    position = matched.cells.index("def helper():\n    return 1")
    assert matched.origins[position - 1] == ("answer", "quiz")


def test_another_assignments_notebook_is_named(given):
    other = read_notebook(OTHER.read_bytes())[0]
    answers = [grade_id(c) for c in other["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution")]
    matched = match(other, given, {"01_sigmoid": answers})
    assert matched.flags[0] == "wrong notebook: this is the notebook of 01_sigmoid"


def test_a_deleted_answer_cell_shows_the_stub_never_the_solution(given):
    """The autograded notebook is what feedback shows the student: a deleted answer cell
    appears as the stub that ran in its place, not as the instructor's source cell."""
    mine = copy.deepcopy(given)
    mine["cells"].remove(cell_of(mine, "quiz"))
    matched = match(mine, given)
    source_nb = read_notebook(SOURCE.read_bytes())[0]
    notebook = autograded_notebook(source_nb, matched, [None] * len(matched.cells), {})
    quiz = cell_of(notebook, "quiz")["source"]
    assert quiz == cell_of(given, "quiz")["source"]
    assert "BEGIN SOLUTION" not in quiz and "np.dot(x, w)" not in quiz
