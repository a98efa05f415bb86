"""Grade on a Dask cluster: the same sandbox on every worker, the same rows back.

The driver (`grade.grade` with a scheduler address) keeps everything that writes: the
gradebook, `autograded/`, the results log. Each task carries one `Submission` (the
file's bytes) and the assignment's `Plan` (the instructor's notebooks, points and the
run's secret seed). A worker needs no shared filesystem, only this package installed and
the sandbox set up (`scripts/install-sandbox`). The plan stays in the Dask worker
process; the sandboxed child it forks sees only cells and probe inputs, as on one machine.

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
import json
import logging
import secrets
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import CancelledError
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import gdlab
from distributed import Client, WorkerPlugin, get_worker, wait
from distributed.client import FutureCancelledError

from . import verdicts
from .core import ClusterLost, Outcome, error_row, grade_submission
from .pool import Pool
from .reading import Reader, ReaderUnavailable
from .sandbox import Limits, SandboxUnavailable

PLUGIN = "gd-autograder-sandbox"
RETRIES = 2                 # a task that raised (its sandbox failed) runs up to 3 times
TASKS_PER_THREAD = 4        # submissions in flight per worker thread: bounds the scheduler's memory
NO_WORKER_SECONDS = 120     # with no worker this long, stop rather than wait for ever
CONNECT_SECONDS = 20
STATUS_SECONDS = 30         # a scheduler that does not answer a status question this long is lost


class SandboxFailed(RuntimeError):
    """The task's sandbox could not run it; raised so that Dask retries the task."""


@dataclass(frozen=True)
class Plan:
    """What every task carries besides its submission (about 20 kB): the instructor's
    notebooks and points, the run's secret seed, the grading code's digest (a worker that
    joined late with other code must not judge), and the sandbox plugin to run in."""

    spec: object
    seed: int
    code: str
    plugin: str


@functools.lru_cache(maxsize=1)
def code_fingerprint():
    """A digest of the grading code (autograder and gdlab): driver and workers must agree,
    or a worker would judge with other checks than the driver planned."""
    digest = hashlib.sha256()
    for package in (Path(__file__).parent, Path(gdlab.__file__).parent):
        for path in sorted(p for p in package.rglob("*") if p.suffix in (".py", ".csv")):
            digest.update(path.relative_to(package.parent).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class SandboxPlugin(WorkerPlugin):
    """Hosts a warm pool of sandboxed workers in each Dask worker, one per thread.

    Named by its limits and the grading code, and idempotent: a second run (or a second
    driver) with the same limits shares the warm pool instead of replacing it under the
    first one's running tasks. It stays registered, so workers stay warm between runs.
    """

    idempotent = True

    def __init__(self, limits):
        self.limits = limits
        self.name = plugin_name(limits)
        self.pool, self.reader, self.problem = None, None, ""

    def setup(self, worker):
        self.worker, self.lock = worker, threading.Lock()
        self.ensure_pool()

    def ensure_pool(self):
        """Start the pool if it is not running (again: a machine's slots may have freed up);
        return why it cannot start, or ''."""
        with self.lock:
            if self.pool is None:
                try:
                    self.pool = Pool(self.worker.state.nthreads, self.limits)
                    self.problem = ""
                except SandboxUnavailable as error:
                    self.problem = f"no sandbox on {self.worker.address}: {error}"
            return self.problem

    def teardown(self, worker):
        if self.pool is not None:
            self.pool.close()
        if self.reader is not None:
            self.reader.close()

    def read(self, spec, submission):
        """The bounded reading helpers' answer for one file (see `reading`)."""
        with self.lock:
            if self.reader is None:
                self.reader = Reader(self.worker.state.nthreads, self.limits)
        try:
            return self.reader.read(spec, submission)
        except ReaderUnavailable as error:
            raise SandboxFailed(f"{self.worker.address}: {error}") from None

    def run_box(self, token, box):
        if self.ensure_pool():
            raise SandboxFailed(self.problem)
        # A run ends by its wall time; a retry or two on a fresh worker, then give up.
        patience = (1 + RETRIES) * (self.limits.wall_seconds + 30)
        try:
            return self.pool.submit(token, box).result(timeout=patience)
        except TimeoutError:
            raise SandboxFailed(f"no answer from the sandbox within {patience:.0f} s") from None


def plugin_name(limits):
    text = json.dumps(asdict(limits), sort_keys=True) + code_fingerprint()
    return f"{PLUGIN}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def plugin_problem(name, dask_worker=None):
    """Why this worker's sandbox plugin has no pool ('' if it has one); run by `client.run`."""
    plugin = dask_worker.plugins.get(name)
    return "the sandbox plugin is missing" if plugin is None else plugin.ensure_pool()


@functools.lru_cache(maxsize=8)
def planned_checks(assignment, seed):
    """The run's checks, rebuilt on the worker from the seed (the same on every machine)."""
    return verdicts.plan(assignment, seed)


def grade_task(plan, submission):
    """One task: match, run in this worker's sandbox, judge. Raises if the sandbox failed."""
    worker = get_worker()
    if plan.code != code_fingerprint():
        raise SandboxFailed(f"{worker.address} runs grading code {code_fingerprint()}, the "
                            f"driver {plan.code}: install the same commit there")
    plugin = worker.plugins.get(plan.plugin)
    if plugin is None:
        raise SandboxFailed(f"{worker.address} has no sandbox plugin {plan.plugin}")
    try:
        outcome = grade_submission(plan.spec, planned_checks(plan.spec.name, plan.seed),
                                   submission, read=plugin.read, run_box=plugin.run_box)
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
    """Stop before fanning out if a worker runs other grading code than this machine."""
    codes = client.run(code_fingerprint)
    if not codes:
        raise ClusterLost(f"the Dask scheduler at {address} has no workers")
    mine = code_fingerprint()
    not_ready({who: f"runs grading code {code} (this machine: {mine}); install the same "
                    "commit there" for who, code in codes.items() if code != mine})


def not_ready(problems):
    """Raise `SandboxUnavailable` naming each worker with a problem, if any has one."""
    if problems:
        raise SandboxUnavailable("workers not ready to grade:\n  " + "\n  ".join(
            f"{who}: {problem}" for who, problem in problems.items()))


def grade_on_cluster(address, spec, seed, todo, *, limits=Limits(), task=None, plugin=None):
    """Yield an `Outcome` per submission in `todo`, graded on the Dask cluster at `address`.

    `task(plan, submission)` is what each worker runs (default `grade_task`; the benchmark
    swaps in one that only ships and returns, to price the round trip); `plugin` the
    sandbox each worker hosts (default `SandboxPlugin(limits)`; a test swaps in a broken one)."""
    task = task or grade_task
    if not todo:
        return
    client = connect(address)
    try:
        check_workers(client, address)
        plugin = plugin or SandboxPlugin(limits)
        client.register_plugin(plugin, name=plugin.name)
        not_ready({who: problem for who, problem in
                   client.run(plugin_problem, plugin.name).items() if problem})
        # With every task, not scattered once: data held only by workers is gone when they
        # are, and 20 kB a task costs little next to the submission it travels with.
        plan = Plan(spec, seed, code_fingerprint(), plugin.name)
        run = secrets.token_hex(4)
        waiting, running = deque(todo), {}
        finished = 0

        def launch():
            if client.status != "running":
                raise lost(address, finished, len(todo))
            try:
                threads = sum(client.nthreads(callback_timeout=STATUS_SECONDS).values()) or 1
            except (OSError, TimeoutError):
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
            except CancelledError:  # the client cancels every future when it loses the scheduler
                raise lost(address, finished, len(todo)) from None
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
        workers = client.nthreads(callback_timeout=STATUS_SECONDS)
    except (OSError, TimeoutError):
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
