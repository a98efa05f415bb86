"""Report step: the grades as nbgrader's CSV, and a plain-text summary for the terminal."""
from pathlib import Path

from nbgrader.plugins import CsvExportPlugin

from .course import NBGRADER_LOG, open_gradebook

SUMMARY_COLUMNS = ("student", "score", "status", "reason")


def export_grades_csv(course, path=None):
    """Write the gradebook as CSV (same columns as `nbgrader export`); return the path.

    Uses nbgrader's own CsvExportPlugin, so the file matches what `nbgrader export` writes.
    """
    path = Path(path or course.root / "grades.csv").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_gradebook(course) as gradebook:
        CsvExportPlugin(to=str(path), log=NBGRADER_LOG).export(gradebook)
    return path


def summary_table(rows):
    """A plain-text table of grading results: student, score/max, status, reason."""
    lines = [SUMMARY_COLUMNS] + [(row.student, score_text(row), row.status, row.reason)
                                 for row in rows]
    # Pad every column but the last (reasons vary too much in length to align on).
    widths = [max(len(line[i]) for line in lines) for i in range(len(SUMMARY_COLUMNS) - 1)]
    widths.append(len(SUMMARY_COLUMNS[-1]))

    def layout(cells):
        return "  ".join(text.ljust(width) for text, width in zip(cells, widths)).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([layout(lines[0]), rule] + [layout(line) for line in lines[1:]])


def score_text(row):
    """`2/3` for a graded row, `-/3` when nothing could be graded."""
    score = "-" if row.score is None else f"{row.score:g}"
    top = "?" if row.max_score is None else f"{row.max_score:g}"
    return f"{score}/{top}"
