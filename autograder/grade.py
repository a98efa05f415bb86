"""Grade step: intake -> gradebook -> nbgrader autograde, one student at a time.

Scores are read back from nbgrader's gradebook, so `nbgrader export`, the formgrader and
a plain `nbgrader autograde` all agree with what this module reports.
"""
from dataclasses import dataclass

from nbgrader.api import MissingEntry
from nbgrader.converters import Autograde

from .course import NbgraderError, open_gradebook, run_converter
from .intake import UNKNOWN_STUDENT, intake
from .release import ensure_gradebook


@dataclass(frozen=True)
class Result:
    """One row of the grading summary. `score` is None when nothing could be graded."""

    student: str
    score: float | None
    max_score: float | None
    status: str  # "graded" or "error"
    reason: str = ""


def grade(course, assignment, submissions=None, force=False):
    """Autograde every student's submission of `assignment`; return one `Result` each.

    `submissions` is what arrived (see `intake.intake`; default: `submitted/`). With
    `force`, submissions already autograded and unchanged since are graded again.
    One failing student never stops the batch: the failure becomes that student's row.
    """
    # The gradebook must know the assignment's cells before autograde, and on a fresh
    # clone it knows nothing; intake comes first so a bad input fails before any work.
    records = intake(course, course.check(assignment), submissions)
    ensure_gradebook(course, assignment)
    return [grade_one(course, assignment, record, force=force) for record in records]


def graded_students(rows):
    """The students whose row says `graded` (those who get feedback)."""
    return [row.student for row in rows if row.status == "graded"]


def grade_one(course, assignment, record, *, force=False):
    """Autograde one `Intake` record and return its `Result`."""
    if record.problem:
        if record.student != UNKNOWN_STUDENT:
            enrol(course, record.student)
        return Result(record.student, None, max_score(course, assignment), "error", record.problem)
    try:
        run_converter(course, Autograde, assignment=assignment, student=record.student,
                      force=force or is_stale(course, assignment, record.student),
                      create_student=True)
    except NbgraderError as error:
        return Result(record.student, None, max_score(course, assignment), "error", str(error))
    return scored(course, assignment, record.student)


def is_stale(course, assignment, student):
    """True if a submitted file is newer than its autograded copy.

    nbgrader only notices a resubmission through `timestamp.txt`, which an LMS download
    lacks; without this, a corrected notebook would silently keep its old score.
    """
    submitted = course.submitted_dir / student / assignment
    autograded = course.autograded_dir / student / assignment
    for path in submitted.glob("*.ipynb"):
        copy = autograded / path.name
        if not copy.exists() or path.stat().st_mtime > copy.stat().st_mtime:
            return True
    return False


def enrol(course, student):
    """Add `student` to the gradebook, so exports list them (with zero) even if ungraded."""
    with open_gradebook(course) as gradebook:
        gradebook.update_or_create_student(student)


def max_score(course, assignment):
    """The assignment's maximum score according to the gradebook."""
    with open_gradebook(course) as gradebook:
        return gradebook.find_assignment(assignment).max_score


def scored(course, assignment, student):
    """The `Result` for a student autograded by nbgrader, read from the gradebook.

    The score is nbgrader export's `score` (late penalty applied); `reason` names the
    checks that lost points.
    """
    with open_gradebook(course) as gradebook:
        try:
            submission = gradebook.find_submission(assignment, student)
        except MissingEntry:
            return Result(student, None, max_score(course, assignment), "error",
                          "autograde left no submission in the gradebook")
        penalty = submission.late_submission_penalty or 0.0
        score = max(0.0, submission.score - penalty)
        return Result(student, score, submission.max_score, "graded", lost_points(submission))


def lost_points(submission):
    """`test_a 0/2, test_b 1/3` for the checks of a gradebook submission that lost points."""
    lost = [f"{grade.name} {grade.score:g}/{grade.max_score:g}"
            for notebook in submission.notebooks for grade in notebook.grades
            if grade.score is not None and grade.score < grade.max_score]
    manual = [grade.name for notebook in submission.notebooks for grade in notebook.grades
              if grade.needs_manual_grade]
    parts = [", ".join(lost)] if lost else []
    parts += [f"needs manual grading: {', '.join(manual)}"] if manual else []
    return "; ".join(parts)
