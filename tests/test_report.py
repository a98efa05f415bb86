"""Report step: nbgrader's CSV columns and scores, and the plain-text summary."""
import csv
import subprocess
import sys

from conftest import ASSIGNMENT

from autograder.course import tools_env
from autograder.grade import Result
from autograder.report import export_grades_csv, summary_table

NBGRADER_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name",
                    "first_name", "email", "raw_score", "late_submission_penalty", "score",
                    "max_score"]


def test_csv_matches_nbgrader_export(graded, tmp_path):
    """Our CSV is exactly what `nbgrader export` writes from the same gradebook."""
    course, rows = graded
    ours = export_grades_csv(course, tmp_path / "grades.csv")
    theirs = tmp_path / "nbgrader.csv"
    env = tools_env()
    subprocess.run([sys.executable, "-m", "nbgrader", "export", "--to", str(theirs)],
                   cwd=course.root, env=env, check=True, capture_output=True)
    assert ours.read_text() == theirs.read_text()
    table = list(csv.DictReader(ours.open()))
    assert list(table[0]) == NBGRADER_COLUMNS
    scores = {line["student_id"]: float(line["score"]) for line in table}
    assert scores == {row.student: row.score for row in rows} == {"right": 3.0, "wrong_sign": 1.0}
    assert {line["assignment"] for line in table} == {ASSIGNMENT}


def test_grade_rows_explain_lost_points(graded):
    """A graded row names the checks that lost points."""
    _, rows = graded
    reasons = {row.student: (row.status, row.reason) for row in rows}
    assert reasons == {"right": ("graded", ""),
                       "wrong_sign": ("graded", "test_sigmoid_values 0/2")}


def test_summary_table_lines_up():
    """One header, one rule, one line per row; scores as score/max, '-' when ungraded."""
    table = summary_table([Result("alice", 3.0, 3.0, "graded"),
                           Result("bob_long_name", None, 3.0, "error", "no notebook")])
    assert table.splitlines() == [
        "student        score  status  reason",
        "-------------  -----  ------  ------",
        "alice          3/3    graded",
        "bob_long_name  -/3    error   no notebook",
    ]
