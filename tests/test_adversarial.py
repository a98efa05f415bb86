"""The adversarial corpus, graded in one batch: no attack earns a point or leaves the box,
and the batch, with an honest student in it, survives them all.

tests/fixtures/adversarial/ holds submissions that cheat, reach outside the box, break the
notebook format or try to kill their run (see its build.py); expected.json says what each
one must get. They are graded once, together, with small limits to keep the batch short.
"""
import contextlib
import hashlib
import importlib.util
import io
import json
import pwd
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import sandbox_processes

from autograder.course import copy_course, open_course
from autograder.grade import grade
from autograder.report import summary_table
from autograder.sandbox import MAX_SLOTS, USER_PREFIX, Limits
from autograder.text import printable

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "adversarial"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
ASSIGNMENT = "02_gradient_step"
NOTEBOOK = "gradient_step.ipynb"
CASES = EXPECTED[ASSIGNMENT]
HONEST = "graded_honest_full_marks"
# Short enough that the endless sleep costs seconds, long enough for the fork bomb's copies;
# reading bounds small enough that the corpus's hold-ups cost seconds, not minutes.
LIMITS = Limits(wall_seconds=10, cpu_seconds=3, read_seconds=5, submission_mb=2)
# Where the network case knocks (its notebook has these, fixed, in its code).
LISTEN_PORT = 47615
ABSTRACT_SOCKET = "\0gd-adversarial-listener"
# The attacks print this word when they get something they must not, and write files so named.
ESCAPED = "ESCAPED"
ESCAPE_FILE = "ADVERSARIAL_ESCAPE"
# What grading may write in a course; everything else must be as it was before the batch.
GRADER_OUTPUTS = ("autograded/", "grading/", "feedback/", "gradebook.db", "submitted/.receipts/")
# Intake copies a renamed notebook to the name nbgrader expects.
INTAKE_COPIES = {f"submitted/graded_renamed_file_full_marks/{ASSIGNMENT}/{NOTEBOOK}"}


def case_files():
    """case name -> its file or folder in the corpus."""
    return {path.name.removesuffix(".ipynb"): path for path in (CORPUS / ASSIGNMENT).iterdir()}


def submit(course, case, path):
    """Put a case where nbgrader's layout wants it: a file as the notebook, a folder as is."""
    target = course.submitted_dir / case / ASSIGNMENT
    if path.is_dir():
        shutil.copytree(path, target)
    else:
        target.mkdir(parents=True)
        shutil.copyfile(path, target / NOTEBOOK)


def digests(root):
    """sha256 of every file under `root` that grading may not touch, by relative path."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not relative.startswith(GRADER_OUTPUTS):
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@contextlib.contextmanager
def listeners():
    """A TCP port on 127.0.0.1 and an abstract Unix socket for the network case to knock on;
    yields a function that says who knocked."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", LISTEN_PORT))
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(ABSTRACT_SOCKET)
    for listener in (tcp, unix):
        listener.listen(8)
        listener.setblocking(False)

    def knocks():
        arrived = []
        for name, listener in (("tcp", tcp), ("abstract unix", unix)):
            with contextlib.suppress(BlockingIOError):
                while True:
                    listener.accept()[0].close()
                    arrived.append(name)
        return arrived

    try:
        yield knocks
    finally:
        tcp.close()
        unix.close()


def outputs(notebook_path):
    """All the text a run left in an autograded notebook's outputs."""
    notebook = json.loads(notebook_path.read_text())
    return "".join("".join(output.get("text", "")) + output.get("evalue", "")
                   for cell in notebook["cells"] for output in cell.get("outputs", []))


@dataclass
class Batch:
    course: object
    rows: list
    before: dict      # digests before grading
    after: dict       # and after
    knocks: list      # connections that reached the host's listeners
    survivors: dict   # sandbox-user processes still alive after the batch
    seconds: float
    host: dict        # kernel objects of the slot users on the host, before and after


@pytest.fixture(scope="module", params=["on this machine", "on Dask workers"])
def batch(sandbox_ready, tmp_path_factory, request):
    """The whole corpus plus the honest student, graded once in one batch on two slots:
    here, then on a LocalCluster's two workers (each hosting its own sandbox)."""
    course = copy_course(open_course(ROOT), tmp_path_factory.mktemp("adversarial"))
    for case, path in sorted(case_files().items()):
        submit(course, case, path)
    before = digests(course.root)
    host_before = host_objects()
    where = {"slots": 2}
    if request.param == "on Dask workers":
        where = {"scheduler": request.getfixturevalue("local_cluster").address}
    with listeners() as knocks:
        start = time.monotonic()
        rows = grade(course, ASSIGNMENT, seed=1, limits=LIMITS, progress_stream=io.StringIO(),
                     **where)
        seconds = time.monotonic() - start
        arrived = knocks()
    deadline = time.monotonic() + 5  # a namespace's last processes take a moment to be reaped
    while sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    return Batch(course, rows, before, digests(course.root), arrived, sandbox_processes(), seconds,
                 {"before": host_before, "after": host_objects()})


def host_objects():
    """What the slot users hold on the host that could outlive a child: keys (by uid, from
    /proc/key-users) and pseudo-terminals (the host's one count of them)."""
    slot_uids = {pwd.getpwnam(f"{USER_PREFIX}{slot}").pw_uid for slot in range(MAX_SLOTS)}
    keys = {}
    for line in Path("/proc/key-users").read_text().splitlines():
        uid, usage = line.split(":", 1)
        if int(uid) in slot_uids:
            keys[int(uid)] = int(usage.split()[1].split("/")[0])  # nkeys
    return {"keys": sum(keys.values()),
            "pseudo-terminals": int(Path("/proc/sys/kernel/pty/nr").read_text())}


# ---------------------------------------------------------------- the corpus itself

def test_every_case_has_an_expected_outcome_and_is_named_by_it():
    assert set(case_files()) == set(CASES)
    for case, expected in CASES.items():
        assert case.startswith(expected["status"] + "_"), case
        assert set(expected) == {"status", "score", "reason"}, case


def test_rebuilding_the_corpus_gives_identical_bytes(tmp_path):
    subprocess.run([sys.executable, str(CORPUS / "build.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True, timeout=120)

    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in sorted((root / ASSIGNMENT).rglob("*")) if p.is_file()}

    rebuilt, committed = files(tmp_path), files(CORPUS)
    assert sorted(rebuilt) == sorted(committed)
    assert [name for name in rebuilt if rebuilt[name] != committed[name]] == []


# ---------------------------------------------------------------- the batch

def test_every_student_has_exactly_one_row(batch):
    students = [row.student for row in batch.rows]
    assert sorted(students) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_gets_its_expected_outcome(batch, case):
    row = next(row for row in batch.rows if row.student == case)
    expected = CASES[case]
    assert (row.status, row.score) == (expected["status"], expected["score"]), row.reason
    assert expected["reason"] in row.reason
    assert row.max_score == 9


def test_every_reason_is_text_a_file_or_terminal_takes(batch):
    """Reasons quote what students did (paths they opened): as UTF-8 they must still encode,
    and nothing in them (or in the printed table) may act on a terminal or a page."""
    for row in batch.rows:
        row.reason.encode("utf-8")
        "".join(row.flags).encode("utf-8")
    table = summary_table(batch.rows)
    assert printable(table.replace("\n", " ")) == table.replace("\n", " ")
    assert len(table.splitlines()) == len(batch.rows) + 2  # no row hides another


def test_honest_student_in_the_same_batch_keeps_full_marks(batch):
    row = next(row for row in batch.rows if row.student == HONEST)
    assert (row.status, row.score, row.flags, row.reason) == ("graded", 9, (), "")


def test_course_is_unchanged_outside_the_graders_outputs(batch):
    changed = [path for path, digest in batch.before.items() if batch.after.get(path) != digest]
    assert changed == []
    assert set(batch.after) - set(batch.before) == INTAKE_COPIES


def test_no_attack_got_out_of_the_box(batch):
    escaped = {}
    for notebook in sorted(batch.course.autograded_dir.glob(f"*/{ASSIGNMENT}/{NOTEBOOK}")):
        text = outputs(notebook)
        if ESCAPED in text:
            escaped[notebook.parts[-3]] = text[text.index(ESCAPED):][:200]
    assert escaped == {}
    assert batch.knocks == []
    places = [batch.course.root, ROOT, ROOT / "gdlab", Path(sys.prefix), Path("/")]
    planted = [place / name for place in places for name in (ESCAPE_FILE, ESCAPE_FILE + ".pth")]
    planted += list(batch.course.root.rglob(ESCAPE_FILE + "*"))
    assert [path for path in planted if path.exists()] == []


def test_no_process_of_a_sandbox_user_survives_the_batch(batch):
    assert batch.survivors == {}


def test_no_kernel_object_of_a_sandbox_user_outlives_the_batch(batch):
    """The corpus tries keyrings and pseudo-terminals: none is left on the host."""
    assert batch.host["after"]["keys"] == 0
    assert batch.host["after"]["pseudo-terminals"] <= batch.host["before"]["pseudo-terminals"]


def test_answers_left_in_one_run_are_not_found_in_the_next(sandbox_ready, tmp_path):
    """Every channel pair, across two grading runs: the students who leave their answers
    are graded first, those who look for them in a second run; nothing gets across."""
    course = copy_course(open_course(ROOT), tmp_path)
    pairs = {case: path for case, path in case_files().items() if "_channel_" in case}
    for step in ("_1_leaves_", "_2_looks_"):
        (course.submitted_dir).mkdir(exist_ok=True)
        for case, path in pairs.items():
            if step in case:
                submit(course, case, path)
        rows = grade_small(course)
    for case in pairs:
        assert (rows[case].status, rows[case].score) == (CASES[case]["status"],
                                                        CASES[case]["score"]), rows[case].reason
    assert host_objects()["keys"] == 0


def test_the_batch_takes_well_under_two_minutes(batch):
    assert batch.seconds < 120


# ---------------------------------------------------------------- known holes
# Holes the corpus found, each closed, each kept closed by its test.

def load_script(path):
    """A fixture builder script, imported by its path (tests/fixtures is no package)."""
    spec = importlib.util.spec_from_file_location(f"script_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grade_small(course, submissions=None):
    """Grade a handful of submissions on one slot; rows by student."""
    rows = grade(course, ASSIGNMENT, submissions, seed=1, slots=1, limits=LIMITS,
                 progress_stream=io.StringIO())
    return {row.student: row for row in rows}


def test_a_symlinked_notebook_is_refused_and_the_batch_goes_on(sandbox_ready, tmp_path):
    course = copy_course(open_course(ROOT), tmp_path)
    submit(course, HONEST, CORPUS / ASSIGNMENT / f"{HONEST}.ipynb")
    link = course.submitted_dir / "links_to_the_source" / ASSIGNMENT / NOTEBOOK
    link.parent.mkdir(parents=True)
    link.symlink_to(Path("../../../source") / ASSIGNMENT / NOTEBOOK)
    rows = grade_small(course)
    linked = rows["links_to_the_source"]
    assert (linked.status, linked.score) == ("flagged", 0)
    assert rows[HONEST].score == 9


def test_a_symlink_in_a_download_does_not_hand_in_the_instructors_notebook(sandbox_ready,
                                                                             tmp_path):
    course = copy_course(open_course(ROOT), tmp_path / "course")
    download = tmp_path / "download"
    download.mkdir()
    (download / f"mallory_{NOTEBOOK}").symlink_to(course.source_dir / ASSIGNMENT / NOTEBOOK)
    row = grade_small(course, download)["mallory"]
    assert row.score is None or row.status == "flagged", row


# A sigmoid_prime that does not go through sigmoid (worth 3 of 5), plus lines in the grader's
# format that answer the "goes through sigmoid" probes as if it did, written at every call.
FORGED_SPY = '''import gc
import json
import os


def sigmoid_prime(x):
    """The slope by its own formula, and a forged word about it to the grader."""
    job = next(o for o in gc.get_objects() if isinstance(o, dict) and "reruns" in o)
    for number, probe in enumerate(job["probes"]):
        if probe.get("swap"):
            value = {"shape": [2], "data": [0.1 * number, 0.2]}  # differs with the stand-in
            line = json.dumps({"probe": probe["id"], "ok": True, "value": value})
            for fd in range(3, 64):
                try:
                    os.write(fd, (line + "\\n").encode())
                except OSError:
                    pass
    e = np.exp(-np.abs(x))
    return e / (1 + e) ** 2
'''


def test_a_forged_probe_line_earns_no_points(sandbox_ready, tmp_path):
    fixtures = load_script(ROOT / "tests" / "fixtures" / "build.py")
    notebook = fixtures.fill("01_sigmoid", {"sigmoid": "solution", "sigmoid_prime": FORGED_SPY})
    course = copy_course(open_course(ROOT), tmp_path)
    target = course.submitted_dir / "forger" / "01_sigmoid" / "sigmoid.ipynb"
    target.parent.mkdir(parents=True)
    target.write_text(fixtures.dumps(notebook))
    (row,) = grade(course, "01_sigmoid", seed=1, slots=1, limits=LIMITS,
                   progress_stream=io.StringIO())
    assert row.status == "flagged" and row.score <= 3, row
    assert "result lines were not the grader's" in row.reason
