"""The gradebook: nbgrader's own, SQLite by default, PostgreSQL through the course config's
`db_url`, shared by graders on several machines; one grading run per assignment at a time.

PostgreSQL runs from Debian's package, started here in a temporary data directory on
127.0.0.1 and stopped here (see services.py).
"""
import io
import subprocess
import sys

import pytest
from conftest import EXPECTED_SCORES as EXPECTED
from conftest import class_of, gradebook_scores
from services import postgres_server, service_env

from autograder.course import open_gradebook
from autograder.grade import grade, results_dir
from autograder.gradebook import GradingBusy, grading_claim

pytestmark = pytest.mark.usefixtures("sandbox_ready")


def on_database(course, url):
    """Point the course's own config at `url`, as an instructor would."""
    with course.config_file.open("a") as config:
        config.write(f'\nc.CourseDirectory.db_url = "{url}"\n')
    return course


def grade_command(course, assignment, *args):
    return subprocess.Popen([sys.executable, "-m", "autograder", "--course", str(course.root),
                             "grade", assignment, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=service_env())


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as url:
        yield url


def test_scores_go_to_the_postgresql_gradebook_the_config_names(tmp_path):
    with postgres_server("config_named") as url:
        course = on_database(class_of(tmp_path, "02_gradient_step"), url)
        rows = grade(course, "02_gradient_step", seed=3, slots=2, progress_stream=io.StringIO())
        assert {r.student: r.score for r in rows} == EXPECTED["02_gradient_step"]
        assert gradebook_scores(course, "02_gradient_step") == EXPECTED["02_gradient_step"]
        # Nothing fell back to a fresh SQLite file (nbgrader issue 1661's symptom).
        assert not (course.root / "gradebook.db").exists()


def test_concurrent_graders_share_an_empty_postgresql_gradebook(tmp_path, local_cluster):
    """Three graders start at once on one empty database, from three course copies (three
    machines): one on the Dask cluster, two on their own machine; every score lands."""
    with postgres_server("shared") as url:
        courses = {assignment: on_database(class_of(tmp_path / assignment, assignment), url)
                   for assignment in sorted(EXPECTED)}
        first, *others = sorted(EXPECTED)
        runs = {first: grade_command(courses[first], first, "--scheduler", local_cluster.address)}
        runs.update({a: grade_command(courses[a], a, "--workers", "1") for a in others})
        for assignment, run in runs.items():
            out, err = run.communicate(timeout=300)
            assert run.returncode == 0, f"{assignment}: {err}"
        reader = courses[first]  # any copy reads the one shared gradebook
        for assignment in EXPECTED:
            assert gradebook_scores(reader, assignment) == EXPECTED[assignment]
        with open_gradebook(reader) as gradebook:
            assert len(gradebook.students) == len(set().union(*map(set, EXPECTED.values())))


def test_a_second_grader_of_one_assignment_waits_its_turn(tmp_path, postgres):
    """Never the same student graded twice at once: while one grader holds an assignment,
    another (same course folder, or another machine on the shared gradebook) is refused."""
    here = on_database(class_of(tmp_path / "here", "01_sigmoid"), postgres)
    there = on_database(class_of(tmp_path / "there", "01_sigmoid"), postgres)
    with grading_claim(here, "01_sigmoid", results_dir(here, "01_sigmoid")):
        with pytest.raises(GradingBusy, match="already being graded in this course"):
            grade(here, "01_sigmoid", progress_stream=io.StringIO())
        run = grade_command(there, "01_sigmoid")
        out, err = run.communicate(timeout=120)
        assert run.returncode == 1
        assert "already being graded by another grader on the shared gradebook" in err
        # Another assignment is free to go.
        with grading_claim(there, "02_gradient_step", results_dir(there, "02_gradient_step")):
            pass
    rows = grade(here, "01_sigmoid", seed=3, slots=1, progress_stream=io.StringIO())
    assert {r.student: r.score for r in rows} == EXPECTED["01_sigmoid"]


def test_the_sqlite_default_is_the_course_folders_own_file(tmp_path):
    course = class_of(tmp_path, "01_sigmoid")
    grade(course, "01_sigmoid", seed=3, slots=1, progress_stream=io.StringIO())
    assert (course.root / "gradebook.db").is_file()
    assert gradebook_scores(course, "01_sigmoid") == EXPECTED["01_sigmoid"]
