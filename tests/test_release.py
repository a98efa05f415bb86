"""Release step: release/ from source/, deterministic, leak-checked; the student bundle."""
import hashlib
import zipfile

import nbformat
import pytest
from conftest import (ASSIGNMENT, HIDDEN_LINE, HIDDEN_VALUE, NOTEBOOK, SOLUTION_LINE,
                      nbgrader_cell, write_notebook)
from nbformat.v4 import new_code_cell

from autograder.course import open_gradebook
from autograder.release import (LeakError, check_no_leaks, ensure_gradebook, is_trivial,
                                normalise_notebook, release, secrets_of, significant_digits)


def tree_digest(folder):
    """sha256 of every file under `folder`, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_release_hides_solutions_and_hidden_tests(released):
    """The released notebook has the stub and the visible checks, nothing hidden."""
    text = (released.release_dir / ASSIGNMENT / f"{NOTEBOOK}.ipynb").read_text()
    assert "raise NotImplementedError()" in text
    assert 'assert sigmoid(0) == 0.5' in text
    assert "Restart the kernel" in text  # the shared header was wired in
    for secret in ("BEGIN SOLUTION", "HIDDEN TESTS", SOLUTION_LINE, HIDDEN_LINE, HIDDEN_VALUE):
        assert secret not in text


def test_regenerating_is_byte_identical(released):
    """Releasing twice gives the same release/ and the same bundle zip, byte for byte."""
    before = tree_digest(released.release_dir)
    zip_before = (released.dist_dir / "student-bundle.zip").read_bytes()
    release(released)
    assert tree_digest(released.release_dir) == before
    assert (released.dist_dir / "student-bundle.zip").read_bytes() == zip_before


def test_normalising_keeps_nbgrader_metadata(released):
    """Cleaning drops outputs and counts but keeps every metadata.nbgrader block."""
    nb = nbformat.read(released.release_dir / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    before = [cell.metadata.get("nbgrader") for cell in nb.cells]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="noise")]
    nb.cells[2].execution_count = 7
    cleaned = normalise_notebook(nb)
    assert [cell.metadata.get("nbgrader") for cell in cleaned.cells] == before
    assert cleaned.cells[2].outputs == [] and cleaned.cells[2].execution_count is None


def test_leak_is_refused_and_release_left_untouched(released):
    """With nbgrader's hidden-test remover switched off, release refuses and changes nothing."""
    before = tree_digest(released.release_dir)
    with (released.config_file).open("a") as config:
        config.write("c.ClearHiddenTests.enabled = False\n")
    with pytest.raises(LeakError) as caught:
        release(released)
    message = str(caught.value)
    assert f"{ASSIGNMENT}/{NOTEBOOK}.ipynb [test_sigmoid_values]" in message
    assert "BEGIN HIDDEN TESTS" in message and HIDDEN_LINE in message
    assert tree_digest(released.release_dir) == before


def test_leak_check_names_file_cell_and_what(released, tmp_path):
    """A hidden line or hidden value pasted into a release notebook is reported precisely."""
    fake = tmp_path / "fake-release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    write_notebook(fake, [
        nbgrader_cell(new_code_cell(f"x = {HIDDEN_VALUE}0  # same value, other spelling"), "copied_value"),
        nbgrader_cell(new_code_cell("    " + HIDDEN_LINE), "copied_line"),
        nbgrader_cell(new_code_cell("### BEGIN HIDDEN TEST\nprint(1)"), "misspelt_marker"),
    ])
    with pytest.raises(LeakError) as caught:
        check_no_leaks(released, release_dir=tmp_path / "fake-release")
    found = {(leak.cell, leak.what.split()[0]) for leak in caught.value.leaks}
    assert {("copied_value", "hidden"), ("copied_line", "hidden-test"),
            ("misspelt_marker", "marker")} <= found


def test_secrets_ignore_trivial_and_visible_lines(course):
    """Short or generic lines, and lines also shown outside the regions, are not secrets."""
    secrets = secrets_of([course.source_dir / ASSIGNMENT / f"{NOTEBOOK}.ipynb"])
    assert SOLUTION_LINE in secrets.solution_lines
    assert "return 1.0 / denominator" in secrets.solution_lines
    assert HIDDEN_LINE in secrets.hidden_lines
    assert all(not is_trivial(line) for line in secrets.solution_lines | secrets.hidden_lines)
    assert is_trivial("return result") and is_trivial("pass") and is_trivial("")
    assert [str(n) for n in secrets.hidden_numbers] == [HIDDEN_VALUE]  # 1e-6 and 2.0 are short
    assert [significant_digits(t) for t in ("0.004378", "1000", "1e-6", "800.0", "710.5", "0")] \
        == [4, 1, 1, 1, 4, 0]


def test_bundle_holds_only_what_students_need(released):
    """The bundle: release/, gdlab/, environment files, README; no instructor material."""
    bundle = released.dist_dir / "student-bundle"
    names = {p.name for p in bundle.iterdir()}
    assert names == {"release", "gdlab", "environment.yml", "requirements.txt",
                     "pyproject.toml", "README.md"}
    with zipfile.ZipFile(released.dist_dir / "student-bundle.zip") as archive:
        entries = archive.namelist()
    assert entries == sorted(entries)
    assert not any("autograder" in e or "/source/" in e for e in entries)
    assert 'include = ["gdlab*"]' in (bundle / "pyproject.toml").read_text()
    for spec in ("numpy>=1.24", "ipywidgets>=8.0", "nbgrader>=0.9.2", "-e ."):
        assert spec in (bundle / "requirements.txt").read_text()
        assert spec in (bundle / "environment.yml").read_text()


def test_bundle_refuses_hidden_line_in_student_package(released):
    """A hidden check copied into gdlab/ stops the bundle."""
    (released.root / "gdlab" / "checks.py").write_text(HIDDEN_LINE + "\n")
    with pytest.raises(LeakError, match="gdlab/checks.py"):
        release(released)


def test_ensure_gradebook_leaves_release_alone(course):
    """On a fresh clone, the gradebook learns the assignment without release/ being written."""
    ensure_gradebook(course, ASSIGNMENT)
    assert not course.release_dir.exists()
    with open_gradebook(course) as gradebook:
        assignment = gradebook.find_assignment(ASSIGNMENT)
        assert [nb.name for nb in assignment.notebooks] == [NOTEBOOK]
        assert assignment.max_score == 3


def test_leak_check_reads_markers_in_any_case(course):
    """`### Begin Hidden Tests` is left in place by nbgrader; the check still sees its lines."""
    source = course.source_dir / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    nb = nbformat.read(source, as_version=4)
    cell = nb.cells[2]
    cell.source = cell.source.replace("### BEGIN HIDDEN TESTS", "### Begin Hidden Tests").replace(
        "### END HIDDEN TESTS", "### End Hidden Tests") + "\nprint('visible again after the region')"
    nbformat.write(nb, source)
    with pytest.raises(LeakError) as refused:
        release(course)
    assert HIDDEN_LINE in str(refused.value)
    assert "visible again" not in str(refused.value)  # the region ends where its marker says


def test_refused_bundle_never_reaches_dist(released):
    """A leak found in the bundle leaves dist/ as it was: nothing half-built to publish."""
    before = sorted(p.relative_to(released.dist_dir) for p in released.dist_dir.rglob("*"))
    (released.root / "gdlab" / "checks.py").write_text(HIDDEN_LINE + "\n")
    with pytest.raises(LeakError):
        release(released)
    after = sorted(p.relative_to(released.dist_dir) for p in released.dist_dir.rglob("*"))
    assert after == before
    assert HIDDEN_LINE not in (released.dist_dir / "student-bundle" / "gdlab" / "__init__.py").read_text()
