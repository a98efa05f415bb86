"""Feedback that names the mistake: each classic slip in `tests/fixtures/mistakes/` is graded
by the hardened grader and must be told what `expected_messages.json` says; honest
submissions are told none of it. Plus the diagnoses on their own, without a box."""
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from autograder import reference
from autograder.course import copy_course, open_course
from autograder.grade import grade
from gdlab import diagnose

ROOT = Path(__file__).resolve().parents[1]
MISTAKES = ROOT / "tests" / "fixtures" / "mistakes"
HONEST = ROOT / "tests" / "fixtures" / "submissions"
EXPECTED = json.loads((MISTAKES / "expected_messages.json").read_text())
CASES = [(assignment, mistake) for assignment, mistakes in EXPECTED.items() for mistake in mistakes]


def words(text):
    return " ".join(text.split())


def failed_checks(course, student, assignment):
    """test grade_id -> the message its output shows, from the autograded notebook."""
    [path] = (course.autograded_dir / student / assignment).glob("*.ipynb")
    messages = {}
    for cell in json.loads(path.read_text())["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id", "")
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                messages[grade_id] = words(output["evalue"])
    return messages


@pytest.fixture(scope="module")
def graded(sandbox_ready, tmp_path_factory):
    """Every mistake and every honest fixture, graded once (one batch per assignment)."""
    course = copy_course(open_course(ROOT), tmp_path_factory.mktemp("mistakes") / "course")
    for assignment in EXPECTED:
        name = next((ROOT / "release" / assignment).glob("*.ipynb")).name
        sources = [(f"mistake_{p.stem}", p) for p in (MISTAKES / assignment).glob("*.ipynb")]
        sources += [(f"honest_{p.stem}", p) for p in (HONEST / assignment).glob("passes_*.ipynb")]
        for student, path in sources:
            target = course.submitted_dir / student / assignment / name
            target.parent.mkdir(parents=True)
            shutil.copyfile(path, target)
        grade(course, assignment, seed=3, progress_stream=io.StringIO())
    return course


@pytest.mark.parametrize("assignment, mistake", CASES)
def test_each_mistake_is_named(graded, assignment, mistake):
    checks = failed_checks(graded, f"mistake_{mistake}", assignment)
    for grade_id, message in EXPECTED[assignment][mistake].items():
        assert words(message) in checks.get(grade_id, ""), checks


@pytest.mark.parametrize("assignment", sorted(EXPECTED))
def test_honest_submissions_are_told_no_mistake(graded, assignment):
    slips = [words(text) for text in diagnose.SLIPS.values()]
    honest = [p.stem for p in (HONEST / assignment).glob("passes_*.ipynb")]
    assert honest
    for student in honest:
        assert failed_checks(graded, f"honest_{student}", assignment) == {}
        text = words((graded.autograded_dir / f"honest_{student}" / assignment).glob(
            "*.ipynb").__next__().read_text())
        assert not any(slip in text for slip in slips)


def test_every_mistake_fixture_has_its_expected_messages():
    on_disk = {(p.parent.name, p.stem) for p in MISTAKES.glob("*/*.ipynb")}
    assert on_disk == set(CASES)


QUIZ = reference.one_step(**reference.QUIZ)
GIVEN = {**reference.QUIZ, **{k: QUIZ[k] for k in ("h", "nn_output", "error", "error_term")}}


@pytest.mark.parametrize("name, wrong, slip", [
    ("error", -QUIZ["error"], "error_sign"),
    ("nn_output", QUIZ["h"], "no_sigmoid"),
    ("nn_output", 1 - QUIZ["nn_output"], "exponent_sign"),
    ("error_term", QUIZ["error"], "no_slope"),
    ("del_w", QUIZ["del_w"] * GIVEN["learnrate"], "learnrate_twice"),
    ("del_w", np.sum(QUIZ["del_w"]), "summed"),
    ("del_w", [np.inf, 0, 0, 0], "not_finite"),
])
def test_a_slip_is_named_from_the_given_quantities(name, wrong, slip):
    assert diagnose.explain_step(name, wrong, **GIVEN) == diagnose.SLIPS[slip]
    assert diagnose.explain_step(name, QUIZ[name], **GIVEN) is None


def test_no_message_shows_a_number():
    assert not any(re.search(r"\d\.\d", text) for text in diagnose.SLIPS.values())
