"""Feedback step: verdicts and points are shown; hidden checks, values and tracebacks are not."""
import re

from conftest import ASSIGNMENT, HIDDEN_LINE, HIDDEN_MESSAGE, HIDDEN_VALUE, nbgrader_cell
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder.feedback import HideHiddenTests, generate_feedback


def visible_html(path):
    """The HTML without its <style> blocks (Pygments CSS names a `Generic.Traceback` class)."""
    return re.sub(r"<style.*?</style>", "", path.read_text(), flags=re.S)


def test_failed_hidden_check_shows_message_not_the_check(graded):
    """The wrong-sign student sees points and the assertion message, nothing hidden."""
    course, _ = graded
    [path] = generate_feedback(course, ASSIGNMENT, students=["wrong_sign"])
    html = visible_html(path)
    assert "Score: 0.0 / 2.0" in html and "Score: 1.0 / 1.0" in html
    assert f"CheckFailed: {HIDDEN_MESSAGE}" in html  # the verdict the grader computed
    for hidden in ("expected_at_two", HIDDEN_VALUE, "HIDDEN TESTS", "Traceback"):
        assert hidden not in html
    assert HIDDEN_LINE.split(" = ")[0] not in html


def test_feedback_for_everyone_graded(graded):
    """Without a student list, every autograded student gets a feedback file."""
    course, rows = graded
    paths = generate_feedback(course, ASSIGNMENT)
    assert [p.parent.parent.name for p in paths] == sorted(row.student for row in rows)


def test_hide_hidden_tests_trims_regions_in_test_cells_and_every_traceback():
    """Test cells lose hidden regions; every error, in any cell, keeps only type and message."""
    test = nbgrader_cell(new_code_cell("visible()\n### BEGIN HIDDEN TESTS\nsecret()\n"
                                       "### END HIDDEN TESTS"), "test_x", grade=True, points=1)
    test.outputs = [new_output("error", ename="AssertionError", evalue="wrong sign",
                               traceback=["Traceback ...", "----> 3 secret()"])]
    answer = nbgrader_cell(new_code_cell("f()"), "answer", solution=True)
    answer.outputs = [new_output("stream", text="hello\n"),
                      new_output("error", ename="NameError", evalue="name 'f' is not defined",
                                 traceback=["Traceback ...", "----> 1 f()"])]
    nb, _ = HideHiddenTests().preprocess(new_notebook(cells=[test, answer]), {})
    assert nb.cells[0].source == "visible()"
    assert [o.text for o in nb.cells[0].outputs] == ["AssertionError: wrong sign\n"]
    assert nb.cells[1].source == "f()"
    assert [o.text for o in nb.cells[1].outputs] == ["hello\n", "NameError: name 'f' is not defined\n"]
