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
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field, replace

from . import tamper, verdicts
from .gradebook import Recorder, grading_claim, read_timestamp, write_autograded
from .intake import UNKNOWN_STUDENT, intake
from .pool import Pool
from .progress import Progress
from .release import ensure_gradebook
from .sandbox import MAX_JOB_BYTES, Limits
from .submission import Unreadable, autograded_notebook, grade_id, is_answer, is_test, match, \
    nbgrader_meta, read_notebook

RESULTS_DIR = "grading"
MAX_LINE = 2_000_000  # longest result line the grader will parse


@dataclass(frozen=True)
class Result:
    """One row of the grading results."""

    student: str
    assignment: str
    status: str                 # "graded" | "flagged" | "error" (infrastructure)
    score: float | None         # None when nothing could be graded
    max_score: float | None
    reason: str = ""            # why flagged / error, or which checks lost points
    flags: tuple = ()
    checks: dict = field(default_factory=dict)  # test grade_id -> (earned, possible)
    sha256: str = ""
    seconds: float = 0.0
    worker: str = ""            # where it ran: host/slot locally, the Dask worker's address


class ClusterLost(RuntimeError):
    """The Dask scheduler (or every worker) went away mid-run; the message says how to resume."""


@dataclass(frozen=True)
class Submission:
    """One student's file as grading needs it: its bytes, not its path, so it can travel
    to a machine that shares no filesystem with the course."""

    student: str
    data: bytes
    sha256: str
    identical: tuple = ()  # "identical file to ...'s", noted by the driver, which sees all


@dataclass
class Outcome:
    """What grading one submission hands back to the driver, which alone records it."""

    row: Result
    notebook: dict | None = None  # the autograded notebook (None: nothing ran)
    earned: dict | None = None    # test grade_id -> points, for the gradebook


def graded_students(rows):
    """The students with a score in the gradebook (graded or flagged): they get feedback."""
    return [row.student for row in rows if row.score is not None]


def results_dir(course, assignment):
    return course.root / RESULTS_DIR / assignment


@dataclass
class Assignment:
    """What the grader knows about one assignment: the two instructor notebooks and points."""

    name: str
    notebook: str
    release_nb: dict
    source_nb: dict
    points: dict     # test grade_id -> points
    others: dict     # other assignment -> its answer grade_ids
    release_sha256: str  # of the notebook as given: handing it back untouched is no copy

    @property
    def max_score(self):
        return float(sum(self.points.values()))


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
    records = intake(course, course.check(assignment), submissions)
    with grading_claim(course, assignment, results_dir(course, assignment)):
        ensure_gradebook(course, assignment)  # creates the database first, before any fan-out
        spec = load_assignment(course, assignment)
        seed = secrets.randbits(64) if seed is None else seed
        checks = verdicts.plan(assignment, seed)
        check_every_test_is_judged(spec, checks)
        previous = {} if force else read_results(course, assignment)
        rows, todo, folders, resumed = {}, [], {}, set()
        with Recorder(course, assignment) as recorder:
            for record in records:
                if record.student != UNKNOWN_STUDENT:
                    recorder.enrol(record.student)
                folders[record.student] = record.path and record.path.parent
                row, submission = one_student(record.student, spec, read_submission, record, spec,
                                              previous.get(record.student))
                if submission is not None:
                    todo.append(submission)
                elif row is previous.get(record.student):
                    rows[record.student] = row
                    resumed.add(record.student)
                else:
                    rows[record.student] = row
                    append_result(course, row)
            todo = mark_identical(todo, spec)
            with Progress(len(records), stream=progress_stream, label=assignment) as bar:
                for row in rows.values():
                    bar.advance(status="skipped" if row.student in resumed else row.status)
                if scheduler:
                    from .cluster import grade_on_cluster  # Dask is imported only when used
                    outcomes = grade_on_cluster(scheduler, spec, seed, todo, limits=limits)
                else:
                    outcomes = grade_locally(spec, checks, todo, slots=slots, limits=limits)
                for outcome in outcomes:
                    student = outcome.row.student
                    row, _ = one_student(student, spec, keep, course, spec, outcome,
                                         folders[student], recorder)
                    rows[student] = row
                    bar.advance(status=row.status, worker=row.worker)
    graded = Graded(rows[student] for student in sorted(rows))
    graded.throughput = bar.throughput()
    return graded


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


def one_student(student, spec, step, *args):
    """Run one student's `step`; a failure of ours on their file becomes their row (an
    error, retried next run), never the end of the batch. Returns (row, other)."""
    try:
        outcome = step(*args)
    except Exception as error:  # whatever one file does to us, the others get graded
        return error_row(student, spec, f"grader error (will be retried): "
                                        f"{type(error).__name__}: {error}"), None
    return outcome if isinstance(outcome, tuple) else (outcome, None)


def error_row(student, spec, reason, **extra):
    """An infrastructure error: no score (never a zero), and the next run retries it."""
    return Result(student, spec.name, "error", None, spec.max_score, reason[:300], **extra)


def keep(course, spec, outcome, submitted_folder, recorder):
    """Record one outcome (the driver's job): autograded notebook, gradebook, results log."""
    row = outcome.row
    if outcome.notebook is not None:
        write_autograded(course, spec.name, row.student, spec.notebook, outcome.notebook,
                         submitted_folder)
        recorder.record(row.student, outcome.earned, flagged=row.status == "flagged",
                        timestamp=read_timestamp(submitted_folder))
    append_result(course, row)  # as it comes: an interrupted run resumes here
    return row


def read_submission(record, spec, previous):
    """One student's file as a `Submission`, or a finished `Result` (unreadable, or
    unchanged since it was graded: resumed)."""
    if record.problem:
        return Result(record.student, spec.name, "flagged", None, spec.max_score,
                      f"unreadable: {record.problem}", ("unreadable",)), None
    try:
        data = record.path.read_bytes()
    except OSError as error:
        return Result(record.student, spec.name, "flagged", None, spec.max_score,
                      f"unreadable: cannot read the file ({error.strerror})", ("unreadable",)), None
    digest = hashlib.sha256(data).hexdigest()
    if previous is not None and previous.sha256 == digest and previous.status != "error":
        return previous, None  # unchanged since it was graded: resume, do not regrade
    return None, Submission(record.student, data, digest)


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
    """Yield an `Outcome` per submission: matched here, run on this machine's pool of
    sandboxed workers, judged here as each run comes back."""
    pending = {}
    for submission in todo:
        row, job = one_student(submission.student, spec, open_submission, spec, checks, submission)
        if job is None:
            yield Outcome(row)
        else:
            pending[secrets.token_hex(8)] = (submission, job)
    if not pending:
        return
    with Pool(slots, limits) as pool:
        for run in pool.run([(token, job["box"]) for token, (_, job) in pending.items()]):
            submission, job = pending.pop(run.token)
            outcome, _ = one_student(submission.student, spec, judge_run, spec, checks,
                                     submission, job, run)
            yield outcome if isinstance(outcome, Outcome) else Outcome(outcome)


def grade_submission(spec, checks, submission, run_box):
    """Match, run and judge one submission; `run_box(token, box_job)` returns its `RunResult`.

    What a Dask worker does for each task (see `cluster`)."""
    row, job = open_submission(spec, checks, submission)
    if job is None:
        return Outcome(row)
    return judge_run(spec, checks, submission, job, run_box(secrets.token_hex(8), job["box"]))


def open_submission(spec, checks, submission):
    """Read and match one submission: a finished `Result` (unreadable, wrong notebook, too
    large) or a job, whose "box" part is all the sandbox sees (no names, no answers)."""
    digest = submission.sha256
    try:
        notebook, notes = read_notebook(submission.data)
    except Unreadable as error:
        return Result(submission.student, spec.name, "flagged", None, spec.max_score,
                      f"unreadable: {error}", ("unreadable",), sha256=digest), None
    matched = match(notebook, spec.release_nb, spec.others)
    if any(flag.startswith("wrong notebook") for flag in matched.flags):
        return Result(submission.student, spec.name, "flagged", None, spec.max_score,
                      matched.flags[0], tuple(matched.flags), sha256=digest), None
    mine = [c["source"] for cells in matched.answers.values() for c in cells]
    mine += [c["source"] for cells in matched.extras.values() for c in cells]
    box = {"cells": matched.cells, "reruns": matched.reruns, "probes": checks.probes,
           "seed": int(digest[:8], 16)}
    size = len(json.dumps(box))
    if size > MAX_JOB_BYTES:
        reason = (f"too large: the notebook's code is {size / 2**20:.0f} MB, over the "
                  f"{MAX_JOB_BYTES // 2**20} MB a run takes")
        return Result(submission.student, spec.name, "flagged", None, spec.max_score, reason,
                      (reason,), sha256=digest), None
    return None, {"box": box, "matched": matched, "notes": notes,
                  "static": tamper.static_flags(mine)}


@dataclass
class Lines:
    """The box's result lines, parsed defensively."""

    cells: dict = field(default_factory=dict)    # run cell index -> its line
    probes: dict = field(default_factory=dict)   # probe id -> its line
    signals: list = field(default_factory=list)
    done: bool = False
    garbled: int = 0   # lines that are not the grader's JSON
    forged: int = 0    # a second line for one cell, probe or end, or lines after the end


def parse_lines(raw):
    """Parse what the box handed back. The student's code runs in the process that writes
    these lines and can write some of its own: a line that is not JSON is counted, and a
    cell or probe answered twice counts as answered by nobody (and as a forgery)."""
    lines, contested = Lines(), set()
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            item = json.loads(line[:MAX_LINE])
        except (ValueError, RecursionError):
            lines.garbled += 1
            continue
        if not isinstance(item, dict):
            lines.garbled += 1
            continue
        if lines.done:
            lines.forged += 1
        elif isinstance(item.get("cell"), int):
            if item["cell"] in lines.cells:
                contested.add(("cell", item["cell"]))
            lines.cells[item["cell"]] = item
        elif isinstance(item.get("probe"), str):
            if item["probe"] in lines.probes:
                contested.add(("probe", item["probe"]))
            lines.probes[item["probe"]] = item
        elif isinstance(item.get("signals"), list):
            lines.forged += bool(lines.signals)
            lines.signals += [str(s)[:200] for s in item["signals"][:20]]
        elif item.get("done") is True:
            lines.done = True
        else:
            lines.garbled += 1
    for kind, key in contested:
        lines.forged += 1
        (lines.cells if kind == "cell" else lines.probes).pop(key, None)
    return lines


def fate(run, done):
    """Why a run did not finish cleanly, or None."""
    if run.status.startswith("refused"):
        return f"too large: {run.status}"
    if run.truncated:
        return "output too large: the run handed back more than the limit allows"
    if run.status == "timeout":
        return "timeout: the run took longer than the wall-time limit"
    if run.out_of_memory and not done:
        return "out of memory: the run used more than its memory limit and was stopped"
    if run.status in ("signal 9", "signal 24"):
        return "crashed: killed at the CPU-time limit (an endless loop?)"
    if not done:
        return f"crashed: the run ended early ({run.status}), e.g. by os._exit or a fatal error"
    return None


def judge_run(spec, checks, submission, job, run):
    """Judge one run: its `Outcome` (row, autograded notebook, points)."""
    student, digest, matched = submission.student, submission.sha256, job["matched"]
    if run.infrastructure_error:
        return Outcome(error_row(student, spec, "infrastructure error (will be retried): "
                                 + run.status[16:], sha256=digest, seconds=run.seconds,
                                 worker=run.where))
    lines = parse_lines(run.lines)
    stopped = fate(run, lines.done)
    judged = checks.judge(lines.probes, failed_to_finish=stopped or
                          "the run's own code wrote over the grader's answer")
    earned = {gid: spec.points[gid] if judged.get(gid) and judged[gid].passed else 0.0
              for gid in spec.points}
    attempts, harmless = tamper.classify(list(run.events) + lines.signals)
    flags = (list(matched.flags) + tamper.flags(job["static"], attempts)
             + list(submission.identical))
    if lines.garbled or lines.forged:
        flags.append(f"tamper attempt: {lines.garbled + lines.forged} result lines were "
                     "not the grader's (written by the submission's own code)")
    if stopped:
        flags.insert(0, stopped)
    outputs = [lines.cells.get(i) for i in range(len(matched.cells))]
    notebook = autograded_notebook(spec.source_nb, matched, outputs, judged)
    lost = [f"{gid} {earned[gid]:g}/{spec.points[gid]:g}" for gid in spec.points
            if earned[gid] < spec.points[gid]]
    reason = "; ".join(flags) if flags else ", ".join(lost)
    notes = job["notes"] + matched.notes + harmless
    if notes and not flags:
        reason = "; ".join(filter(None, [reason] + notes))
    row = Result(student, spec.name, "flagged" if flags else "graded", sum(earned.values()),
                 spec.max_score, reason, tuple(flags),
                 {gid: (earned[gid], spec.points[gid]) for gid in spec.points}, digest,
                 run.seconds, run.where)
    return Outcome(row, notebook, earned)


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
