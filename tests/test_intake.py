"""Intake step: LMS folders, zips and nbgrader's layout become one record per student."""
import hashlib
import stat
import zipfile

import pytest
from conftest import ASSIGNMENT, CORRECT, NOTEBOOK, place, submission

from autograder.intake import (IntakeError, intake, read_receipts, safe_id,
                               student_from_filename)

TAGS = [ASSIGNMENT, NOTEBOOK]


def by_student(records):
    """Records keyed by student id."""
    return {record.student: record for record in records}


def expected_path(course, student):
    """Where nbgrader expects this student's notebook."""
    return course.submitted_dir / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"


def test_lms_folder_names_become_student_ids(released, tmp_path):
    """`alice_01_sigmoid`, `bob_12345_sigmoid`, `carol - sigmoid (1)` -> alice, bob, carol."""
    inbox = tmp_path / "lms"
    inbox.mkdir()
    good = submission(released, CORRECT)
    for name in ("alice_01_sigmoid.ipynb", "bob_12345_sigmoid.ipynb", "carol - sigmoid (1).ipynb"):
        (inbox / name).write_text(good)
    (inbox / "sigmoid.ipynb").write_text(good)  # whose? the name does not say
    records = by_student(intake(released, ASSIGNMENT, inbox))
    assert sorted(records) == ["(unknown)", "alice", "bob", "carol"]
    unknown = records.pop("(unknown)")
    assert unknown.path is None and "cannot tell whose" in unknown.problem
    for student, record in records.items():
        assert record.problem is None
        assert record.path == expected_path(released, student)
        assert record.path.read_text() == good


def test_zip_with_folders_keeps_renamed_notebooks_and_reports_problems(released, tmp_path):
    """Per-student folders in a zip: a renamed notebook is kept; bad ones become problems."""
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("submissions/Dave Smith_123456_assignsubmission_file_/sigmoid (1).ipynb",
                        submission(released, CORRECT))
        zipped.writestr("submissions/erin/notes.txt", "I ran out of time")
        zipped.writestr("submissions/frank/sigmoid.ipynb", "{ this is not json")
        zipped.writestr("submissions/__MACOSX/._junk", "")
    records = by_student(intake(released, ASSIGNMENT, archive))
    assert sorted(records) == ["dave_smith", "erin", "frank"]
    assert records["dave_smith"].path == expected_path(released, "dave_smith")
    assert records["erin"].path is None and "no notebook" in records["erin"].problem
    # Whether a notebook can be read is grading's to find out, in a bounded helper.
    assert records["frank"].path == expected_path(released, "frank")
    assert records["frank"].problem is None


def test_zip_of_one_student_folder_keeps_the_owner(released, tmp_path):
    """A zip holding only `alice/sigmoid.ipynb` is Alice's, not an unknown student's."""
    archive = tmp_path / "alice.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("alice/sigmoid.ipynb", submission(released, CORRECT))
    [record] = intake(released, ASSIGNMENT, archive)
    assert (record.student, record.path) == ("alice", expected_path(released, "alice"))


def test_receipts_keep_what_arrived(released, tmp_path):
    """Each file is kept read-only by sha256, logged once even if taken in twice."""
    inbox = tmp_path / "lms"
    inbox.mkdir()
    text = submission(released, CORRECT)
    (inbox / "alice_01_sigmoid.ipynb").write_text(text)
    intake(released, ASSIGNMENT, inbox)
    intake(released, ASSIGNMENT, inbox)
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert read_receipts(released) == [{"student": "alice", "assignment": ASSIGNMENT,
                                        "original": "alice_01_sigmoid.ipynb", "sha256": digest}]
    copy = released.submitted_dir / ".receipts" / f"{digest}.ipynb"
    assert copy.read_text() == text
    assert not copy.stat().st_mode & stat.S_IWUSR


def test_nbgrader_layout_in_place(released):
    """The course's own submitted/ is taken as it is; a renamed notebook gets its real name."""
    place(released, "gina", submission(released, CORRECT))
    renamed = released.submitted_dir / "hugo" / ASSIGNMENT / "sigmoid-copy.ipynb"
    renamed.parent.mkdir(parents=True)
    renamed.write_text(submission(released, CORRECT))
    (released.source_dir / "02_other").mkdir()  # zed only handed in another assignment
    other = released.submitted_dir / "zed" / "02_other" / "other.ipynb"
    other.parent.mkdir(parents=True)
    other.write_text(submission(released, CORRECT))
    records = by_student(intake(released, ASSIGNMENT))
    assert sorted(records) == ["gina", "hugo"]
    assert records["hugo"].path == expected_path(released, "hugo")
    assert renamed.exists()  # what the student handed in is never removed


def test_student_ids_from_file_names():
    """Ids are safe (lowercase, [a-z0-9_-]) and lose the assignment part of the name."""
    assert safe_id("José Müller!") == "jose_muller"
    assert student_from_filename("alice_01_sigmoid", TAGS) == "alice"
    assert student_from_filename("bob_12345_sigmoid", TAGS) == "bob_12345"
    assert student_from_filename("Carol - sigmoid (1)", TAGS) == "carol"


def test_same_name_different_lms_ids_stay_apart(released, tmp_path):
    """Two Bobs with different LMS numbers keep their numbers, so neither is overwritten."""
    inbox = tmp_path / "lms"
    inbox.mkdir()
    for name in ("bob_111_sigmoid.ipynb", "bob_222_sigmoid.ipynb"):
        (inbox / name).write_text(submission(released, CORRECT))
    assert sorted(r.student for r in intake(released, ASSIGNMENT, inbox)) == ["bob_111", "bob_222"]


def test_unreadable_input_raises_clearly(course, tmp_path):
    """A corrupt zip or a missing path stops intake with a clear message."""
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(IntakeError, match="as a zip"):
        intake(course, ASSIGNMENT, bad)
    with pytest.raises(IntakeError, match="does not exist"):
        intake(course, ASSIGNMENT, tmp_path / "nowhere")


def test_folders_that_map_to_one_id_are_reported_not_merged_silently(released):
    """nbgrader ids stay as they are (`Alice` and `alice` are two students to nbgrader);
    two folders that only become ids (`Иван`, `Ivan!`) and map to one show as a problem."""
    good = submission(released, CORRECT)
    for student in ("Alice", "alice", "Иван", "李娜", "bob smith", "bob_smith!"):
        target = released.submitted_dir / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
        target.parent.mkdir(parents=True)
        target.write_text(good)
    records = by_student(intake(released, ASSIGNMENT))
    assert {"Alice", "alice", "bob_smith"} <= set(records) and len(records) == 5
    assert not (released.submitted_dir / "alice_").exists()
    assert records["bob_smith"].path is None and records["bob_smith"].problem
    assert [r.problem for s, r in records.items() if s != "bob_smith"] == [None] * 4


def test_names_without_latin_letters_get_distinct_stable_ids():
    assert safe_id("Иван") != safe_id("李娜")
    assert safe_id("Иван") == safe_id("Иван") and safe_id("Иван").startswith("s_")
    assert safe_id("") == ""


def test_a_zip_bomb_is_extracted_only_as_far_as_the_limit(released, tmp_path):
    """A member that inflates to 200 MB (200 kB in the zip) is cut one byte past the limit:
    too large either way, and the disk never holds the rest. Names stay inside."""
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        with zipped.open("mallory_sigmoid.ipynb", "w") as member:
            for _ in range(200):
                member.write(b" " * 2**20)
        zipped.writestr("../../escaped_sigmoid.ipynb", submission(released, CORRECT))
    assert archive.stat().st_size < 2**20
    records = by_student(intake(released, ASSIGNMENT, archive, max_bytes=2**20))
    assert expected_path(released, "mallory").stat().st_size == 2**20 + 1
    assert records["escaped"].path == expected_path(released, "escaped")
    assert not (tmp_path / "escaped_sigmoid.ipynb").exists()


def test_a_students_own_assignment_folder_does_not_hide_the_class(released, tmp_path):
    """In a Moodle download one student made a folder named like the assignment: the folder
    is still an LMS download, and every student is taken in."""
    archive = tmp_path / "moodle.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("Alice Smith_1_assignsubmission_file_/sigmoid.ipynb",
                        submission(released, CORRECT))
        zipped.writestr("Bob Jones_2_assignsubmission_file_/my work.ipynb",
                        submission(released, CORRECT))
        zipped.writestr(f"Mallory Evil_3_assignsubmission_file_/{ASSIGNMENT}/x.ipynb",
                        submission(released, CORRECT))
    records = by_student(intake(released, ASSIGNMENT, archive))
    assert sorted(records) == ["alice_smith", "bob_jones", "mallory_evil"]
    assert all(record.path is not None for record in records.values())


def test_a_name_too_long_for_the_disk_is_shortened_not_the_end_of_intake(released, tmp_path):
    """96 Chinese characters are within an LMS's limit and 288 bytes in UTF-8."""
    archive = tmp_path / "download.zip"
    long_name = "李" * 96
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(f"{long_name}/sigmoid.ipynb", submission(released, CORRECT))
        zipped.writestr("alice_sigmoid.ipynb", submission(released, CORRECT))
    records = intake(released, ASSIGNMENT, archive)
    assert len(records) == 2 and all(record.path for record in records)
