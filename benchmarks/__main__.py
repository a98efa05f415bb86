"""Run every benchmark and print one figure a line as `name: value unit`.

Peers run in the same process and on the same inputs, so ratios compare like with like.
"""
import contextlib
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from autograder import reference  # noqa: E402
from autograder.course import copy_course, open_course, open_gradebook, tools_env  # noqa: E402
from autograder.grade import grade  # noqa: E402
import numpy as np  # noqa: E402

from gdlab import widgets  # noqa: E402
from gdlab.data import initial_weights, load_study_habits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "02_gradient_step"
CLASS_SIZE = 240  # mixed: the assignment's fixtures (right and wrong) and broken files
BROKEN_EVERY = 12


def report(name, value, unit):
    print(f"{name}: {value:.3g} {unit}", flush=True)


def bench_notebooks():
    """Seconds to run each release notebook, its solution filled in, top to bottom in a fresh
    kernel (the committed `passes_all` fixture is exactly that)."""
    for path in sorted((ROOT / "tests" / "fixtures" / "submissions").glob("*/passes_all.ipynb")):
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        report(f"notebook_run_{path.parent.name}", time.perf_counter() - start, "s")


def bench_widget_updates(changes=20):
    """Milliseconds from a slider change to the updated plot (compute and render) for each
    learning-rate explorer, median and worst of `changes` changes."""
    features, targets = load_study_habits()
    quiz = reference.QUIZ
    explorers = {
        "step_explorer": (lambda: widgets.step_explorer(
            reference.gradient_step, reference.sigmoid, quiz["x"], quiz["y"], quiz["w"])[0],
            np.linspace(0.1, 20, changes)),
        "training_explorer": (lambda: widgets.training_explorer(
            reference.train, features, targets, initial_weights(3, 2, seed=42))[0],
            np.logspace(-2, 3.5, changes)),
        "descent_path_explorer": (lambda: widgets.descent_path_explorer(
            reference.gradient_step, reference.sigmoid, np.array([0.1, 0.3]), 0.2,
            np.array([-0.8, 0.5]))[0], np.logspace(-1, 2.5, changes)),
    }
    # Each update renders its figure to PNG itself, as the inline backend would.
    for name, (build, values) in explorers.items():
        times = []
        with contextlib.redirect_stdout(io.StringIO()):  # outside a kernel, display() prints
            slider = build()
        for value in values:
            start = time.perf_counter()
            slider.value = float(value)  # runs the explorer's update, as a slider does
            times.append(time.perf_counter() - start)
        report(f"widget_update_{name}_median", 1000 * statistics.median(times), "ms")
        report(f"widget_update_{name}_worst", 1000 * max(times), "ms")


def make_class(root):
    """A course copy with CLASS_SIZE students: the assignment's fixtures in turn (each file
    made unique, as real submissions are), and every BROKEN_EVERY-th file cut in half."""
    copy_course(open_course(ROOT), root)
    fixtures = sorted((ROOT / "tests" / "fixtures" / "submissions" / ASSIGNMENT).glob("*.ipynb"))
    notebook = next((ROOT / "source" / ASSIGNMENT).glob("*.ipynb")).name
    for i in range(CLASS_SIZE):
        target = root / "submitted" / f"student_{i:03d}" / ASSIGNMENT / notebook
        target.parent.mkdir(parents=True)
        nb = json.loads(fixtures[i % len(fixtures)].read_text())
        nb["metadata"]["submitted_by"] = f"student_{i:03d}"
        text = json.dumps(nb, indent=1)
        target.write_text(text[: len(text) // 2] if i % BROKEN_EVERY == BROKEN_EVERY - 1 else text)


def peak_rss_mb(who):
    """Peak resident memory in MB (Linux reports KB) of this process or its waited children."""
    return resource.getrusage(who).ru_maxrss / 1024


def bench_grading():
    """Submissions per second: hardened grading against plain serial `nbgrader autograde`,
    on the same class, both without feedback pages; honest scores must agree."""
    env = tools_env()
    with tempfile.TemporaryDirectory() as ours_dir, tempfile.TemporaryDirectory() as plain_dir:
        ours_root, plain_root = Path(ours_dir), Path(plain_dir)
        make_class(ours_root)
        make_class(plain_root)

        start = time.perf_counter()
        rows = grade(open_course(ours_root), ASSIGNMENT)
        ours = CLASS_SIZE / (time.perf_counter() - start)
        workers_peak = peak_rss_mb(resource.RUSAGE_CHILDREN)
        grader_peak = peak_rss_mb(resource.RUSAGE_SELF)

        nbgrader = [sys.executable, "-m", "nbgrader"]
        subprocess.run(nbgrader + ["generate_assignment", ASSIGNMENT, "--force"], cwd=plain_root,
                       env=env, check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run(nbgrader + ["autograde", ASSIGNMENT], cwd=plain_root, env=env,
                       capture_output=True)  # exits non-zero for the broken files; scores stay
        plain = CLASS_SIZE / (time.perf_counter() - start)

        with open_gradebook(open_course(plain_root)) as gradebook:
            plain_scores = {s.student.id: s.score for s in gradebook.assignment_submissions(ASSIGNMENT)}
        honest = [row for row in rows if row.status == "graded"]
        same = all(plain_scores.get(row.student) == row.score for row in honest)
    report("class_size", CLASS_SIZE, "submissions")
    report("graded_rows", len(honest), "submissions")
    report("flagged_rows", sum(row.status == "flagged" for row in rows), "submissions")
    report("hardened_throughput", ours, "submissions/s")
    report("plain_nbgrader_throughput", plain, "submissions/s")
    report("hardened_grader_peak_memory", grader_peak, "MB")
    report("hardened_worker_peak_memory", workers_peak, "MB")
    report("honest_scores_identical", float(same), "bool")
    print(f"speedup: {ours / plain:.2f}")
def ship_only(plan, submission):
    """A Dask task that carries what a grading task carries and returns a full-size
    outcome (a real autograded notebook), but runs nothing: the cost of the round trip."""
    from autograder.core import Outcome, Result
    spec = plan.spec
    return Outcome(Result(submission.student, spec.name, "graded", 0.0, spec.max_score),
                   nbformat.from_dict(spec.source_nb), dict.fromkeys(spec.points, 0.0))


def bench_dask():
    """Grading on a 2-worker LocalCluster (1 thread each) against local grading on 2
    slots, same class; then the per-task cost of shipping work out and results back."""
    from distributed import LocalCluster

    from autograder.cluster import grade_on_cluster
    from autograder.core import Submission
    from autograder.grade import keep, load_assignment
    from autograder.gradebook import Recorder
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, \
            tempfile.TemporaryDirectory() as local_dir, tempfile.TemporaryDirectory() as dask_dir:
        local_root, dask_root = Path(local_dir), Path(dask_dir)
        make_class(local_root)
        make_class(dask_root)
        start = time.perf_counter()
        here = grade(open_course(local_root), ASSIGNMENT, slots=2, seed=11)
        local = CLASS_SIZE / (time.perf_counter() - start)
        start = time.perf_counter()
        there = grade(open_course(dask_root), ASSIGNMENT, scheduler=cluster.scheduler_address,
                      seed=11)
        on_dask = CLASS_SIZE / (time.perf_counter() - start)
        same = [(r.student, r.score, r.status) for r in here] == [
            (r.student, r.score, r.status) for r in there]

        spec = load_assignment(open_course(dask_root), ASSIGNMENT)
        todo = [Submission(path.parent.parent.name, path.read_bytes(), str(n))
                for n, path in enumerate(sorted(dask_root.glob(f"submitted/*/{ASSIGNMENT}/*.ipynb")))]
        start = time.perf_counter()
        returned = list(grade_on_cluster(cluster.scheduler_address, spec, 11, todo, task=ship_only))
        # Per worker thread: two threads share the wall time.
        round_trip = 2 * (time.perf_counter() - start) / len(returned)

        # What the driver alone does per submission (autograded notebook, gradebook row,
        # results line): the ceiling on a cluster's throughput, however many workers.
        course = open_course(dask_root)
        start = time.perf_counter()
        with Recorder(course, ASSIGNMENT) as recorder:
            for outcome in returned:
                keep(course, spec, outcome, course.submitted_dir / outcome.row.student / ASSIGNMENT,
                     recorder)
        recording = (time.perf_counter() - start) / len(returned)
    report("dask_local_throughput", local, "submissions/s")
    report("dask_cluster_throughput", on_dask, "submissions/s")
    report("dask_scores_identical", float(same), "bool")
    report("dask_task_round_trip", 1000 * round_trip, "ms")
    report("dask_task_round_trip_share", 100 * round_trip * on_dask / 2, "% of a worker's time per submission")
    report("driver_record_cost", 1000 * recording, "ms per submission (SQLite gradebook)")
    print(f"dask_vs_local: {on_dask / local:.2f}")


if __name__ == "__main__":
    bench_notebooks()
    bench_widget_updates()
    bench_grading()
    bench_dask()
