"""Grading on Dask: the same rows as on one machine, and no submission lost or doubled when
a worker is killed, the scheduler goes away, or a worker has no sandbox to give.

Two shapes, both started here on 127.0.0.1: a `LocalCluster` (2 workers, 1 thread each)
and a separate `dask scheduler` with `dask worker` processes, as on several machines.
"""
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import EXPECTED_SCORES as EXPECTED
from conftest import class_of, gradebook_scores
from services import dask_processes, service_env, stop

from autograder import cluster as on_dask
from autograder.cluster import SandboxPlugin
from autograder.grade import grade, results_dir
from autograder.pool import RunResult
from autograder.sandbox import SandboxUnavailable, claim_slot

ASSIGNMENT = "02_gradient_step"
NOTEBOOK = "gradient_step"

pytestmark = pytest.mark.usefixtures("sandbox_ready")


def expected_score(student, assignment=ASSIGNMENT):
    return EXPECTED[assignment][student.rsplit("_", 1)[0] if student[-1].isdigit() else student]


def logged(course, assignment=ASSIGNMENT):
    """The results log's lines, oldest first."""
    path = results_dir(course, assignment) / "results.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cli(course, *args):
    """`python -m autograder grade` as the instructor types it, in the background."""
    return subprocess.Popen([sys.executable, "-m", "autograder", "--course", str(course.root),
                             "grade", ASSIGNMENT, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=service_env())


def wait_for_lines(course, count, process, timeout=120):
    deadline = time.monotonic() + timeout
    while len(logged(course)) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run recorded too little in time"
        time.sleep(0.05)


def address_of(cluster, process):
    """The Dask address of the worker running as `process`."""
    from distributed import Client
    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        pids = client.run(os.getpid)
    return next(address for address, pid in pids.items() if pid == process.pid)


def bwrap_children(pid):
    """PIDs of the bubblewrap processes `pid` started (its sandboxed workers)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/comm") as comm:
                name = comm.read().strip()
        except OSError:
            continue
        if int(fields[1]) == pid and name == "bwrap":
            found.append(int(entry))
    return found


# ---------------------------------------------------------------- LocalCluster

@pytest.mark.parametrize("assignment", sorted(EXPECTED))
def test_a_local_cluster_gives_the_rows_local_grading_gives(local_cluster, tmp_path, assignment):
    here = class_of(tmp_path / "here", assignment)
    there = class_of(tmp_path / "there", assignment)
    on_one_machine = grade(here, assignment, seed=5, slots=2, progress_stream=io.StringIO())
    on_the_cluster = grade(there, assignment, seed=5, scheduler=local_cluster.address,
                           progress_stream=io.StringIO())

    def plain(row):
        return (row.student, row.status, row.score, row.reason, row.flags, row.checks, row.sha256)
    assert [plain(r) for r in on_the_cluster] == [plain(r) for r in on_one_machine]
    assert {r.student: r.score for r in on_the_cluster} == EXPECTED[assignment]
    assert gradebook_scores(there, assignment) == gradebook_scores(here, assignment)
    for row in on_one_machine:
        mine = (here.autograded_dir / row.student / assignment).glob("*.ipynb")
        theirs = there.autograded_dir / row.student / assignment
        for path in mine:
            assert (theirs / path.name).read_bytes() == path.read_bytes()
    # Every row says which worker ran it, and the throughput counts exactly those.
    assert {r.worker for r in on_the_cluster} <= set(local_cluster.workers)
    assert sum(n for n, _ in on_the_cluster.throughput.values()) == len(EXPECTED[assignment])


class BrokenSandbox(SandboxPlugin):
    """A worker whose sandbox never answers: every run comes back as an infrastructure
    failure, and each attempt is tallied in a file the test reads."""

    def __init__(self, limits, tally=None):
        super().__init__(limits)
        self.name = f"broken-sandbox-{secrets.token_hex(4)}"
        self.tally = str(tally)

    def ensure_pool(self):
        return ""

    def run_box(self, token, box):
        with open(self.tally, "a") as tally:
            tally.write(token + "\n")
        return RunResult(token, "infrastructure: sandbox worker died (a broken machine)")


def test_a_sandbox_that_fails_on_a_worker_is_retried_then_an_error_never_a_zero(
        local_cluster, tmp_path, monkeypatch):
    course = class_of(tmp_path / "course", ASSIGNMENT)
    tally = tmp_path / "attempts"
    monkeypatch.setattr(on_dask, "SandboxPlugin", lambda limits: BrokenSandbox(limits, tally))
    rows = grade(course, ASSIGNMENT, seed=5, scheduler=local_cluster.address,
                 progress_stream=io.StringIO())
    assert {(r.status, r.score) for r in rows} == {("error", None)}
    assert all("sandbox worker died" in r.reason and "will be retried" in r.reason for r in rows)
    assert len(tally.read_text().split()) == len(rows) * (1 + on_dask.RETRIES)  # Dask retried
    assert gradebook_scores(course, ASSIGNMENT) == {}  # no zero recorded for anyone
    monkeypatch.undo()
    again = grade(course, ASSIGNMENT, seed=5, scheduler=local_cluster.address,
                  progress_stream=io.StringIO())
    assert {r.student: r.score for r in again} == EXPECTED[ASSIGNMENT]


def test_workers_with_no_free_sandbox_slot_are_refused_then_grade_once_slots_free(tmp_path):
    """Every slot of this machine taken: the cluster's workers cannot start a sandbox, and
    the command stops before anything is sent; once slots are free, the same command grades."""
    from distributed import LocalCluster
    course = class_of(tmp_path, ASSIGNMENT)
    held = []
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as one_worker:
        try:
            while True:
                held.append(claim_slot())
        except SandboxUnavailable:
            pass
        try:
            with pytest.raises(SandboxUnavailable, match="sandbox slots of this machine are in use"):
                grade(course, ASSIGNMENT, seed=5, scheduler=one_worker.scheduler_address,
                      progress_stream=io.StringIO())
        finally:
            for claim in held:
                claim.release()
        assert logged(course) == [] and gradebook_scores(course, ASSIGNMENT) == {}
        again = grade(course, ASSIGNMENT, seed=5, scheduler=one_worker.scheduler_address,
                      progress_stream=io.StringIO())
    assert {r.student: r.score for r in again} == EXPECTED[ASSIGNMENT]


# ---------------------------------------------------------------- scheduler and worker processes

def test_a_worker_killed_mid_run_loses_and_doubles_nothing(tmp_path):
    course = class_of(tmp_path / "course", ASSIGNMENT, copies=4, pause=0.3)
    students = sorted(p.name for p in course.submitted_dir.iterdir())
    with dask_processes(tmp_path / "dask") as cluster:
        victim = cluster.workers[0]
        run = cli(course, "--scheduler", cluster.address)
        wait_for_lines(course, 4, run)
        boxes = bwrap_children(victim.pid)
        victim_address = address_of(cluster, victim)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed_after = len(logged(course))
        out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    lines = logged(course)
    assert sorted(line["student"] for line in lines) == students  # each exactly once
    assert {line["student"]: line["score"] for line in lines} == {
        s: expected_score(s) for s in students}
    assert killed_after < len(students)  # the kill really came mid-run
    after_the_kill = {line["worker"] for line in lines[killed_after + 1:]}
    assert after_the_kill and victim_address not in after_the_kill
    assert boxes and not any(Path(f"/proc/{pid}").exists() for pid in boxes)
    # The progress output ends with each worker's share and rate.
    assert err.count("submissions  ") >= 1 and "/s" in err.splitlines()[-1]


def test_a_lost_scheduler_stops_the_run_clearly_and_the_same_command_resumes(tmp_path):
    course = class_of(tmp_path / "course", ASSIGNMENT, copies=4, pause=0.3)
    students = sorted(p.name for p in course.submitted_dir.iterdir())
    with dask_processes(tmp_path / "first") as cluster:
        run = cli(course, "--scheduler", cluster.address)
        wait_for_lines(course, 3, run)
        cluster.scheduler.send_signal(signal.SIGKILL)
        cluster.scheduler.wait()
        started = time.monotonic()
        out, err = run.communicate(timeout=180)
        stopped_in = time.monotonic() - started
    assert run.returncode == 1
    assert "lost the Dask scheduler" in err and "run the same command again" in err.lower(), err
    assert stopped_in < 60
    first = logged(course)
    assert 3 <= len(first) < len(students)

    with dask_processes(tmp_path / "second") as cluster:
        rerun = cli(course, "--scheduler", cluster.address)
        out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    lines = logged(course)
    assert sorted(line["student"] for line in lines) == students  # resumed, none graded twice
    assert lines[:len(first)] == first
    assert f"skipped {len(first)}" in err
    assert {line["student"]: line["score"] for line in lines} == {
        s: expected_score(s) for s in students}


def test_workers_that_cannot_sandbox_are_refused_before_anything_is_sent(tmp_path):
    course = class_of(tmp_path / "course", ASSIGNMENT)
    with dask_processes(tmp_path / "dask", workers=0) as cluster:
        env = {**service_env(), "PATH": str(Path(sys.executable).parent)}  # no bwrap on it
        log = (cluster.folder / "bare.log").open("ab")
        bare = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker",
                                 cluster.address, "--nthreads", "1", "--no-nanny",
                                 "--host", "127.0.0.1", "--no-dashboard"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            cluster.wait_for_workers(1)
            run = cli(course, "--scheduler", cluster.address)
            out, err = run.communicate(timeout=120)
        finally:
            stop(bare)
    assert run.returncode == 1
    assert "workers not ready to grade" in err and "bubblewrap is not installed" in err
    assert logged(course) == [] and not course.autograded_dir.exists()


def test_an_unreachable_scheduler_is_a_clear_error(monkeypatch):
    from conftest import free_port

    from autograder.core import ClusterLost
    monkeypatch.setattr(on_dask, "CONNECT_SECONDS", 2)
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ClusterLost, match=f"cannot reach the Dask scheduler at {address}"):
        on_dask.connect(address)
