"""Write results where nbgrader looks: the gradebook and `autograded/`.

So the formgrader, `nbgrader export` and `nbgrader generate_feedback` keep working on
what the hardened grader decided. A flagged submission is marked as needing manual
grading, which puts it in front of the instructor in the formgrader.
"""
import contextlib
import fcntl
import hashlib
import os
import shutil
import warnings

import nbformat
from nbgrader.api import MissingEntry
from nbgrader.utils import parse_utc
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SAWarning, SQLAlchemyError

from .course import database_url, is_shared, open_gradebook


class GradingBusy(RuntimeError):
    """Another run is grading this assignment: a student must never be graded twice at once."""


@contextlib.contextmanager
def grading_claim(course, assignment, folder):
    """Hold the right to grade `assignment` for the block, or raise `GradingBusy`.

    A lock file in `folder` (the assignment's results) guards this course directory; on a
    shared PostgreSQL gradebook an advisory lock on the course and assignment also guards
    graders on other machines. Both are released if the process dies.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".grading.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GradingBusy(f"{assignment} is already being graded in this course (another "
                              "`grade` command is running); wait for it to finish") from None
        url = database_url(course)
        if not is_shared(url):
            yield
            return
        key = int.from_bytes(hashlib.sha256(f"{course.course_id()}/{assignment}".encode())
                             .digest()[:8], "big", signed=True)
        # Autocommit: a session held "idle in transaction" for a whole run may be ended by
        # the server's idle_in_transaction_session_timeout, silently dropping the lock.
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                held = connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                          {"key": key}).scalar()
                if not held:
                    raise GradingBusy(f"{assignment} is already being graded by another grader on "
                                      "the shared gradebook; wait for it to finish")
                try:
                    yield
                finally:
                    # Closing the session releases the lock too; a connection lost by now
                    # must not turn a finished run into a failure.
                    with contextlib.suppress(SQLAlchemyError):
                        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        finally:
            engine.dispose()
    finally:
        os.close(fd)


class Recorder:
    """One open gradebook for a whole batch (opening it per submission costs more than
    grading). Use as a context manager."""

    def __init__(self, course, assignment):
        self.course, self.assignment = course, assignment

    def __enter__(self):
        self._context = open_gradebook(self.course)
        self.gradebook = self._context.__enter__()
        return self

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)

    def enrol(self, student):
        """Add `student`, so exports list them (with zero) even if nothing was graded."""
        self.gradebook.update_or_create_student(student)

    def record(self, student, scores, *, flagged, timestamp=None):
        """Store `scores` (test grade_id -> points earned) as the auto scores of a submission."""
        gradebook = self.gradebook
        self.enrol(student)
        try:
            submission = gradebook.find_submission(self.assignment, student)
            if timestamp:
                submission.timestamp = timestamp
        except MissingEntry:
            with warnings.catch_warnings():  # nbgrader's own autoflush noise, as in course.py
                warnings.simplefilter("ignore", SAWarning)
                submission = gradebook.add_submission(
                    self.assignment, student, **({"timestamp": timestamp} if timestamp else {}))
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = float(scores.get(grade.name, 0.0))
                grade.manual_score = None
                grade.needs_manual_grade = flagged
        gradebook.db.commit()


def write_autograded(course, assignment, student, notebook_name, notebook, submitted_folder):
    """Write the autograded notebook (and the submission's timestamp) where nbgrader reads it."""
    folder = course.autograded_dir / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    # Written whole or not at all: a half-written notebook would stop the feedback step.
    partial = folder / f".{notebook_name}.ipynb.partial"
    nbformat.write(notebook, partial)
    partial.replace(folder / f"{notebook_name}.ipynb")
    if submitted_folder is not None and (submitted_folder / "timestamp.txt").is_file():
        shutil.copyfile(submitted_folder / "timestamp.txt", folder / "timestamp.txt")
    return folder / f"{notebook_name}.ipynb"


def read_timestamp(submitted_folder):
    """The submission time nbgrader's `timestamp.txt` holds, or None (also when it is not a
    time: the student's side writes that file)."""
    stamp = submitted_folder / "timestamp.txt"
    if not stamp.is_file():
        return None
    text = stamp.read_text(encoding="utf-8", errors="replace").strip()[:100]
    try:
        parse_utc(text)
    except (ValueError, OverflowError, TypeError):
        return None
    return text
