"""Report step: the grades as nbgrader's CSV, a plain-text summary for the terminal, and
the instructor's results CSV and one-file HTML report of a batch."""
import base64
import csv
import html
import io
import statistics
from pathlib import Path

from matplotlib.figure import Figure  # not pyplot: no global state, no GUI backend needed
from matplotlib.ticker import MaxNLocator
from nbgrader.plugins import CsvExportPlugin

from .course import NBGRADER_LOG, open_gradebook
from .text import printable

SUMMARY_COLUMNS = ("student", "score", "status", "reason")
RESULT_COLUMNS = ("student", "assignment", "status", "score", "max_score", "reason", "flags",
                  "sha256", "seconds", "worker")
SCORED_STATUSES = ("graded", "flagged")  # a flagged notebook still ran and has a score


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
    lines = [SUMMARY_COLUMNS] + [(printable(row.student), score_text(row), row.status,
                                  printable(row.reason)) for row in rows]
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


def result_cells(row):
    """The RESULT_COLUMNS of one result as text: empty for a missing score, flags `; `-joined."""
    def number(value):
        return "" if value is None else f"{value:g}"

    return tuple(printable(cell) for cell in (
        row.student, row.assignment, row.status, number(row.score), number(row.max_score),
        row.reason, "; ".join(row.flags), row.sha256, f"{row.seconds:.2f}", row.worker))


def write_results_csv(rows, path):
    """Write one CSV line per result (columns RESULT_COLUMNS); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(RESULT_COLUMNS)
        writer.writerows([inert(cell) for cell in result_cells(row)] for row in rows)
    return path


def inert(cell):
    """A cell a spreadsheet shows as text: student-chosen text starting with = + - @ would
    otherwise run as a formula when the instructor opens the CSV."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@") else cell


def write_report(rows, path, *, title):
    """Write a self-contained HTML report of a batch (pictures inlined as PNG); return the path.

    Headline counts, the score distribution, the pass rate of each test, the rows that need
    a human (flagged and errors), each worker's throughput in this run (when `rows` carries
    it, as `grade` returns them) and the full results. Student text is always escaped.
    """
    rates = getattr(rows, "throughput", {})
    rows = list(rows)
    needs_a_look = [row for row in rows if row.status != "graded"]
    parts = [
        f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
        f"</title>\n<style>{REPORT_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class=\"headline\">{html.escape(headline(rows))}</p>",
        png_img(score_histogram(rows), "Score distribution"),
        png_img(pass_rate_chart(rows), "Pass rate of each test"),
        f"<h2>Flagged and errors ({len(needs_a_look)})</h2>",
        html_table(("student", "status", "reason", "flags"),
                   [(row.student, row.status, row.reason, "; ".join(row.flags))
                    for row in needs_a_look]),
        f"<h2>Workers ({len(rates)})</h2>",
        html_table(("worker", "submissions this run", "per second"),
                   [(worker, str(count), f"{rate:.2f}") for worker, (count, rate) in rates.items()]),
        f"<h2>All results ({len(rows)})</h2>",
        html_table(RESULT_COLUMNS, [result_cells(row) for row in rows]),
        "</body></html>\n",
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


REPORT_CSS = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
              "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
              "td{white-space:pre-wrap}img{display:block;margin:1em 0}")


def scores_of(rows):
    """Scores of the rows that ran (graded or flagged) and have one."""
    return [row.score for row in rows if row.status in SCORED_STATUSES and row.score is not None]


def headline(rows):
    """`graded 3, flagged 1, errors 1; mean score 2.25, median 2.5 (out of 3)`."""
    counts = ", ".join(f"{label} {sum(row.status == status for row in rows)}" for status, label
                       in (("graded", "graded"), ("flagged", "flagged"), ("error", "errors")))
    scores = scores_of(rows)
    if not scores:
        return f"{counts}; no scores"
    tops = {row.max_score for row in rows if row.max_score is not None}
    out_of = f" (out of {tops.pop():g})" if len(tops) == 1 else ""
    mean, median = (round(statistics.mean(scores), 2), round(statistics.median(scores), 2))
    return f"{counts}; mean score {mean:g}, median {median:g}{out_of}"


def nothing_to_show(axes, text):
    """Say so on an empty chart, rather than leave a blank frame."""
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)


def score_histogram(rows):
    """A matplotlib Figure: histogram of the scores, from 0 to the maximum score."""
    scores = scores_of(rows)
    top = max([row.max_score or 0 for row in rows] + scores + [1])
    figure = Figure(figsize=(6, 3), layout="constrained")
    axes = figure.add_subplot()
    axes.hist(scores, bins=20, range=(0, top), color="tab:blue")
    axes.set(title=f"Score distribution ({len(scores)} scored)", xlabel="score",
             ylabel="submissions")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of submissions
    if not scores:
        nothing_to_show(axes, "no scores")
    return figure


def pass_rates(rows):
    """For each test (grade_id, in notebook order), the share of scored rows with full points."""
    passed, seen = {}, {}
    for row in rows:
        if row.status not in SCORED_STATUSES:
            continue
        for grade_id, (earned, possible) in row.checks.items():
            seen[grade_id] = seen.get(grade_id, 0) + 1
            passed[grade_id] = passed.get(grade_id, 0) + (earned >= possible)
    return {grade_id: passed[grade_id] / seen[grade_id] for grade_id in seen}


def pass_rate_chart(rows):
    """A matplotlib Figure: a horizontal bar of the pass rate of each test."""
    rates = pass_rates(rows)
    names = list(rates)
    figure = Figure(figsize=(6, 1 + 0.3 * max(len(names), 1)), layout="constrained")
    axes = figure.add_subplot()
    axes.barh(range(len(names)), [100 * rate for rate in rates.values()], color="tab:green")
    # parse_math=False: a `$` in a grade_id is text, not a formula that fails to render.
    axes.set_yticks(range(len(names)), names, parse_math=False)
    axes.invert_yaxis()  # first test at the top, as in the notebook
    axes.set(title="Pass rate of each test", xlabel="% of submissions with full points",
             xlim=(0, 100))
    if not names:
        nothing_to_show(axes, "no test results")
    return figure


def png_img(figure, alt):
    """An <img> tag with the figure inlined as a base64 PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def html_table(header, lines):
    """An HTML table with every cell escaped, for HTML and for control characters."""
    def row(cells, tag):
        return "<tr>" + "".join(f"<{tag}>{html.escape(printable(cell))}</{tag}>"
                                for cell in cells) + "</tr>"

    return "\n".join(["<table>", row(header, "th")] + [row(line, "td") for line in lines]
                     + ["</table>"])
