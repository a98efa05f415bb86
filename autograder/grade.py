"""Grade step: coordinates a whole class, safely, fairly and fast.

intake -> read and match each notebook (`submission`) -> run it in a sandboxed, warm,
forked worker (`pool`, `sandbox`, `worker`) under an opaque token -> judge the plain
numbers it hands back (`verdicts`) -> record (`gradebook`) -> one `Result` row each.

The middle (match, run, judge: `grade_submission`) needs no course directory: it takes a
`Submission` (the file's bytes) and gives back an `Outcome` (the row, the autograded
notebook, the points). Here it runs on a local pool; `cluster` runs it on Dask workers.
Only this driver writes: the gradebook, `autograded/` and the results log.

Every submission gets exactly one row: graded, flagged for review (with the reason), or
an infrastructure error (the box failed twice; the next run retries it). Rows are kept in
`grading/<assignment>/results.jsonl`, so a second run resumes: an unchanged submission
that was graded or flagged is not graded again unless `force` is given.
"""
import hashlib
import json
import os
import secrets
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, replace

from . import verdicts
from .core import Assignment, Outcome, Result, Submission, error_row, flagged_outcome, \
    grade_submission
from .gradebook import Recorder, grading_claim, read_timestamp, write_autograded
from .intake import UNKNOWN_STUDENT, intake
from .pool import Pool
from .progress import Progress
from .reading import Reader
from .release import ensure_gradebook
from .sandbox import Limits
from .submission import grade_id, is_answer, is_test, nbgrader_meta, read_notebook
from .text import exception_line

RESULTS_DIR = "grading"


def graded_students(rows):
    """The students with a score in the gradebook (graded or flagged): they get feedback."""
    return [row.student for row in rows if row.score is not None]


def results_dir(course, assignment):
    return course.root / RESULTS_DIR / assignment


def load_assignment(course, name):
    """Read the instructor's notebooks of `name` (one notebook per assignment)."""
    notebooks = course.notebooks(name)
    if len(notebooks) != 1:
        raise ValueError(f"{name}: the hardened grader handles one notebook per assignment")
    given = (course.release_dir / name / f"{notebooks[0]}.ipynb").read_bytes()
    release_nb, _ = read_notebook(given)
    source_nb, _ = read_notebook((course.source_dir / name / f"{notebooks[0]}.ipynb").read_bytes())
    points = {grade_id(c): float(nbgrader_meta(c).get("points", 0)) for c in source_nb["cells"]
              if is_test(nbgrader_meta(c))}
    others = {}
    for other in course.assignments():
        if other != name:
            for path in (course.release_dir / other).glob("*.ipynb"):
                nb, _ = read_notebook(path.read_bytes())
                others[other] = [grade_id(c) for c in nb["cells"] if is_answer(nbgrader_meta(c))]
    return Assignment(name, notebooks[0], release_nb, source_nb, points, others,
                      hashlib.sha256(given).hexdigest())


def grade(course, assignment, submissions=None, *, force=False, slots=None, limits=Limits(),
          seed=None, progress_stream=sys.stderr, scheduler=None):
    """Grade every student's submission of `assignment`; return one `Result` each.

    `submissions` is what arrived (see `intake.intake`; default: `submitted/`); `slots`
    the number of sandboxed workers (default: one per core); `seed` fixes the hidden
    input variants (default: fresh and secret for every run); `scheduler` the address of
    a Dask scheduler to grade on (default: this machine).
    """
    records = intake(course, course.check(assignment), submissions,
                     max_bytes=limits.submission_mb * 2**20)
    with grading_claim(course, assignment, results_dir(course, assignment)):
        ensure_gradebook(course, assignment)  # creates the database first, before any fan-out
        spec = load_assignment(course, assignment)
        seed = secrets.randbits(64) if seed is None else seed
        checks = verdicts.plan(assignment, seed)
        check_every_test_is_judged(spec, checks)
        previous = {} if force else read_results(course, assignment)
        rows, todo, folders, resumed, ready = {}, [], {}, set(), []
        with Recorder(course, assignment) as recorder:
            for record in records:
                if record.student != UNKNOWN_STUDENT:
                    recorder.enrol(record.student)
                folders[record.student] = record.path and record.path.parent
                found = one_student(course, spec, record.student, read_submission, record, spec,
                                    previous.get(record.student), limits)
                if isinstance(found, Submission):
                    todo.append(found)
                elif isinstance(found, Outcome):
                    ready.append(found)
                else:  # resumed, or a failure of ours while taking it in (already logged)
                    rows[record.student] = found
                    if found is previous.get(record.student):
                        resumed.add(record.student)
            todo = mark_identical(todo, spec)
            with Progress(len(records), stream=progress_stream, label=assignment) as bar:
                for row in rows.values():
                    bar.advance(status="skipped" if row.student in resumed else row.status)
                if scheduler:
                    from .cluster import grade_on_cluster  # Dask is imported only when used
                    outcomes = grade_on_cluster(scheduler, spec, seed, todo, limits=limits)
                else:
                    outcomes = grade_locally(spec, checks, todo, slots=slots, limits=limits)
                for outcome in _chain(ready, outcomes):
                    student = outcome.row.student
                    row = one_student(course, spec, student, keep, course, spec, outcome,
                                      folders[student], recorder)
                    rows[student] = row
                    bar.advance(status=row.status, worker=row.worker)
    graded = Graded(rows[student] for student in sorted(rows))
    graded.throughput = bar.throughput()
    return graded


def _chain(first, then):
    yield from first
    yield from then


class Graded(list):
    """The rows of a batch, one per student, sorted; `throughput` holds this run's
    {worker: (submissions, per second)}."""

    throughput = {}


def check_every_test_is_judged(spec, checks):
    """Stop before grading anything if a test cell has no check, or a check no test cell."""
    if set(checks.judges) != set(spec.points):
        raise verdicts.MissingCheck(
            f"{spec.name}: test cells {sorted(set(spec.points) - set(checks.judges))} have no "
            f"check in autograder/verdicts.py, and checks {sorted(set(checks.judges) - set(spec.points))} "
            "no test cell; the hardened grader judges every test cell there")


def one_student(course, spec, student, step, *args):
    """Run one student's `step` of the driver (taking in or recording their file); a
    failure of ours there becomes their row (an error, retried next run, with the
    traceback in the log), never the end of the batch."""
    try:
        return step(*args)
    except Exception as error:  # noqa: BLE001 - whatever one file does to us, the others go on
        log(course, spec.name, student, traceback.format_exc())
        row = error_row(student, spec, f"grader error (will be retried): {exception_line(error)}")
        append_result(course, row)
        return row


def keep(course, spec, outcome, submitted_folder, recorder):
    """Record one outcome (the driver's job): autograded notebook, gradebook, results log."""
    row = outcome.row
    if outcome.log:
        log(course, spec.name, row.student, outcome.log)
    if outcome.notebook is not None and row.student != UNKNOWN_STUDENT:
        write_autograded(course, spec.name, row.student, spec.notebook, outcome.notebook,
                         submitted_folder)
        recorder.record(row.student, outcome.earned, flagged=row.status == "flagged",
                        timestamp=submitted_folder and read_timestamp(submitted_folder))
    append_result(course, row)  # as it comes: an interrupted run resumes here
    return row


def log(course, assignment, student, text):
    """Append `text` (a traceback, a worker's stderr) to grading/<assignment>/grader.log."""
    folder = results_dir(course, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with (folder / "grader.log").open("a", encoding="utf-8", errors="backslashreplace") as file:
        file.write(f"--- {stamp} {student!r}\n{text.rstrip()}\n")


def read_submission(record, spec, previous, limits):
    """One student's file as a `Submission`; or, already finished, the row it resumes from
    (unchanged since it was graded) or an `Outcome` (nothing that can be graded: flagged
    with 0 points and the reason, recorded like any other)."""
    if record.problem:
        return flagged_outcome(spec, record.student, f"unreadable: {record.problem}",
                               flags=("unreadable",))
    try:
        size = record.path.stat().st_size
        if size > limits.submission_mb * 2**20:
            return flagged_outcome(spec, record.student, f"too large: the file is "
                                   f"{size / 2**20:.1f} MB, over the {limits.submission_mb} MB "
                                   "a submission may be", sha256=sha256_of(record.path))
        data = record.path.read_bytes()
    except OSError as error:
        return flagged_outcome(spec, record.student, "unreadable: cannot read the file "
                               f"({error.strerror})", flags=("unreadable",))
    digest = hashlib.sha256(data).hexdigest()
    if previous is not None and previous.sha256 == digest and previous.status != "error":
        return previous  # unchanged since it was graded: resume, do not regrade
    return Submission(record.student, data, digest, name=record.path.name)


def sha256_of(path):
    """The file's sha256, read in pieces (it may be larger than the grader wants in memory)."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def mark_identical(todo, spec):
    """Note submissions whose files are byte-identical to another student's (not the blank
    release notebook): a copied file is worth a look; a shared answer alone is not."""
    owners = {}
    for submission in todo:
        owners.setdefault(submission.sha256, []).append(submission.student)
    marked = []
    for submission in todo:
        others = [s for s in owners[submission.sha256] if s != submission.student]
        if others and submission.sha256 != spec.release_sha256:
            submission = replace(submission,
                                 identical=(f"identical file to {', '.join(sorted(others))}'s",))
        marked.append(submission)
    return marked


def grade_locally(spec, checks, todo, *, slots=None, limits=Limits()):
    """Yield an `Outcome` per submission, as each is done: read by this machine's reading
    helpers, run on its pool of sandboxed workers, judged here.

    Twice as many grading threads as slots, so a slot never waits while its next
    submission is read or its last one judged; a file that holds one reading helper up
    holds nobody else."""
    if not todo:
        return
    slots = slots or os.cpu_count() or 1
    with Reader(slots, limits) as reader, Pool(slots, limits) as pool, \
            ThreadPoolExecutor(2 * slots, thread_name_prefix="grading") as threads:
        def run_box(token, box):
            return pool.submit(token, box).result()

        futures = [threads.submit(grade_one, spec, checks, submission, reader.read, run_box)
                   for submission in todo]
        for future in as_completed(futures):
            yield future.result()


def grade_one(spec, checks, submission, read, run_box):
    """`core.grade_submission`, with any failure of ours as an error row (retried next run)."""
    try:
        return grade_submission(spec, checks, submission, read=read, run_box=run_box)
    except Exception as error:  # noqa: BLE001 - ours (a helper that cannot start), not theirs
        return Outcome(error_row(submission.student, spec, "infrastructure error (will be "
                                 f"retried): {exception_line(error)}", sha256=submission.sha256),
                       log=traceback.format_exc())


def read_results(course, assignment):
    """The latest recorded row of each student (for resuming)."""
    path = results_dir(course, assignment) / "results.jsonl"
    latest = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                item.pop("time", None)
                item["flags"] = tuple(item.get("flags", ()))
                item["checks"] = {k: tuple(v) for k, v in item.get("checks", {}).items()}
                latest[item["student"]] = Result(**item)
    return latest


def append_result(course, row):
    """Append a row to its assignment's results log (one JSON line each, newest last)."""
    folder = results_dir(course, row.assignment)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "results.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps({**asdict(row), "time": time.time()}) + "\n")
