"""Demo: the whole instructor cycle on the sample class in `demo/class/`.

It runs in a scratch copy of the course (`build/demo-course/`), so an instructor's real
`submitted/`, `autograded/` and gradebook are never touched, and every run starts clean.
"""
import shutil
from dataclasses import dataclass
from pathlib import Path

from .course import copy_course
from .feedback import generate_feedback
from .grade import grade, graded_students, results_dir
from .release import release
from .report import export_grades_csv, summary_table, write_report

SAMPLE_CLASS = Path("demo") / "class"
DEMO_COURSE = Path("build") / "demo-course"
# Written into the scratch copy; only a folder carrying it may be wiped by a re-run.
DEMO_MARK = ".autograder-demo"


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced: rows per assignment, the CSV and the feedback files."""

    course_root: Path
    rows: dict
    grades_csv: Path
    feedback: list


def run_demo(course, *, sample=None, workdir=None, echo=print):
    """Release, grade, give feedback and export for the sample class; report through `echo`.

    `sample` is a class in nbgrader's `<student>/<assignment>/` layout (default:
    `demo/class/`), `workdir` the scratch course (default: `build/demo-course/`).
    """
    demo = prepare_demo_course(course, sample=sample or course.root / SAMPLE_CLASS,
                               workdir=workdir or course.root / DEMO_COURSE)
    echo(f"demo course: {demo.root}")
    released = release(demo)
    echo(f"released {len(released.notebooks)} notebooks, bundle {released.bundle_zip}")
    rows, feedback = {}, []
    for assignment in demo.assignments():
        rows[assignment] = grade(demo, assignment)
        report = write_report(rows[assignment], results_dir(demo, assignment) / "report.html",
                              title=assignment)
        feedback += generate_feedback(demo, assignment, graded_students(rows[assignment]))
        echo(f"\n== {assignment}\n{summary_table(rows[assignment])}\nreport: {report}")
    csv = export_grades_csv(demo)
    echo("\nfeedback:\n" + "\n".join(f"  {path}" for path in feedback))
    echo(f"grades: {csv}")
    return DemoResult(demo.root, rows, csv, feedback)


def prepare_demo_course(course, *, sample, workdir):
    """Make a fresh scratch course at `workdir`: the course's files plus the sample class
    as its `submitted/`. Refuses to wipe a folder that is not a previous demo course.
    """
    sample, workdir = Path(sample), Path(workdir)
    if not sample.is_dir():
        raise FileNotFoundError(f"no sample class at {sample}")
    if workdir.exists():
        if not (workdir / DEMO_MARK).exists():
            raise FileExistsError(f"{workdir} exists and is not a demo course; not wiping it")
        shutil.rmtree(workdir)
    demo = copy_course(course, workdir)
    (workdir / DEMO_MARK).write_text("scratch copy made by `python -m autograder demo`\n")
    shutil.copytree(sample, workdir / "submitted",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return demo
