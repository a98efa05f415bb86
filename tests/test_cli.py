"""Command line: release, grade and demo, end to end on a throwaway course."""
import json
import subprocess
import sys
import zipfile

from conftest import ASSIGNMENT, CORRECT, NOTEBOOK, WRONG_SIGN, submission

from nbformat.v4 import new_notebook

from autograder.cli import main


def test_release_from_the_course_root(course):
    """`python -m autograder release`, run in the course folder, writes release/ and the bundle."""
    done = subprocess.run([sys.executable, "-m", "autograder", "release"], cwd=course.root,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"released release/{ASSIGNMENT}/{NOTEBOOK}.ipynb" in done.stdout
    assert (course.dist_dir / "student-bundle.zip").exists()


def test_grade_from_lms_zip(released, tmp_path, capsys):
    """`grade --from download.zip --feedback`: summary, feedback, grades.csv, results and report."""
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("alice_01_sigmoid.ipynb", submission(released, CORRECT))
        zipped.writestr("bob_12345_sigmoid.ipynb", submission(released, WRONG_SIGN))
        zipped.writestr("carol_01_sigmoid.ipynb", "")
    status = main(["grade", ASSIGNMENT, "--from", str(archive), "--course", str(released.root),
                   "--feedback"])
    out = capsys.readouterr().out
    assert status == 0
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert lines["alice"][:2] == ["3/3", "graded"]
    assert lines["bob"][:2] == ["1/3", "graded"]
    assert lines["carol"][:3] == ["0/3", "flagged", "unreadable:"]  # 0, for a human to look at
    results = released.root / "grading" / ASSIGNMENT
    assert (results / "results.csv").read_text().count("\n") == 4  # header + one per student
    assert "carol" in (results / "report.html").read_text()
    assert (released.feedback_dir / "bob" / ASSIGNMENT / f"{NOTEBOOK}.html").exists()
    assert "carol" in (released.root / "grades.csv").read_text()


def test_bad_course_is_a_clear_error(tmp_path, capsys):
    """A folder without nbgrader_config.py gives exit status 1 and one line, no traceback."""
    assert main(["--course", str(tmp_path), "release"]) == 1
    assert "not a course directory" in capsys.readouterr().err


def test_demo_grades_the_sample_class_in_a_scratch_copy(released, capsys):
    """The demo grades demo/class in build/demo-course/, leaves submitted/ alone, reruns clean."""
    sample = released.root / "demo" / "class"
    for student, body in (("fully_correct", CORRECT), ("partly_wrong", WRONG_SIGN)):
        path = sample / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(submission(released, body))
    lessons = released.root / "notebooks"
    lessons.mkdir()
    (lessons / "start_here.ipynb").write_text(json.dumps(new_notebook()))
    assert main(["demo", "--course", str(released.root)]) == 0
    out = capsys.readouterr().out
    demo = released.root / "build" / "demo-course"
    assert (demo / "dist" / "student-bundle" / "notebooks" / "start_here.ipynb").is_file()
    assert "fully_correct  3/3" in out and "partly_wrong   1/3" in out
    assert str(demo / "feedback" / "partly_wrong" / ASSIGNMENT / f"{NOTEBOOK}.html") in out
    assert not released.submitted_dir.exists()
    stale = demo / "submitted" / "stale" / ASSIGNMENT
    stale.mkdir(parents=True)
    (stale / f"{NOTEBOOK}.ipynb").write_text(json.dumps({}))
    assert main(["demo", "--course", str(released.root)]) == 0
    assert not stale.exists()


def test_demo_refuses_to_wipe_a_folder_it_did_not_make(released, capsys):
    """If build/demo-course/ holds something else, the demo stops instead of deleting it."""
    (released.root / "demo" / "class").mkdir(parents=True)
    keep = released.root / "build" / "demo-course" / "precious.txt"
    keep.parent.mkdir(parents=True)
    keep.write_text("mine")
    assert main(["demo", "--course", str(released.root)]) == 1
    assert "not a demo course" in capsys.readouterr().err and keep.exists()
