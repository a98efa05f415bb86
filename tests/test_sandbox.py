"""The box on its own: what a submission's code can and cannot do, job by job.

Each test runs plain cells through `autograder.pool.Pool` (no notebook, no grading) and
reads back what they printed, so a hole shows up as the line the cell printed through it.
"""
import errno
import json
import os
import pwd
import socket
import time
from pathlib import Path

import pytest
from conftest import sandbox_processes

from autograder.pool import Pool
from autograder.sandbox import MAX_JOB_BYTES, USER_PREFIX, Limits, claim_slot

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("sandbox_ready")
# Host-side variables the box must not pass on (the grader's own marker among them).
HOST_ONLY_ENV = {"NBGRADER_EXECUTION": "autograde", "GD_HOST_SECRET": "not for students"}


@pytest.fixture(scope="module")
def pool():
    """One warm worker (slot 0), shared by the tests: what one job leaves, the next one meets."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in HOST_ONLY_ENV.items():
            patch.setenv(name, value)
        with Pool(1, Limits(wall_seconds=20, cpu_seconds=10)) as warm:
            yield warm


def job(cells):
    return {"cells": list(cells), "reruns": {}, "probes": [], "seed": 0}


def texts(result):
    """Per cell, what it printed, then what it raised."""
    lines = [json.loads(line) for line in result.lines.splitlines() if line.strip()]
    return [line["output"] + line.get("error", "") for line in lines if "cell" in line]


def run(pool, *cells):
    """Run `cells` as one job; the run's result and what each cell printed or raised."""
    (result,) = pool.run([("job", job(cells))])
    return result, texts(result)


def printed(pool, *cells):
    """What each cell printed (or raised), after a run that ended normally."""
    result, text = run(pool, *cells)
    assert result.status == "exit 0", result.status
    return text


def in_turn(pool, *jobs):
    """Run jobs (each a list of cells) one after the other on the one worker, in one batch
    as the grader does; what each job's cells printed."""
    results = {r.token: r for r in pool.run([(str(i), job(cells)) for i, cells in enumerate(jobs)])}
    assert [results[str(i)].status for i in range(len(jobs))] == ["exit 0"] * len(jobs)
    return [texts(results[str(i)]) for i in range(len(jobs))]


def test_code_runs_as_the_slot_user_without_capabilities(pool):
    (text,) = printed(pool, 'import os\nprint(os.getresuid(), os.getresgid())\n'
                            'print(open("/proc/self/status").read())')
    user = pwd.getpwnam(f"{USER_PREFIX}{pool.claims[0].slot}")  # the slot it claimed
    assert text.startswith(f"{(user.pw_uid,) * 3} {(user.pw_gid,) * 3}\n")
    status = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
    # Inheritable and bounding sets stay full; with no_new_privs no program can use them.
    assert [int(status[name], 16) for name in ("CapPrm", "CapEff", "CapAmb")] == [0, 0, 0]
    assert (status["NoNewPrivs"], status["Seccomp"]) == ("1", "2")


def test_slots_are_claimed_machine_wide_and_given_back(pool):
    """Pools in other processes (a second grader, Dask workers on this host) claim other
    slots: never one user and one process limit for two students' code."""
    other = claim_slot()
    try:
        assert other.slot != pool.claims[0].slot
    finally:
        other.release()
    again = claim_slot()
    again.release()
    assert again.slot == other.slot  # released, so the lowest free slot again


def test_code_cannot_read_secrets_the_course_or_the_host(pool, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the grader's eyes only")
    paths = [Path("/etc/shadow"), ROOT / "source" / "02_gradient_step" / "gradient_step.ipynb",
             ROOT / "autograder" / "reference.py", ROOT / "nbgrader_config.py", secret]
    assert all(path.exists() for path in paths)  # on the host they are there
    (text,) = printed(pool, f'''
for path in {[str(p) for p in paths]!r}:
    try:
        open(path, "rb").read(1)
        print("READ", path)
    except OSError as error:
        print("blocked", path, type(error).__name__)
''')
    assert "READ" not in text
    assert text.count("blocked") == len(paths)


def test_code_cannot_import_the_autograder(pool):
    (text,) = printed(pool, '''
for name in ("autograder.reference", "autograder.verdicts", "autograder.sandbox"):
    try:
        __import__(name)
        print("IMPORTED", name)
    except ImportError:
        print("no", name)
try:
    import autograder
    print("package file:", autograder.__file__)
except ImportError:
    print("package file: None")
''')
    assert "IMPORTED" not in text
    assert "package file: None" in text  # at most an empty namespace: its folder is not there


def test_code_has_no_network(pool):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        (text,) = printed(pool, f'''
import socket
print("interfaces:", [name for _, name in socket.if_nameindex()])
for address in [("127.0.0.1", {port}), ("1.1.1.1", 443), ("8.8.8.8", 53)]:
    try:
        socket.create_connection(address, timeout=2).close()
        print("CONNECTED", address)
    except OSError as error:
        print("refused", address, error.errno)
''')
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert "CONNECTED" not in text
    assert "interfaces: ['lo']" in text


def test_code_cannot_make_new_namespaces(pool):
    (text,) = printed(pool, '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for name, flag in [("user", 0x10000000), ("net", 0x40000000), ("mount", 0x00020000)]:
    print(name, libc.unshare(flag), ctypes.get_errno())
''')
    assert text.splitlines() == [f"{name} -1 {errno.EPERM}" for name in ("user", "net", "mount")]


def test_code_sees_only_its_own_processes(pool):
    (text,) = printed(pool, 'import os\n'
                            'print(sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))')
    assert text == "[1]\n"


def test_tmp_is_private_to_each_job(pool):
    _, (text,) = in_turn(pool, ['open("/tmp/left-behind", "w").write("for the next student")'],
                         ['import os\nprint(sorted(os.listdir("/tmp")))'])
    assert "left-behind" not in text


def test_environment_carries_nothing_from_the_host(pool):
    (text,) = printed(pool, 'import json, os\nprint(json.dumps(sorted(os.environ)))')
    names = json.loads(text)
    assert not [name for name in names if name.startswith(("NBGRADER", "JUPYTER", "JPY", "GD_"))]
    assert set(HOST_ONLY_ENV).isdisjoint(names)


def test_a_jobs_data_is_not_visible_to_the_next_job(pool):
    prefix = "answer-of-the-student-before-"
    marker = prefix + os.urandom(8).hex()
    # The scanning cell holds the prefix, never a whole marker: it cannot find itself.
    leave = f'left_in_namespace = "{marker}"\nprint(left_in_namespace)'
    _, (text, leftover) = in_turn(pool, [leave], [f'''
import ctypes
import re

marker = re.compile(b"{prefix}" + b"[0-9a-f]{{16}}")
found = 0
with open("/proc/self/maps") as maps:
    for line in maps:
        fields = line.split()
        name = fields[5] if len(fields) > 5 else ""
        if "r" in fields[1] and not name.startswith(("[vvar", "[vsyscall", "/dev")):
            low, high = (int(x, 16) for x in fields[0].split("-"))
            found += len(marker.findall(ctypes.string_at(low, high - low)))
print("copies in memory:", found)
''', 'print(left_in_namespace)'])
    assert text == "copies in memory: 0\n"
    assert leftover.startswith("NameError")


def test_no_process_outlives_its_job(pool):
    (text,) = printed(pool, '''
import os, signal, subprocess, time
subprocess.Popen(["sleep", "600"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)
    os._exit(0)
print(len([p for p in os.listdir("/proc") if p.isdigit()]), "processes")
''')
    assert text == "3 processes\n"  # the job, the sleep and the daemon, all in its namespace
    deadline = time.monotonic() + 5
    while sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox_processes() == {}


def test_an_oversized_job_is_refused_and_the_worker_lives_on(pool):
    printed(pool, "pass")  # the worker is up
    worker = pool.workers[0].process.pid
    result, _ = run(pool, "x = '" + "a" * MAX_JOB_BYTES + "'")
    assert result.status.startswith("refused:") and not result.infrastructure_error
    assert printed(pool, 'print("next")') == ["next\n"]
    assert pool.workers[0].process.pid == worker


def test_memory_limit_bounds_the_whole_submission():
    hog_mb, children = 48, 4
    with Pool(1, Limits(wall_seconds=20, cpu_seconds=10, memory_mb=64, processes=8)) as small:
        _, text = run(small, f'''
import os, time
ready_read, ready_write = os.pipe()
children = []
for _ in range({children}):
    pid = os.fork()
    if pid == 0:
        try:
            hog = bytearray({hog_mb} * 2**20)  # zero-filled: every page is really used
            os.write(ready_write, b"1")
            time.sleep(10)
        finally:
            os._exit(0)
    children.append(pid)
held, deadline = 0, time.time() + 5
while held < {children} and time.time() < deadline:
    held += len(os.read(ready_read, {children}))
print(held * {hog_mb})
for pid in children:
    os.kill(pid, 9)
''')
    # A run stopped for using too much holds nothing: that, too, keeps within the limit.
    held = int(text[0]) if text and text[0].strip().isdigit() else 0
    assert held <= 64, f"one submission held {held} MB at once under a 64 MB limit"
