"""The real course: release/ is exactly what the release step generates, and nothing leaks."""
import json
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.course import copy_course, open_course
from autograder.release import LeakError, check_no_leaks, release

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rereleased(tmp_path_factory):
    """A copy of the course with release/ and the bundle regenerated from source/."""
    course = copy_course(open_course(ROOT), tmp_path_factory.mktemp("course"))
    return course, release(course)


def test_committed_release_has_no_drift(rereleased):
    course, released = rereleased
    assert len(released.notebooks) == 3
    for path in sorted((ROOT / "release").rglob("*.ipynb")):
        regenerated = course.release_dir / path.relative_to(ROOT / "release")
        assert regenerated.read_bytes() == path.read_bytes(), f"{path.name}: run `make release`"


def test_committed_release_has_no_leak():
    check_no_leaks(open_course(ROOT))  # raises LeakError naming file, cell and line


def test_bundle_has_lessons_package_and_no_instructor_material(rereleased):
    _, released = rereleased
    names = zipfile.ZipFile(released.bundle_zip).namelist()
    root = names[0].split("/")[0]
    assert f"{root}/notebooks/start_here.ipynb" in names
    assert f"{root}/gdlab/widgets.py" in names and f"{root}/gdlab/data/study_habits.csv" in names
    assert f"{root}/release/02_gradient_step/gradient_step.ipynb" in names
    assert not [n for n in names if "/autograder/" in n or "/source/" in n or "/tests/" in n]
    for name in names:
        text = zipfile.ZipFile(released.bundle_zip).read(name).decode("utf-8", "replace")
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "from autograder", "0.6899744811276125"):
            assert marker not in text, f"{name} holds {marker!r}"


def test_a_lesson_that_hands_out_a_solution_stops_the_release(rereleased):
    """notebooks/ ships to students: a copy of lesson 3's training loop there is refused."""
    course, _ = rereleased
    source = json.loads((ROOT / "source" / "03_gradient_descent" / "gradient_descent.ipynb").read_text())
    (train_cell,) = [c for c in source["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "train"]
    loop = "".join(line for line in train_cell["source"] if "### " not in line)  # no markers: just code
    lesson = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(loop)])
    nbformat.write(lesson, course.root / "notebooks" / "shortcut.ipynb")
    try:
        with pytest.raises(LeakError, match="shortcut.ipynb"):
            release(course)
    finally:
        (course.root / "notebooks" / "shortcut.ipynb").unlink()
