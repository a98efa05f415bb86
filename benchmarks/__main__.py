"""Run every benchmark and print one figure a line as `name: value unit`.

Peers run in the same process and on the same inputs, so ratios compare like with like.
"""
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from autograder import reference  # noqa: E402
from autograder.course import copy_course, open_course, open_gradebook, tools_env  # noqa: E402
from autograder.grade import grade  # noqa: E402
from gdlab.data import initial_weights, load_study_habits  # noqa: E402
from gdlab.plots import plot_loss  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "02_gradient_step"
CLASS_SIZE = 12  # copies of the fixtures; enough to see per-submission cost past start-up


def report(name, value, unit):
    print(f"{name}: {value:.3g} {unit}", flush=True)


def bench_notebooks():
    """Seconds to run each source notebook top to bottom in a fresh kernel."""
    for path in sorted((ROOT / "source").glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        report(f"notebook_run_{path.parent.name}", time.perf_counter() - start, "s")


def bench_training_update(repeats=20):
    """What one slider change of the training explorer costs: train 50 epochs and redraw."""
    features, targets = load_study_habits()
    weights = initial_weights(3, 2, seed=42)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        _, losses = reference.train(features, targets, weights, 10 ** (-1 + i * 0.2), 50)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        plot_loss(ax, losses)
        fig.canvas.draw()
        plt.close(fig)
        times.append(time.perf_counter() - start)
    report("training_update_median", 1000 * statistics.median(times), "ms")
    report("training_update_worst", 1000 * max(times), "ms")


def make_class(root):
    """A course copy with CLASS_SIZE students, cycling through the assignment's fixtures."""
    copy_course(open_course(ROOT), root)
    fixtures = sorted((ROOT / "tests" / "fixtures" / "submissions" / ASSIGNMENT).glob("*.ipynb"))
    notebook = next((ROOT / "source" / ASSIGNMENT).glob("*.ipynb")).name
    for i in range(CLASS_SIZE):
        target = root / "submitted" / f"student_{i:03d}" / ASSIGNMENT / notebook
        target.parent.mkdir(parents=True)
        shutil.copy(fixtures[i % len(fixtures)], target)


def bench_grading():
    """Submissions per second: the grade command against plain `nbgrader autograde`, same class."""
    env = tools_env()
    with tempfile.TemporaryDirectory() as ours_dir, tempfile.TemporaryDirectory() as plain_dir:
        ours_root, plain_root = Path(ours_dir), Path(plain_dir)
        make_class(ours_root)
        make_class(plain_root)

        start = time.perf_counter()
        rows = grade(open_course(ours_root), ASSIGNMENT)
        ours = CLASS_SIZE / (time.perf_counter() - start)

        nbgrader = [sys.executable, "-m", "nbgrader"]
        subprocess.run(nbgrader + ["generate_assignment", ASSIGNMENT, "--force"], cwd=plain_root,
                       env=env, check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run(nbgrader + ["autograde", ASSIGNMENT], cwd=plain_root, env=env,
                       check=True, capture_output=True)
        plain = CLASS_SIZE / (time.perf_counter() - start)

        with open_gradebook(open_course(plain_root)) as gradebook:
            plain_scores = {s.student.id: s.score for s in gradebook.assignment_submissions(ASSIGNMENT)}
        same = all(plain_scores.get(row.student) == row.score for row in rows)
    report("grade_command_throughput", ours, "submissions/s")
    report("plain_nbgrader_throughput", plain, "submissions/s")
    report("identical_scores", float(same), "bool")
    print(f"speedup: {ours / plain:.2f}")


if __name__ == "__main__":
    bench_notebooks()
    bench_training_update()
    bench_grading()
