"""Report step: nbgrader's CSV, the plain-text summary, the results CSV and the HTML report."""
import csv
import subprocess
import sys

from conftest import ASSIGNMENT

from autograder.course import open_course, tools_env
from autograder.core import Result as Row
from autograder.grade import append_result, read_results, results_dir
from autograder.report import (RESULT_COLUMNS, export_grades_csv, pass_rates, summary_table,
                               write_report, write_results_csv)


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
    table = summary_table([Row("alice", "a", "graded", 3.0, 3.0),
                           Row("bob_long_name", "a", "error", None, 3.0, "no notebook")])
    assert table.splitlines() == [
        "student        score  status  reason",
        "-------------  -----  ------  ------",
        "alice          3/3    graded",
        "bob_long_name  -/3    error   no notebook",
    ]


HOSTILE = "<script>alert(1)</script>"
BATCH = [
    Row("alice", "02_gradient_step", "graded", 3.0, 3.0,
        checks={"test_del_w_shape": (1, 1), "test_del_w_values": (2, 2)}, sha256="ab12",
        seconds=1.5),
    Row("bob", "02_gradient_step", "graded", 1.0, 3.0, "test_del_w_values 0/2",
        checks={"test_del_w_shape": (1, 1), "test_del_w_values": (0, 2)}, seconds=2.0),
    Row("carol", "02_gradient_step", "flagged", 3.0, 3.0, "patched numpy.isclose",
        flags=("tamper attempt: patched numpy.isclose", "deleted a test cell"),
        checks={"test_del_w_shape": (1, 1), "test_del_w_values": (2, 2)}),
    Row(HOSTILE, "02_gradient_step", "error", None, 3.0, 'kernel died: "<b>&"'),
]


def test_results_csv_has_one_line_per_result(tmp_path):
    """Header as documented, one line per row, flags joined with '; ', no score as ''."""
    path = write_results_csv(BATCH, tmp_path / "out" / "results.csv")
    with path.open(newline="") as file:
        lines = list(csv.reader(file))
    assert tuple(lines[0]) == RESULT_COLUMNS == (
        "student", "assignment", "status", "score", "max_score", "reason", "flags", "sha256",
        "seconds", "worker")
    table = [dict(zip(lines[0], line)) for line in lines[1:]]
    assert [line["student"] for line in table] == [row.student for row in BATCH]
    assert table[2]["flags"] == "tamper attempt: patched numpy.isclose; deleted a test cell"
    assert (table[0]["score"], table[0]["sha256"], table[0]["seconds"]) == ("3", "ab12", "1.50")
    assert table[3]["score"] == "" and table[3]["reason"] == 'kernel died: "<b>&"'


def test_report_is_one_html_file_with_two_pictures(tmp_path):
    """Headline, two inlined PNGs, the flagged students with their reasons, all escaped."""
    path = write_report(BATCH, tmp_path / "report.html", title="02 <gradient> step")
    page = path.read_text()
    assert page.count('<img src="data:image/png;base64,') == 2
    assert "02 &lt;gradient&gt; step" in page
    assert "graded 2, flagged 1, errors 1; mean score 2.33, median 3 (out of 3)" in page
    flagged_table = page.split("<h2>Flagged and errors (2)</h2>")[1].split("<h2>")[0]
    assert "carol" in flagged_table and "patched numpy.isclose" in flagged_table
    assert "tamper attempt: patched numpy.isclose; deleted a test cell" in flagged_table
    assert "alice" not in flagged_table
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>" not in page and "kernel died: &quot;&lt;b&gt;&amp;&quot;" in page


def test_pass_rate_counts_full_points_of_scored_rows():
    """A test passes with full points; error rows do not count; notebook order is kept."""
    broken = Row("dan", "a", "error", None, 3.0, checks={"test_del_w_shape": (0, 1)})
    assert pass_rates(BATCH + [broken]) == {"test_del_w_shape": 1.0, "test_del_w_values": 2 / 3}
    assert pass_rates([]) == {}


def test_report_without_rows_or_scores(tmp_path):
    """An empty batch and a batch with no score at all still make a complete report."""
    empty = write_report([], tmp_path / "empty.html", title="empty").read_text()
    assert empty.count("data:image/png;base64,") == 2
    assert "graded 0, flagged 0, errors 0; no scores" in empty
    unscored = [Row("dan", "a", "error", None, None, "no notebook"),
                Row("eve", "a", "flagged", None, 3.0, "deleted every test cell")]
    page = write_report(unscored, tmp_path / "unscored.html", title="t").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "graded 0, flagged 1, errors 1; no scores" in page
    assert "deleted every test cell" in page


def test_results_csv_never_hands_a_spreadsheet_a_formula(tmp_path):
    """A student id chosen to look like a formula is written as text."""
    path = write_results_csv([Row("=HYPERLINK(\"http://x\")", "a", "graded", 1.0, 1.0)],
                             tmp_path / "r.csv")
    assert "'=HYPERLINK" in path.read_text()


# A file name from an LMS, quoted in a reason: clears the line, returns the carriage and
# writes a fake passing row over the flagged one; a right-to-left override; a line separator.
FORGING = "x.ipynb\x1b[2K\r9/9 graded\u202e\u2028"


def test_no_field_can_forge_the_display(tmp_path):
    """Reasons, flags and student ids reach the table, the CSV, the JSONL log and the report
    with every control, format and separator character escaped, as visible text."""
    (tmp_path / "nbgrader_config.py").write_text("")
    course = open_course(tmp_path)
    row = Row("mallory\x1b[31m", "02_gradient_step", "flagged", 0.0, 9.0,
              f"unreadable: {FORGING}", (f"unreadable: {FORGING}",))
    append_result(course, row)
    shown = {"table": summary_table([row]),
             "report": write_report([row], tmp_path / "r.html", title="t").read_text("utf-8"),
             "csv": write_results_csv([row], tmp_path / "r.csv").read_text("utf-8"),
             "jsonl": (results_dir(course, row.assignment) / "results.jsonl").read_text("utf-8"),
             "resumed": read_results(course, row.assignment)["mallory\x1b[31m"].reason}
    for where, text in shown.items():
        assert not any(c in text for c in "\x1b\r\u202e\u2028"), where
        assert "\\x1b[2K\\r9/9 graded\\u202e\\u2028" in text.replace("\\\\", "\\"), where
