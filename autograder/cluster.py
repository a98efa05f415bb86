"""Grade on a Dask cluster: the same sandbox on every worker, the same rows back.

The driver (`grade.grade` with a scheduler address) keeps everything that writes: the
gradebook, `autograded/`, the results log. Each task carries one `Submission` (the
file's bytes) and a reference to the assignment's plan (the instructor's notebooks,
points and the run's secret seed), which travels once to each worker, not with every
task. A worker needs no shared filesystem, only this package installed and the sandbox
set up (`scripts/install-sandbox`). The plan stays in the Dask worker process; the
sandboxed child it forks sees only cells and probe inputs, as on one machine.

Faults:
- a sandbox that fails to start raises inside the task, so Dask retries it (`RETRIES`);
  a task that still fails comes back as an `error` row (no score, retried next run);
- a worker that dies has its tasks rescheduled by Dask; each task has one key per
  student and run, so a student is graded at most once at a time, and the driver keeps
  the first answer for each student;
- a lost scheduler (or no worker left for `NO_WORKER_SECONDS`) stops the run with
  `ClusterLost`; the rows recorded so far stay, and the same command resumes.
"""
import functools
import hashlib
import logging
import secrets
import socket
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED
from dataclasses import replace
from pathlib import Path

import gdlab
from distributed import Client, WorkerPlugin, get_worker, wait
from distributed.client import FutureCancelledError

from . import verdicts
from .grade import ClusterLost, Outcome, error_row, grade_submission
from .pool import Pool
from .sandbox import Limits, SandboxUnavailable

PLUGIN = "gd-autograder-sandbox"
RETRIES = 2                 # a task that raised (its sandbox failed) runs up to 3 times
TASKS_PER_THREAD = 4        # submissions in flight per worker thread: bounds the scheduler's memory
NO_WORKER_SECONDS = 120     # with no worker this long, stop rather than wait for ever
CONNECT_SECONDS = 20


class SandboxFailed(RuntimeError):
    """The task's sandbox could not run it; raised so that Dask retries the task."""


def code_fingerprint():
    """A digest of the grading code (autograder and gdlab): driver and workers must agree,
    or a worker would judge with other checks than the driver planned."""
    digest = hashlib.sha256()
    for package in (Path(__file__).parent, Path(gdlab.__file__).parent):
        for path in sorted(package.rglob("*.py")):
            digest.update(path.relative_to(package.parent).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def worker_report(dask_worker=None):
    """What the driver checks on each worker before fanning out (run by `client.run`)."""
    from .sandbox import check_available
    try:
        check_available()
        problem = ""
    except SandboxUnavailable as error:
        problem = str(error)
    return {"code": code_fingerprint(), "sandbox": problem, "host": socket.gethostname()}


class SandboxPlugin(WorkerPlugin):
    """Hosts a warm pool of sandboxed workers in each Dask worker, one per thread."""

    name = PLUGIN

    def __init__(self, limits):
        self.limits = limits
        self.pool, self.problem = None, ""

    def setup(self, worker):
        try:
            self.pool = Pool(worker.state.nthreads, self.limits)
        except SandboxUnavailable as error:
            self.problem = f"no sandbox on {worker.address}: {error}"

    def teardown(self, worker):
        if self.pool is not None:
            self.pool.close()

    def run_box(self, token, box):
        if self.pool is None:
            raise SandboxFailed(self.problem)
        return self.pool.submit(token, box).result()


@functools.lru_cache(maxsize=8)
def planned_checks(assignment, seed):
    """The run's checks, rebuilt on the worker from the seed (the same on every machine)."""
    return verdicts.plan(assignment, seed)


def grade_task(plan, submission):
    """One task: match, run in this worker's sandbox, judge. Raises if the sandbox failed."""
    spec, seed = plan
    worker = get_worker()
    plugin = worker.plugins[PLUGIN]
    try:
        outcome = grade_submission(spec, planned_checks(spec.name, seed), submission,
                                   plugin.run_box)
    except SandboxFailed:
        raise
    except Exception as error:  # as one type, so the driver tells it from a lost connection
        raise SandboxFailed(f"{worker.address}: {type(error).__name__}: {error}") from None
    if outcome.row.status == "error":
        raise SandboxFailed(f"{worker.address}: {outcome.row.reason}")
    outcome.row = replace(outcome.row, worker=worker.address)
    return outcome


def connect(address):
    """A client of the scheduler at `address`, or a clear error."""
    # The client's own "failed to reconnect" traceback would bury `ClusterLost`'s message.
    logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    try:
        return Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ClusterLost(f"cannot reach the Dask scheduler at {address} "
                          f"(waited {CONNECT_SECONDS} s): {error}") from None


def check_workers(client, address):
    """Stop before fanning out if a worker runs other grading code or cannot sandbox."""
    reports = client.run(worker_report)
    if not reports:
        raise ClusterLost(f"the Dask scheduler at {address} has no workers")
    mine = code_fingerprint()
    wrong = [f"{who} runs grading code {report['code']} (this machine: {mine}); install "
             "the same commit there" for who, report in reports.items() if report["code"] != mine]
    wrong += [f"{who}: {report['sandbox']}" for who, report in reports.items() if report["sandbox"]]
    if wrong:
        raise SandboxUnavailable("workers not ready to grade:\n  " + "\n  ".join(wrong))


def grade_on_cluster(address, spec, seed, todo, *, limits=Limits(), task=None):
    """Yield an `Outcome` per submission in `todo`, graded on the Dask cluster at `address`.

    `task(plan, submission)` is what each worker runs (default `grade_task`; the benchmark
    swaps in one that only ships and returns, to price the round trip)."""
    task = task or grade_task
    if not todo:
        return
    client = connect(address)
    try:
        check_workers(client, address)
        client.register_plugin(SandboxPlugin(limits), name=PLUGIN)
        [plan] = client.scatter([(spec, seed)], broadcast=True, hash=False)
        run = secrets.token_hex(4)
        waiting, running = deque(todo), {}
        finished = 0

        def launch():
            if client.status != "running":
                raise lost(address, finished, len(todo))
            try:
                threads = sum(client.nthreads().values()) or 1
            except OSError:
                raise lost(address, finished, len(todo)) from None
            while waiting and len(running) < TASKS_PER_THREAD * threads:
                submission = waiting.popleft()
                future = client.submit(task, plan, submission, retries=RETRIES, pure=False,
                                       key=f"grade-{spec.name}-{submission.student}-{run}")
                running[future] = submission

        launch()
        idle_since = None
        while running:
            try:
                with client.as_current():
                    done, _ = wait(list(running), timeout=5, return_when=FIRST_COMPLETED)
            except TimeoutError:
                done = set()
            if not done:
                idle_since = check_alive(client, address, idle_since, finished, len(todo))
                continue
            idle_since = None
            for future in done:
                submission = running.pop(future)
                yield outcome_of(future, submission, spec, client, address, finished, len(todo))
                finished += 1
            launch()
    finally:
        client.close(timeout=5)


def outcome_of(future, submission, spec, client, address, finished, total):
    """The task's `Outcome`; a task that failed for good is an error row."""
    try:
        return future.result()
    except (FutureCancelledError, OSError):  # the task's own failures arrive as SandboxFailed
        raise lost(address, finished, total) from None
    except Exception as error:  # retried already: the sandbox failed, or the worker kept dying
        if client.status != "running":
            raise lost(address, finished, total) from None
        return Outcome(error_row(submission.student, spec,
                                 f"infrastructure error (will be retried): {type(error).__name__}: "
                                 f"{error}", sha256=submission.sha256))


def check_alive(client, address, idle_since, finished, total):
    """Raise `ClusterLost` if the scheduler is gone or no worker has been there for long."""
    if client.status != "running":
        raise lost(address, finished, total)
    try:
        workers = client.nthreads()
    except OSError:
        raise lost(address, finished, total) from None
    if workers:
        return None
    idle_since = idle_since or time.monotonic()
    if time.monotonic() - idle_since > NO_WORKER_SECONDS:
        raise ClusterLost(f"no Dask worker has been connected to {address} for "
                          f"{NO_WORKER_SECONDS} s; {finished} of {total} submissions were graded "
                          "and kept. Start workers and run the same command again to resume.")
    return idle_since


def lost(address, finished, total):
    return ClusterLost(f"lost the Dask scheduler at {address} after {finished} of {total} "
                       "submissions; those are kept. Run the same command again to resume.")
