"""Feedback step: HTML per student that shows verdicts and points, never hidden tests.

nbgrader's default feedback prints every test cell as autograded, i.e. with its hidden
region and the full traceback of a failed check, which hands the hidden checks to the
class. `HideHiddenTests` trims both before the HTML is written.
"""
import textwrap

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat.v4 import new_output
from nbgrader.converters import GenerateFeedback
from nbgrader.preprocessors import ClearHiddenTests, GetGrades
from traitlets import List

from .course import NbgraderError, run_converter


WRAP_WIDTH = 88


def is_test_cell(cell):
    """True for an autograder test cell (graded, but not an answer cell)."""
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def short_error(output):
    """A plain-text stderr output with only `Type: message` of an error output.

    The traceback goes: it quotes the lines of the cell that failed, i.e. hidden checks.
    """
    name, value = output.get("ename", "Error"), output.get("evalue", "")
    # Wrapped, because the page shows outputs preformatted: one long line would scroll.
    text = textwrap.fill(f"{name}: {value}" if value else name, width=WRAP_WIDTH)
    return new_output("stream", name="stderr", text=text + "\n")


class HideHiddenTests(ClearHiddenTests):
    """Show test cells as the student saw them, and every error as one `Type: message` line.

    Reuses nbgrader's own hidden-region remover, so feedback hides exactly what
    `generate_assignment` hid. Errors are shortened in every cell, not only in test cells:
    a traceback quotes each frame's source, and a frame may be a helper defined in a hidden
    region. Scores and points (set by GetGrades) are left alone.
    """

    # The HTML exporter configures this for every preprocessor; declaring it configurable
    # (as GetGrades does) only keeps traitlets from warning about it on each run.
    display_data_priority = List(help="Set by the HTML exporter; unused here.").tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        """Trim hidden regions from test cells and tracebacks from all code cells."""
        if is_test_cell(cell):
            self._remove_hidden_test_region(cell)
        if cell.cell_type == "code":
            cell.outputs = [short_error(out) if out.output_type == "error" else out
                            for out in cell.outputs]
        return cell, resources


# Order matters: GetGrades reads scores by grade_id before anything else touches the
# cells; the hidden parts go next; the CSS header is last, as in nbgrader's own list.
FEEDBACK_PREPROCESSORS = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]


def autograded_students(course, assignment):
    """Students with an autograded copy of `assignment`, sorted."""
    if not course.autograded_dir.is_dir():
        return []
    return sorted(p.parent.name for p in course.autograded_dir.glob(f"*/{assignment}")
                  if p.is_dir())


def generate_feedback(course, assignment, students=None):
    """Write HTML feedback for `students` (default: all autograded ones); return the paths.

    Each student is processed on their own so that one broken notebook does not stop the
    rest; failures are raised together at the end as one `NbgraderError`.
    """
    students = autograded_students(course, assignment) if students is None else students
    failures = []
    for student in students:
        try:
            run_converter(course, GenerateFeedback, assignment=assignment, student=student)
        except NbgraderError as error:
            failures.append(str(error))
    if failures:
        raise NbgraderError("feedback failed:\n" + "\n".join(failures))
    return feedback_files(course, assignment, students=students)


def feedback_files(course, assignment, *, students):
    """The HTML files feedback wrote for `students`, sorted."""
    return sorted(path for student in students
                  for path in (course.feedback_dir / student / assignment).glob("*.html"))
