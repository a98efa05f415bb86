"""Write results where nbgrader looks: the gradebook and `autograded/`.

So the formgrader, `nbgrader export` and `nbgrader generate_feedback` keep working on
what the hardened grader decided. A flagged submission is marked as needing manual
grading, which puts it in front of the instructor in the formgrader.
"""
import shutil
import warnings

import nbformat
from nbgrader.api import MissingEntry
from nbgrader.utils import parse_utc
from sqlalchemy.exc import SAWarning

from .course import open_gradebook


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
    nbformat.write(notebook, folder / f"{notebook_name}.ipynb")
    stamp = submitted_folder / "timestamp.txt"
    if stamp.is_file():
        shutil.copyfile(stamp, folder / "timestamp.txt")
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
