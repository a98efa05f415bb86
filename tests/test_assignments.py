"""Each assignment from both sides, graded by real nbgrader in a throwaway copy of the course.

The source solution scores full marks, the untouched release scores zero, every fixture gets
its committed expected score, plain `nbgrader autograde` agrees with the grade command, and
the feedback shows no hidden test.
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course import copy_course, open_course, open_gradebook, tools_env
from autograder.feedback import generate_feedback
from autograder.grade import grade

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
EXPECTED = json.loads((FIXTURES / "expected_scores.json").read_text())
ASSIGNMENTS = sorted(EXPECTED)
MAX_SCORE = {"01_sigmoid": 5, "02_gradient_step": 9, "03_gradient_descent": 8}
BROKEN = "sends_truncated_file"


def notebook_name(assignment):
    return next((ROOT / "source" / assignment).glob("*.ipynb")).name


def submit(course_root, student, assignment, notebook_text):
    target = course_root / "submitted" / student / assignment / notebook_name(assignment)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(notebook_text)


def fill_submitted(course_root):
    """Every fixture, the source solution itself, and a truncated file, in nbgrader's layout."""
    for assignment in ASSIGNMENTS:
        for fixture in EXPECTED[assignment]:
            submit(course_root, fixture, assignment,
                   (FIXTURES / "submissions" / assignment / f"{fixture}.ipynb").read_text())
        source = (ROOT / "source" / assignment / notebook_name(assignment)).read_text()
        submit(course_root, "source_solution", assignment, source)
        submit(course_root, BROKEN, assignment, source[: len(source) // 3])


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = copy_course(open_course(ROOT), tmp_path_factory.mktemp("course"))
    fill_submitted(course.root)
    rows = {a: {row.student: row for row in grade(course, a)} for a in ASSIGNMENTS}
    return course, rows


@pytest.mark.parametrize("assignment, fixture", [(a, f) for a in ASSIGNMENTS for f in EXPECTED[a]])
def test_fixture_gets_its_committed_expected_score(graded, assignment, fixture):
    _, rows = graded
    row = rows[assignment][fixture]
    assert row.status == "graded", row.reason
    assert (row.score, row.max_score) == (EXPECTED[assignment][fixture], MAX_SCORE[assignment]), row.reason


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_solution_scores_full_marks_and_release_scores_zero(graded, assignment):
    _, rows = graded
    assert rows[assignment]["source_solution"].score == MAX_SCORE[assignment]
    assert rows[assignment]["untouched_release"].score == 0


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_broken_notebook_gets_a_reason_and_the_batch_goes_on(graded, assignment):
    _, rows = graded
    broken = rows[assignment][BROKEN]
    assert broken.status == "flagged" and broken.reason.startswith("unreadable:")
    assert len(rows[assignment]) == len(EXPECTED[assignment]) + 2
    assert all(r.status == "graded" for s, r in rows[assignment].items() if s != BROKEN)


def test_plain_nbgrader_autograde_gives_the_same_scores(graded, tmp_path):
    _, rows = graded
    root = copy_course(open_course(ROOT), tmp_path).root
    fill_submitted(root)
    nbgrader = [sys.executable, "-m", "nbgrader"]
    env = tools_env()  # as in the instructor's activated environment
    for assignment in ASSIGNMENTS:
        # An instructor's first step: record the assignment in the gradebook.
        subprocess.run(nbgrader + ["generate_assignment", assignment, "--force"], cwd=root,
                       check=True, capture_output=True, env=env)
        subprocess.run(nbgrader + ["autograde", assignment], cwd=root, capture_output=True, env=env)
    with open_gradebook(open_course(root)) as gradebook:
        for assignment in ASSIGNMENTS:
            plain = {s.student.id: s.score for s in gradebook.assignment_submissions(assignment)}
            ours = {student: row.score for student, row in rows[assignment].items() if row.status == "graded"}
            assert {s: plain[s] for s in ours} == ours


def hidden_lines(assignment):
    """The non-trivial lines inside the source's hidden-test regions."""
    nb = json.loads((ROOT / "source" / assignment / notebook_name(assignment)).read_text())
    lines = []
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        for region in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", text, re.S):
            lines += [line.strip() for line in region.splitlines() if len(line.strip()) > 12]
    return lines


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_shows_verdicts_and_points_but_no_hidden_test(graded, assignment):
    course, _ = graded
    students = ["fails_error_sign" if assignment == "02_gradient_step" else "untouched_release",
                "source_solution"]
    pages = generate_feedback(course, assignment, students=students)
    assert len(pages) == 2
    secret = hidden_lines(assignment)
    assert secret
    for page in pages:
        html = page.read_text()
        assert "most recent call last" not in html and "Cell In[" not in html
        assert re.search(r"Score: [\d.]+ / [\d.]+", html), "each test cell shows its points"
        for line in secret:
            assert line not in html, f"{page.name} shows a hidden line: {line}"
        if "source_solution" not in str(page):  # a correct notebook prints correct values itself
            for value in ("-0.1899744811276125", "-0.04063738360460799", "-0.020318691802303994"):
                assert value not in html


def test_feedback_names_the_failed_hidden_check(graded):
    course, _ = graded
    (page,) = generate_feedback(course, "02_gradient_step", students=["fails_error_sign"])
    text = " ".join(page.read_text().replace("&#96;", "`").split())  # messages are wrapped
    assert "`error`: The sign is flipped: error is the target minus the output" in text
    assert "Score: 0.0 / 1.0" in text and "reference.step_given" not in text


@pytest.mark.parametrize("fixture, message", [
    ("submissions/02_gradient_step/fails_missing_sigmoid_prime", "f'(h) is missing"),
    ("submissions/02_gradient_step/passes_classic_formulation",
     "Success! Your notebook passes all the tests."),
    ("mistakes/02_gradient_step/error_sign", "The sign is flipped"),
    ("mistakes/02_gradient_step/no_sigmoid", "nn_output is h itself"),
    ("mistakes/02_gradient_step/h_slope", "The slope uses h itself"),
    ("mistakes/02_gradient_step/learnrate_twice", "The learning rate is applied twice"),
    ("mistakes/02_gradient_step/summed", "del_w is one number"),
])
def test_nbgrader_validate_shows_the_visible_messages(tmp_path, fixture, message):
    """What a student sees from `nbgrader validate` (and the Validate button) before submitting."""
    notebook = tmp_path / "gradient_step.ipynb"
    shutil.copy(FIXTURES / f"{fixture}.ipynb", notebook)
    result = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(notebook)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert message in " ".join(result.stdout.split())
