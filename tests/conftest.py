"""Shared fixtures for the autograder tests: a tiny, real nbgrader course under tmp_path.

The course mirrors the real one (header, one assignment, hand-named grade_ids, the same
config wiring) but is small enough to release and grade in about a second.
"""
import contextlib
import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder import verdicts
from autograder.course import copy_course, open_course, open_gradebook
from autograder.grade import grade
from gdlab.checks import expect

ASSIGNMENT = "01_sigmoid"
NOTEBOOK = "sigmoid"
HIDDEN_LINE = "expected_at_two = 0.8807970780"
HIDDEN_VALUE = "0.880797078"
HIDDEN_MESSAGE = "sigmoid(2.0) is off: check the sign of the exponent"
SOLUTION_LINE = "denominator = 1.0 + np.exp(-x)"
STUB = "    # YOUR CODE HERE\n    raise NotImplementedError()"
CORRECT = "    return 1 / (1 + np.exp(-x))"
WRONG_SIGN = "    return 1 / (1 + np.exp(x))"  # passes the visible check, fails the hidden one

ANSWER = f'''import numpy as np

def sigmoid(x):
    """Return the logistic sigmoid of x (a number or an array)."""
    ### BEGIN SOLUTION
    {SOLUTION_LINE}
    return 1.0 / denominator
    ### END SOLUTION'''

TEST_VALUES = f'''"""Check sigmoid at zero (visible) and at two (hidden)."""
assert sigmoid(0) == 0.5, "sigmoid(0) should be 0.5"
### BEGIN HIDDEN TESTS
{HIDDEN_LINE}
assert abs(sigmoid(2.0) - expected_at_two) < 1e-6, "{HIDDEN_MESSAGE}"
### END HIDDEN TESTS'''

TEST_SHAPE = '''"""Check that sigmoid keeps the shape of an array."""
assert sigmoid(np.zeros(3)).shape == (3,), "sigmoid should work element-wise"'''

CONFIG = '''c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "gd101"
c.CourseDirectory.root = "."
c.IncludeHeaderFooter.header = "source/header.ipynb"
from autograder.feedback import FEEDBACK_PREPROCESSORS  # noqa: E402
c.GenerateFeedback.preprocessors = FEEDBACK_PREPROCESSORS
c.ExecutePreprocessor.timeout = 60
'''

PYPROJECT = '''[project]
name = "tiny-course"
version = "0.1.0"
dependencies = ["numpy>=1.24", "matplotlib>=3.7", "ipywidgets>=8.0",
                "jupyterlab>=4.0", "notebook>=7.0", "nbgrader>=0.9.2"]
'''


def tiny_values(rng):
    """The hardened check behind the tiny course's TEST_VALUES cell."""
    probes = dict(zero=verdicts.call("sigmoid", 0.0), two=verdicts.call("sigmoid", 2.0))

    def judge(got):
        expect(got.zero == 0.5, "sigmoid(0) should be 0.5")
        expect(abs(got.two - 0.8807970780) < 1e-6, HIDDEN_MESSAGE)
    return probes, judge


def tiny_shape(rng):
    """The hardened check behind the tiny course's TEST_SHAPE cell."""
    probes = dict(shaped=verdicts.call("sigmoid", np.zeros(3)))

    def judge(got):
        expect(np.shape(got.shaped) == (3,), "sigmoid should work element-wise")
    return probes, judge


TINY_CHECKS = {"test_sigmoid_values": tiny_values, "test_sigmoid_shape": tiny_shape}


@contextlib.contextmanager
def tiny_checks():
    """Judge the tiny course's `01_sigmoid` by its own checks, not the real course's."""
    real = verdicts.CHECKS[ASSIGNMENT]
    verdicts.CHECKS[ASSIGNMENT] = TINY_CHECKS
    try:
        yield
    finally:
        verdicts.CHECKS[ASSIGNMENT] = real


def nbgrader_cell(cell, grade_id, *, grade=False, solution=False, points=None):
    """Give `cell` nbgrader metadata and a stable id."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution,
            "schema_version": 3, "solution": solution}
    if points is not None:
        meta["points"] = points
    cell.metadata["nbgrader"] = meta
    cell.id = grade_id.replace("_", "-")
    return cell


def write_notebook(path, cells):
    """Write a notebook with the normalised Python kernelspec."""
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def make_course(root):
    """Build a one-assignment nbgrader course at `root` and return it as a `Course`."""
    root = Path(root)
    intro = new_markdown_cell("# The sigmoid\nWrite `sigmoid(x)`; `sigmoid(0)` is `0.5`.")
    intro.id = "intro"
    write_notebook(root / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", [
        intro,
        nbgrader_cell(new_code_cell(ANSWER), "sigmoid_answer", solution=True),
        nbgrader_cell(new_code_cell(TEST_VALUES), "test_sigmoid_values", grade=True, points=2),
        nbgrader_cell(new_code_cell(TEST_SHAPE), "test_sigmoid_shape", grade=True, points=1),
    ])
    write_notebook(root / "source" / "header.ipynb", [
        nbgrader_cell(new_markdown_cell("Restart the kernel and run all cells before you submit."),
                      "header_howto"),
    ])
    (root / "nbgrader_config.py").write_text(CONFIG)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "gdlab").mkdir()
    (root / "gdlab" / "__init__.py").write_text('"""Student helpers (plots, widgets, data)."""\n')
    return open_course(root)


def submission(course, body):
    """The released notebook (as JSON text) with the answer stub replaced by `body`."""
    text = (course.release_dir / ASSIGNMENT / f"{NOTEBOOK}.ipynb").read_text()
    nb = json.loads(text)
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if STUB in source:
            cell["source"] = source.replace(STUB, body)
    return json.dumps(nb)


def place(course, student, text):
    """Put a submission in nbgrader's `submitted/<student>/<assignment>/` layout."""
    path = course.submitted_dir / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def course(tmp_path):
    """A fresh course (nothing released, no gradebook)."""
    with tiny_checks():
        yield make_course(tmp_path / "course")


@pytest.fixture(scope="session")
def released_template(tmp_path_factory):
    """One released course (with its gradebook), copied by `released` for each test.

    A fresh gradebook costs nbgrader ~2 s (it shells out to alembic); copying is instant.
    """
    from autograder.release import release
    course = make_course(tmp_path_factory.mktemp("template") / "course")
    release(course)
    return course


@pytest.fixture
def released(released_template, tmp_path):
    """A course whose `release/` has been generated, private to the test."""
    root = tmp_path / "course"
    shutil.copytree(released_template.root, root)
    with tiny_checks():
        yield open_course(root)


@pytest.fixture(scope="session")
def graded(released_template, tmp_path_factory):
    """A course graded once for two students: `right` and `wrong_sign`. Treat as read-only."""
    root = tmp_path_factory.mktemp("graded") / "course"
    shutil.copytree(released_template.root, root)
    course = open_course(root)
    place(course, "right", submission(course, CORRECT))
    place(course, "wrong_sign", submission(course, WRONG_SIGN))
    with tiny_checks():
        rows = grade(course, ASSIGNMENT)
    return course, rows


# ---------------------------------------------------------------- the grading box

@pytest.fixture(scope="session")
def sandbox_ready():
    """Skip a test that needs the grading box on a machine that cannot build it.

    With GD_REQUIRE_SANDBOX=1 (CI sets it) the test fails instead: a machine that lost
    its sandbox must not pass by skipping every attack.
    """
    import os

    from autograder.sandbox import SandboxUnavailable, check_available
    try:
        check_available(slots=2)
    except SandboxUnavailable as error:
        message = f"no grading sandbox here: {error}"
        if "install-sandbox" not in message:
            message += " (set it up once with `sudo scripts/install-sandbox`)"
        if os.environ.get("GD_REQUIRE_SANDBOX") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def local_cluster(sandbox_ready):
    """A Dask `LocalCluster` on 127.0.0.1: 2 worker processes, 1 thread each; shared by the
    tests that grade on Dask. Yields its `.address` and its `.workers`' addresses."""
    from types import SimpleNamespace

    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster:
        yield SimpleNamespace(address=cluster.scheduler_address,
                              workers=[w.worker_address for w in cluster.workers.values()])


# ---------------------------------------------------------------- the real course's fixture class

REPO = Path(__file__).resolve().parents[1]
EXPECTED_SCORES = json.loads((REPO / "tests" / "fixtures" / "expected_scores.json").read_text())


def class_of(root, assignment, *, copies=1, pause=0.0):
    """A course copy whose class is the assignment's fixtures, `copies` times over (students
    `<fixture>_<n>`); with `pause`, each notebook ends with a cell that sleeps that long, so
    a run lasts long enough to be interrupted."""
    course = copy_course(open_course(REPO), root)
    notebook = next((REPO / "source" / assignment).glob("*.ipynb")).name
    for copy in range(copies):
        for fixture in sorted((REPO / "tests" / "fixtures" / "submissions" / assignment).glob("*.ipynb")):
            nb = nbformat.read(fixture, as_version=4)
            if pause:
                nb.cells.append(nbformat.v4.new_code_cell(f"import time\ntime.sleep({pause})"))
            student = fixture.stem if copies == 1 else f"{fixture.stem}_{copy}"
            target = course.submitted_dir / student / assignment / notebook
            target.parent.mkdir(parents=True)
            nbformat.write(nb, target)
    return course


def gradebook_scores(course, assignment):
    with open_gradebook(course) as gradebook:
        return {s.student.id: s.score for s in gradebook.assignment_submissions(assignment)}



def sandbox_processes():
    """`{pid: user}` of every process on this machine running as one of the box's users."""
    import os
    import pwd

    from autograder.sandbox import MAX_SLOTS, USER_PREFIX
    users = {}
    for slot in range(MAX_SLOTS):
        try:
            entry = pwd.getpwnam(f"{USER_PREFIX}{slot}")
        except KeyError:
            continue
        users[str(entry.pw_uid)] = entry.pw_name
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as status:
                uid_line = next(line for line in status if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue  # gone while we looked
        owners = [users[uid] for uid in uid_line.split()[1:] if uid in users]
        if owners:
            found[int(pid)] = owners[0]
    return found


# ---------------------------------------------------------------- Jupyter servers started by tests

JUPYTER_TOKEN = "course-test-token"
# The notification settings JupyterLab 4 reads (schema: @jupyterlab/apputils-extension/
# notification.json): no news pop-up over the notebook, no update check going online.
QUIET_LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                      {"fetchNews": "false", "checkForUpdates": False}}


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url):
    """True once an HTTP server answers at `url`, whatever it answers (a 403 or 404 counts)."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, if only to refuse
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextlib.contextmanager
def jupyter_server(module, root, state_dir, *args, ready_path="/api/status", timeout=60):
    """Run `python -m <module>` (jupyterlab, voila) on 127.0.0.1 in `root`; yield its base URL.

    The server gets its own runtime, config, settings and workspace folders under `state_dir`
    (nothing of the machine's user setup leaks in, JupyterLab's news pop-up is off), and no
    MPLBACKEND: CI exports Agg, and a kernel that inherits it draws no figures.
    The server is stopped by its PID when the block ends: terminate, then kill.
    """
    import subprocess
    import sys
    import time
    state_dir = Path(state_dir)
    settings = state_dir / "lab-settings"
    for name, values in QUIET_LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "JUPYTER_RUNTIME_DIR": str(state_dir / "runtime"),
           "JUPYTER_CONFIG_DIR": str(state_dir / "config"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(state_dir / "workspaces")}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (state_dir / f"{module}.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", module, "--no-browser", f"--port={port}", *args],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(f"{base}{ready_path}"):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{module} exited or did not answer within {timeout} s; its log: {log.name}")
            time.sleep(0.25)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def lab_server(root, state_dir):
    """JupyterLab as `make lab` starts it (nbgrader's extensions on), serving `root`."""
    return jupyter_server("jupyterlab", root, state_dir, "--ip=127.0.0.1",
                          f"--IdentityProvider.token={JUPYTER_TOKEN}", "--notebook-dir=.",
                          "--ServerApp.port_retries=0", "--allow-root")
