"""The per-submission core: read -> run -> judge one submission into an `Outcome`.

Both backends call `grade_submission`: the local pool (`grade.grade_locally`) and Dask
workers (`cluster.grade_task`). It needs no course directory: it takes a `Submission`
(the file's bytes) and the assignment, and hands back the row, the autograded notebook
and the points; only the driver (`grade`) records them.

- read: a bounded helper parses the file, matches it to the release notebook and reads
  the student's cells statically (`reading`); the grader never parses a submission itself;
- run: the matched cells and the checks' probes go to the sandbox (`pool`), under an
  opaque token, with no name and no expected value;
- judge: the plain values that come back are judged here (`verdicts`), with the box's
  signals and the static reading (`tamper`).

Whatever a submission makes our code do is that submission's row: a file that cannot be
read, passes a bound, or makes reading or judging raise is flagged for manual grading with
a score of 0 and the reason (the traceback goes to the log). An `error` row (no score,
retried by the next run) is kept for our own side: a box or helper that cannot start.
"""
import json
import secrets
import traceback
from dataclasses import dataclass, field

from . import tamper
from .sandbox import MAX_JOB_BYTES
from .submission import Matched, autograded_notebook, match
from .text import clip, exception_line, printable

MAX_LINE = 2_000_000  # longest result line the grader will parse
MAX_REASON = 2_000    # a row's reason, cut in the middle past this


@dataclass(frozen=True)
class Result:
    """One row of the grading results. Reasons and flags quote what students did, so they
    are stored printable (`text.printable`): no field can act on a terminal or a page."""

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

    def __post_init__(self):
        object.__setattr__(self, "reason", clip(printable(self.reason), MAX_REASON))
        object.__setattr__(self, "flags", tuple(printable(flag) for flag in self.flags))


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
    name: str = ""         # the file's name, for reasons


@dataclass
class Outcome:
    """What grading one submission hands back to the driver, which alone records it."""

    row: Result
    notebook: dict | None = None  # the autograded notebook (None: nothing to record)
    earned: dict | None = None    # test grade_id -> points, for the gradebook
    log: str = ""                 # for grading/<assignment>/grader.log: tracebacks, stderr


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


@dataclass
class Unjudged:
    """A test cell's verdict when nothing could be judged: failed, with the row's reason."""

    message: str
    passed: bool = False


def error_row(student, spec, reason, **extra):
    """An infrastructure error: no score (never a zero), and the next run retries it."""
    return Result(student, spec.name, "error", None, spec.max_score, clip(reason, 400), **extra)


def flagged_outcome(spec, student, reason, *, flags=None, sha256="", log=""):
    """A submission that could not be run or judged: 0 points, flagged for manual grading
    with `reason`, and recorded like any other (the autograded notebook shows the release
    stubs and every test cell failed with the reason)."""
    row = Result(student, spec.name, "flagged", 0.0, spec.max_score, reason,
                 tuple(flags or (reason,)), {gid: (0.0, points) for gid, points in spec.points.items()},
                 sha256)
    stubs = match(spec.release_nb, spec.release_nb)
    notebook = autograded_notebook(spec.source_nb, stubs, [],
                                   {gid: Unjudged(f"not graded: {row.reason}") for gid in spec.points})
    return Outcome(row, notebook, {gid: 0.0 for gid in spec.points}, log)


def grade_submission(spec, checks, submission, *, read, run_box):
    """Read, run and judge one submission. `read(spec, submission)` returns the reading
    helper's answer; `run_box(token, box_job)` the box's `RunResult`."""
    outcome, job = open_submission(spec, checks, submission, read(spec, submission))
    if outcome is not None:
        return outcome
    return judge_run(spec, checks, submission, job, run_box(secrets.token_hex(8), job["box"]))


def open_submission(spec, checks, submission, answer):
    """Turn the reading helper's answer into a job for the box, or a finished `Outcome`
    (unreadable, passed a bound, wrong notebook, too large). The job's "box" part is all
    the sandbox sees: cells and probes, no names, no answers."""
    student, digest = submission.student, submission.sha256
    if "unreadable" in answer:
        return flagged_outcome(spec, student, f"unreadable: {answer['unreadable']}",
                               flags=("unreadable",), sha256=digest), None
    if "bound" in answer:
        return flagged_outcome(spec, student, f"too large to read: {answer['bound']}",
                               sha256=digest), None
    if "crash" in answer:
        return flagged_outcome(spec, student, f"the grader could not read it: {answer['crash']}",
                               sha256=digest, log=answer.get("traceback", "")), None
    matched = Matched.from_json(answer["matched"])
    wrong = [flag for flag in matched.flags if flag.startswith("wrong notebook")]
    if wrong:
        return flagged_outcome(spec, student, wrong[0], flags=matched.flags, sha256=digest), None
    box = {"cells": matched.cells, "reruns": matched.reruns, "probes": checks.probes,
           "seed": int(digest[:8], 16)}
    size = len(json.dumps(box))
    if size > MAX_JOB_BYTES:
        return flagged_outcome(spec, student, f"too large: the notebook's code is "
                               f"{size / 2**20:.0f} MB, over the {MAX_JOB_BYTES // 2**20} MB a "
                               "run takes", sha256=digest), None
    return None, {"box": box, "matched": matched, "notes": answer["notes"],
                  "static": answer["static"]}


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
    if run.status.startswith("killed its worker"):
        return "crashed: the run brought its sandbox worker down, on every try"
    if run.truncated:
        return "output too large: the run handed back more than the limit allows"
    if run.status == "timeout":
        return "timeout: the run took longer than the wall-time limit"
    if run.status == "lost":  # its supervisor was stopped before it could say what it saw
        return "timeout: the run's watcher was stopped before it reported (past the wall time)"
    if run.out_of_memory and not done:
        return "out of memory: the run used more than its memory limit and was stopped"
    if run.status in ("signal 9", "signal 24"):
        return "crashed: killed at the CPU-time limit (an endless loop?)"
    if not done:
        return f"crashed: the run ended early ({run.status}), e.g. by os._exit or a fatal error"
    return None


def judge_run(spec, checks, submission, job, run):
    """Judge one run: its `Outcome` (row, autograded notebook, points). Whatever the run's
    lines make our judging do is this submission's row, never the end of the batch."""
    student, digest = submission.student, submission.sha256
    if run.infrastructure_error:
        return Outcome(error_row(student, spec, "infrastructure error (will be retried): "
                                 + run.status[16:], sha256=digest, seconds=run.seconds,
                                 worker=run.where), log=run.detail)
    try:
        return judged(spec, checks, submission, job, run)
    except Exception as error:  # noqa: BLE001 - provoked by this submission's lines
        outcome = flagged_outcome(spec, student, "the grader could not judge it: "
                                  + exception_line(error), sha256=digest,
                                  log=traceback.format_exc())
        return outcome


def judged(spec, checks, submission, job, run):
    matched = job["matched"]
    lines = parse_lines(run.lines)
    stopped = fate(run, lines.done)
    verdicts = checks.judge(lines.probes, failed_to_finish=stopped or
                            "the run's own code wrote over the grader's answer")
    earned = {gid: spec.points[gid] if verdicts.get(gid) and verdicts[gid].passed else 0.0
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
    notebook = autograded_notebook(spec.source_nb, matched, outputs, verdicts)
    lost = [f"{gid} {earned[gid]:g}/{spec.points[gid]:g}" for gid in spec.points
            if earned[gid] < spec.points[gid]]
    reason = "; ".join(flags) if flags else ", ".join(lost)
    notes = job["notes"] + matched.notes + harmless
    if notes and not flags:
        reason = "; ".join(filter(None, [reason] + notes))
    row = Result(submission.student, spec.name, "flagged" if flags else "graded",
                 sum(earned.values()), spec.max_score, reason, tuple(flags),
                 {gid: (earned[gid], spec.points[gid]) for gid in spec.points},
                 submission.sha256, run.seconds, run.where)
    return Outcome(row, notebook, earned)
