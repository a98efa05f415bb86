"""The grade step as a whole, on the tiny course: resuming, identical files, the gradebook,
and a test cell without a check."""
import io
import json
import time

import pytest
from conftest import ASSIGNMENT, CORRECT, NOTEBOOK, WRONG_SIGN, place, submission

from autograder import verdicts
from autograder.course import NbgraderError, open_gradebook
from autograder.grade import grade, results_dir
from autograder.sandbox import Limits

pytestmark = pytest.mark.usefixtures("sandbox_ready")


def ledger(course):
    path = results_dir(course, ASSIGNMENT) / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_second_run_resumes_and_force_regrades(released):
    place(released, "alice", submission(released, CORRECT))
    place(released, "bob", submission(released, WRONG_SIGN))
    first = grade(released, ASSIGNMENT, progress_stream=io.StringIO())
    assert [(r.student, r.score) for r in first] == [("alice", 3.0), ("bob", 1.0)]
    assert len(ledger(released)) == 2

    progress = io.StringIO()
    again = grade(released, ASSIGNMENT, progress_stream=progress)
    assert again == first and len(ledger(released)) == 2
    assert "skipped 2" in progress.getvalue()

    place(released, "bob", submission(released, CORRECT))  # a corrected resubmission
    fixed = grade(released, ASSIGNMENT, progress_stream=io.StringIO())
    assert [(r.student, r.score) for r in fixed] == [("alice", 3.0), ("bob", 3.0)]
    assert sorted(row["student"] for row in ledger(released)) == ["alice", "bob", "bob"]

    grade(released, ASSIGNMENT, force=True, progress_stream=io.StringIO())
    assert len(ledger(released)) == 5


def test_identical_files_are_flagged_but_keep_their_score(released):
    text = submission(released, CORRECT)
    place(released, "carol", text)
    place(released, "dan", text)
    rows = {r.student: r for r in grade(released, ASSIGNMENT, progress_stream=io.StringIO())}
    assert rows["carol"].status == "flagged" and rows["carol"].score == 3.0
    assert rows["carol"].reason == "identical file to dan's"
    with open_gradebook(released) as gradebook:
        grades = gradebook.find_submission(ASSIGNMENT, "dan").notebooks[0].grades
        assert all(g.needs_manual_grade for g in grades)  # in front of the instructor
        assert sum(g.score for g in grades) == 3.0


def test_a_test_cell_without_a_check_stops_before_grading(released, monkeypatch):
    place(released, "erin", submission(released, CORRECT))
    monkeypatch.setitem(verdicts.CHECKS, ASSIGNMENT,
                        {"test_sigmoid_values": verdicts.CHECKS[ASSIGNMENT]["test_sigmoid_values"]})
    with pytest.raises(verdicts.MissingCheck, match="test_sigmoid_shape"):
        grade(released, ASSIGNMENT, progress_stream=io.StringIO())
    assert not (released.autograded_dir / "erin").exists()


def with_extra_cells(course, body, *extras):
    """A submission with the student's own cells added after the last test cell."""
    nb = json.loads(submission(course, body))
    nb["cells"] += [{"cell_type": "code", "metadata": {}, "source": text, "outputs": [],
                     "execution_count": None} for text in extras]
    return json.dumps(nb)


def test_a_helper_cell_after_the_tests_still_runs(released):
    place(released, "frank", with_extra_cells(
        released, "    return half_turn(x)", "def half_turn(x):\n    return 1 / (1 + np.exp(-x))"))
    (row,) = grade(released, ASSIGNMENT, progress_stream=io.StringIO())
    assert (row.status, row.score) == ("graded", 3.0)
    autograded = (released.autograded_dir / "frank" / ASSIGNMENT / "sigmoid.ipynb").read_text()
    assert "def half_turn" in autograded


def test_honest_habits_raise_no_flag(released):
    place(released, "gina", with_extra_cells(
        released, CORRECT, "%load_ext autoreload\n%autoreload 2",
        "import platform\nprint(platform.platform())", "!echo hello",
        "import os\nprint(os.cpu_count(), os.listdir('.'))",
        "from concurrent.futures import ThreadPoolExecutor\n"
        "with ThreadPoolExecutor() as pool:\n    print(list(pool.map(abs, [-1, 2])))",
        "!python -c 'print(42)'", "import inspect\nprint(inspect.signature(print))",
        "with open('/dev/shm/scratch', 'w') as f:\n    f.write('ok')\n%timeit -n 2 -r 1 sum([1])"))
    (row,) = grade(released, ASSIGNMENT, progress_stream=io.StringIO())
    assert (row.status, row.score, row.flags) == ("graded", 3.0, ())
    assert "started a process" in row.reason  # noted, not held against them


def test_files_that_trip_the_grader_never_stop_the_batch(released):
    place(released, "honest", submission(released, CORRECT))
    place(released, "surrogate", with_extra_cells(released, CORRECT, 'print("\\ud800")\n"\ud800"'))
    place(released, "deep", with_extra_cells(released, CORRECT, "nudge = " + "-" * 200_000 + "1"))
    stamped = place(released, "stamped", submission(released, CORRECT))
    (stamped.parent / "timestamp.txt").write_text("yesterday, honest")
    rows = {r.student: r for r in grade(released, ASSIGNMENT, progress_stream=io.StringIO())}
    assert sorted(rows) == ["deep", "honest", "stamped", "surrogate"]
    assert rows["honest"].score == rows["stamped"].score == rows["surrogate"].score == 3.0
    assert rows["deep"].status in ("graded", "flagged")
    assert len(ledger(released)) == 4


def test_a_failing_nbgrader_step_raises_and_records_nothing(released):
    """nbgrader's converters report failure as a value; ours raise it, so a broken setup
    stops the command before any student gets a row, let alone a zero."""
    place(released, "alice", submission(released, CORRECT))
    (released.source_dir / ASSIGNMENT / f"{NOTEBOOK}.ipynb").write_text("{ not a notebook")
    with pytest.raises(NbgraderError, match=f"GenerateAssignment failed for {ASSIGNMENT}"):
        grade(released, ASSIGNMENT, progress_stream=io.StringIO())
    assert not (results_dir(released, ASSIGNMENT) / "results.jsonl").exists()
    assert not released.autograded_dir.exists()


# ---------------------------------------------------------------- what a file makes us do

def gradebook_scores(course, student):
    """(total auto score, every grade marked for manual grading) of a student's submission."""
    with open_gradebook(course) as gradebook:
        grades = gradebook.find_submission(ASSIGNMENT, student).notebooks[0].grades
        return sum(g.auto_score for g in grades), all(g.needs_manual_grade for g in grades)


def test_a_file_past_a_reading_bound_is_its_own_zero_and_the_batch_goes_on(released):
    """Reading runs in bounded helpers: a file over the intake size, one that keeps the
    static reading busy past its time, and one whose parse needs more memory than allowed
    each get 0 points, flagged with the reason, in the gradebook; the honest neighbour is
    graded as ever."""
    place(released, "honest", submission(released, CORRECT))
    # IPython's transformer slows down on many line magics, far faster than the file grows.
    place(released, "magics", with_extra_cells(released, CORRECT, "%pwd\n" * 40_000))
    place(released, "lines", with_extra_cells(released, CORRECT, "a = 1\n" * 250_000))
    place(released, "huge", with_extra_cells(released, CORRECT, "# " + "y" * (3 * 2**20)))
    limits = Limits(read_seconds=8, read_memory_mb=150, submission_mb=2)
    start = time.monotonic()
    rows = {r.student: r for r in grade(released, ASSIGNMENT, slots=1, limits=limits,
                                        progress_stream=io.StringIO())}
    assert time.monotonic() - start < 60
    assert (rows["honest"].status, rows["honest"].score) == ("graded", 3.0)
    assert rows["magics"].reason == "too large to read: reading it took longer than 8 s"
    assert rows["lines"].reason == "too large to read: reading it needed more than 150 MB of memory"
    assert rows["huge"].reason.startswith("too large: the file is 3.0 MB, over the 2 MB")
    for student in ("magics", "lines", "huge"):
        assert (rows[student].status, rows[student].score) == ("flagged", 0.0)
        assert gradebook_scores(released, student) == (0.0, True)
        autograded = released.autograded_dir / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
        assert "not graded: too large" in autograded.read_text()


def test_a_file_that_crashes_our_reading_is_flagged_with_the_exceptions_line(released):
    """A cell that makes IPython's transformer raise: no 'grader error', no retry, but the
    student's row (0, flagged, the exception's own line), and the traceback in the log."""
    place(released, "crasher", with_extra_cells(released, CORRECT, '=%"""#,='))
    place(released, "honest", submission(released, CORRECT))
    rows = {r.student: r for r in grade(released, ASSIGNMENT, progress_stream=io.StringIO())}
    assert (rows["crasher"].status, rows["crasher"].score) == ("flagged", 0.0)
    assert rows["crasher"].reason == ("the grader could not read it: "
                                      "IndexError: list index out of range")
    assert rows["honest"].score == 3.0
    log = (results_dir(released, ASSIGNMENT) / "grader.log").read_text()
    assert "'crasher'" in log and "Traceback (most recent call last)" in log
    again = {r.student: r for r in grade(released, ASSIGNMENT, progress_stream=io.StringIO())}
    assert again["crasher"] == rows["crasher"]  # kept, not retried: it is the file's doing


def test_a_worker_that_cannot_start_says_why(released, monkeypatch):
    """The reason keeps the exception's own line; the traceback goes to grader.log."""
    from autograder import pool
    place(released, "alice", submission(released, CORRECT))
    command = pool.box_command  # the worker's script and slot give way to a failing import
    monkeypatch.setattr(pool, "box_command", lambda slot:
                        command(slot)[:-2] + ["-c", "import no_such_module"])
    (row,) = grade(released, ASSIGNMENT, slots=1, progress_stream=io.StringIO())
    assert row.status == "error"
    assert row.reason.endswith("ModuleNotFoundError: No module named 'no_such_module'")
    log = (results_dir(released, ASSIGNMENT) / "grader.log").read_text()
    assert "Traceback (most recent call last)" in log and 'File "<string>", line 1' in log
