"""Release step: `source/` -> `release/` and the student bundle, with nothing hidden leaking.

The order inside `release` is deliberate:
1. generate every assignment into a temporary folder (nbgrader generate_assignment);
2. normalise it, so regenerating gives byte-identical files (the CI drift check relies on it);
3. check it for leaks, *before* touching `release/`, so a leak leaves `release/` as it was;
4. replace `release/<assignment>/` with the checked output;
5. build `dist/student-bundle/` (+ `.zip`) from `release/` and `gdlab/`, and check it again.
"""
import hashlib
import re
import shutil
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import nbformat
from nbgrader.converters import GenerateAssignment

from .course import COPY_IGNORE, LESSONS_DIR, STUDENT_PACKAGE, run_converter

# Looser than nbgrader's own delimiters on purpose: a misspelt `### BEGIN HIDDEN TEST` is
# left in place by nbgrader, and must then be caught here.
MARKER = re.compile(r"\b(BEGIN|END)\s+(SOLUTION|HIDDEN\s+TESTS?)\b", re.IGNORECASE)
BUNDLE_NAME = "student-bundle"
# A zip stores timestamps; one fixed date keeps the archive byte-identical between builds.
ZIP_DATE = (2000, 1, 1, 0, 0, 0)
# Lines this short or this generic give nothing away; flagging them would only be noise.
MIN_SECRET_LINE = 10
TRIVIAL_LINE = re.compile(
    r"(return|pass|else:|try:|finally:|break|continue|raise)\b\s*\w*\s*(\(\s*\))?")
NUMBER = re.compile(r"(?<![\w.])(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")
MIN_SECRET_DIGITS = 4

# What the students' environment needs, and why (written into environment.yml).
STUDENT_DEPENDENCIES = (
    ("numpy", "arrays in every exercise"),
    ("matplotlib", "plots of the sigmoid, the loss and the descent path"),
    ("ipywidgets", "the learning-rate sliders"),
    ("jupyterlab", "where you work through the notebooks"),
    ("notebook", "the classic notebook interface, if you prefer it"),
    ("nbgrader", "the Validate button: runs the visible checks before you submit"),
)


class LeakError(RuntimeError):
    """Something hidden (solution, hidden test, hidden value) would reach students."""

    def __init__(self, leaks):
        self.leaks = list(leaks)
        super().__init__("hidden material would be released:\n"
                         + "\n".join(f"  {leak}" for leak in self.leaks))


@dataclass(frozen=True)
class Leak:
    """One leaked item: which file, which cell, and what leaked."""

    file: str
    cell: str
    what: str

    def __str__(self):
        return f"{self.file} [{self.cell}]: {self.what}"


@dataclass(frozen=True)
class Secrets:
    """What appears in a source notebook only inside solution or hidden-test regions."""

    solution_lines: frozenset
    hidden_lines: frozenset
    hidden_numbers: frozenset


@dataclass(frozen=True)
class Released:
    """What `release` produced."""

    notebooks: list
    bundle_dir: Path
    bundle_zip: Path


# ---------------------------------------------------------------- release/


def release(course, assignments=None):
    """Regenerate `release/` for `assignments` (default: all) and rebuild the student bundle.

    Raises `LeakError` (leaving `release/` untouched) if any hidden material would ship.
    """
    names = [course.check(name) for name in assignments or course.assignments()]
    if not names:
        raise FileNotFoundError(f"no assignments in {course.source_dir}")
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        staged = Path(tmp)
        for name in names:
            generate_into(course, name, staged)
            normalise_tree(course, staged / name)
        check_no_leaks(course, release_dir=staged, assignments=names)
        publish(course, staged, names, prune=assignments is None)
    bundle_dir, bundle_zip = build_student_bundle(course)
    notebooks = sorted(p for name in names for p in (course.release_dir / name).glob("*.ipynb"))
    return Released(notebooks, bundle_dir, bundle_zip)


def generate_into(course, assignment, out_dir):
    """Run nbgrader generate_assignment for one assignment, writing to `out_dir/<assignment>`.

    Also records the assignment and its source cells in the gradebook, as nbgrader does.
    """
    run_converter(course, GenerateAssignment, assignment=assignment, student=".",
                  overrides={"release_directory": str(out_dir)}, create_assignment=True)
    return Path(out_dir) / assignment


def ensure_gradebook(course, assignment):
    """Make the gradebook know `assignment` and its source cells, without touching `release/`.

    Autograde needs both, and on a fresh clone `gradebook.db` (not in git) is empty.
    """
    with tempfile.TemporaryDirectory(prefix="gradebook-") as tmp:
        generate_into(course, assignment, Path(tmp))


def publish(course, staged, assignments, *, prune=False):
    """Replace `release/<a>/` by `staged/<a>/`; with `prune`, drop folders with no source."""
    course.release_dir.mkdir(exist_ok=True)
    for name in assignments:
        target = course.release_dir / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(staged / name, target, ignore=COPY_IGNORE)
    if prune:
        stale = {p.name for p in course.release_dir.iterdir() if p.is_dir()} - set(course.assignments())
        for name in sorted(stale):
            shutil.rmtree(course.release_dir / name)


# ---------------------------------------------------------------- normalising


def normalise_tree(course, folder):
    """Normalise every notebook nbgrader wrote into `folder` (one assignment)."""
    known = known_cell_ids(course)
    for path in sorted(Path(folder).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.write(normalise_notebook(nb, known_ids=known, name=path.stem), path)


def known_cell_ids(course):
    """Cell ids written by hand in the source and header notebooks (kept as they are)."""
    paths = list(course.source_dir.glob("*/*.ipynb"))
    header = course.header()
    if header and header.is_file():
        paths.append(header)
    return {cell.get("id") for p in paths for cell in _raw_cells(p)} - {None}


def _raw_cells(path):
    """The cells of a notebook as stored (no upgrade, so no invented ids)."""
    return nbformat.reader.reads(Path(path).read_text(encoding="utf-8")).get("cells", [])


def normalise_notebook(nb, *, known_ids=frozenset(), name="notebook"):
    """Return `nb` without outputs, execution counts or editor state, with stable cell ids.

    A cell id that is not in the sources was invented at random by nbformat; it is
    replaced by one derived from the notebook name and cell position.
    """
    nb.metadata.pop("widgets", None)
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if "id" in cell and cell.id not in known_ids:
            cell.id = hashlib.sha1(f"{name}/{index}".encode()).hexdigest()[:8]
    return nb


# ---------------------------------------------------------------- leaks


def check_no_leaks(course, *, release_dir=None, assignments=None):
    """Raise `LeakError` if a released notebook shows anything hidden in its source.

    Checks markers, non-trivial solution / hidden-test lines and hidden numeric values,
    for every `release_dir/<a>/<nb>.ipynb` (default: the course's `release/`).
    """
    release_dir = Path(release_dir or course.release_dir)
    header = _header_if_any(course)
    leaks = []
    for name in assignments or course.assignments():
        sources = sorted((course.source_dir / name).glob("*.ipynb"))
        secrets = secrets_of(sources, visible_extra=header)
        leaks += file_leaks(release_dir / name, secrets)
        for path in sorted((release_dir / name).glob("*.ipynb")):
            leaks += notebook_leaks(path, secrets, label=f"{name}/{path.name}")
    if leaks:
        raise LeakError(leaks)


def _header_if_any(course):
    """The header notebook as a list (it is visible in every release), or []."""
    header = course.header()
    return [header] if header and header.is_file() else []


def secrets_of(sources, *, visible_extra=()):
    """Collect the `Secrets` of source notebooks; `visible_extra` notebooks count as visible."""
    regions = {"visible": [], "solution": [], "hidden": []}
    for path in list(sources) + list(visible_extra):
        as_visible = path in visible_extra
        for cell in nbformat.read(path, as_version=4).cells:
            for region, line in split_regions(cell):
                regions["visible" if as_visible else region].append(line.strip())
    visible = set(regions["visible"])
    precise = numbers_in(regions["hidden"], min_digits=MIN_SECRET_DIGITS)
    return Secrets(
        solution_lines=frozenset(_secret_lines(regions["solution"], visible)),
        hidden_lines=frozenset(_secret_lines(regions["hidden"], visible)),
        hidden_numbers=frozenset(precise - numbers_in(regions["visible"] + regions["solution"])),
    )


def _secret_lines(lines, visible):
    """The non-trivial `lines` that do not also appear in the visible part."""
    return {line for line in lines if not is_trivial(line) and line not in visible}


def split_regions(cell):
    """Yield `(region, line)` for each line of a source cell; marker lines are skipped.

    region is 'visible', 'solution' or 'hidden'. A solution cell without markers is all
    solution, because nbgrader replaces the whole cell by a stub.
    """
    lines = cell.source.splitlines()
    markers = [MARKER.search(line) for line in lines]
    whole_solution = cell.metadata.get("nbgrader", {}).get("solution") and not any(markers)
    region = "solution" if whole_solution else "visible"
    for line, marker in zip(lines, markers):
        if marker is None:
            yield region, line
        elif marker.group(1).upper() == "END":
            region = "visible"
        else:
            region = "solution" if marker.group(2).upper() == "SOLUTION" else "hidden"


def is_trivial(line):
    """True for lines that reveal nothing: blank, short, or generic (`return result`)."""
    line = line.strip()
    return len(line) < MIN_SECRET_LINE or bool(TRIVIAL_LINE.fullmatch(line))


def numbers_in(lines, *, min_digits=0):
    """The numeric literals in `lines` with at least `min_digits` significant digits."""
    return {Decimal(token).normalize()
            for line in lines for token in NUMBER.findall(line)
            if significant_digits(token) >= min_digits}


def significant_digits(token):
    """Significant digits of a literal, trailing zeros not counted: `0.004378` -> 4,
    `1000` -> 1, `800.0` -> 1, `1e-6` -> 1 (a round number is no secret)."""
    return len(Decimal(token).normalize().as_tuple().digits) if Decimal(token) else 0


def notebook_leaks(path, secrets, *, label):
    """The `Leak`s in one release notebook, cell by cell."""
    leaks = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        where = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
        leaks += [Leak(label, where, what) for what in text_leaks(cell_text(cell), secrets)]
    return leaks


def cell_text(cell):
    """A cell's source plus any text in its outputs (outputs are cleared, but be sure)."""
    parts = [cell.source]
    for output in cell.get("outputs", []):
        parts.append(str(output.get("text", "")))
        parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def text_leaks(text, secrets, *, numbers=True):
    """Describe each marker, secret line and (optionally) hidden number found in `text`."""
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        found += [f"marker {m.group(0)!r}" for m in MARKER.finditer(line)]
        if stripped in secrets.solution_lines:
            found.append(f"solution line {stripped!r}")
        if stripped in secrets.hidden_lines:
            found.append(f"hidden-test line {stripped!r}")
        if numbers:
            found += [f"hidden value {n}" for n in sorted(numbers_in([line]) & secrets.hidden_numbers)]
    return found


def file_leaks(folder, secrets):
    """Markers and secret lines in the files under `folder` that are not notebooks."""
    return [Leak(str(path.relative_to(folder.parent)), "file", what)
            for path, text in text_files(folder) if path.suffix != ".ipynb"
            for what in text_leaks(text, secrets, numbers=False)]


def text_files(folder):
    """`(path, text)` for each file under `folder` that decodes as UTF-8, sorted."""
    found = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        try:
            found.append((path, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue  # binary files (images) carry no code
    return found


# ---------------------------------------------------------------- student bundle


def build_student_bundle(course):
    """Build `dist/student-bundle/` and a deterministic `dist/student-bundle.zip`.

    The bundle holds `release/`, the ungraded `notebooks/`, the student package `gdlab/`,
    environment files that install only `gdlab`, and a README. It is assembled beside
    `dist/`, checked with `check_bundle`, and only then replaces the published one, so a
    leak never reaches `dist/`.
    """
    course.dist_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="staging-", dir=course.dist_dir) as staging:
        staged = Path(staging) / BUNDLE_NAME
        assemble_bundle(course, staged)
        check_bundle(course, staged)
        bundle = course.dist_dir / BUNDLE_NAME
        shutil.rmtree(bundle, ignore_errors=True)
        shutil.move(staged, bundle)
    return bundle, write_zip(bundle, course.dist_dir / f"{BUNDLE_NAME}.zip")


def assemble_bundle(course, bundle):
    """Copy what students need into the folder `bundle` (unchecked)."""
    bundle.mkdir(parents=True)
    shutil.copytree(course.release_dir, bundle / "release", ignore=COPY_IGNORE)
    package = course.root / STUDENT_PACKAGE
    if not package.is_dir():
        raise FileNotFoundError(f"student package {package} is missing; cannot build the bundle")
    shutil.copytree(package, bundle / STUDENT_PACKAGE, ignore=COPY_IGNORE)
    lessons = course.root / LESSONS_DIR
    if lessons.is_dir():  # the ungraded lessons: start here, the explorers
        shutil.copytree(lessons, bundle / LESSONS_DIR, ignore=COPY_IGNORE)
    for name, text in student_files(course).items():
        (bundle / name).write_text(text, encoding="utf-8")


def check_bundle(course, bundle):
    """Raise `LeakError` if the bundle holds instructor material.

    That is: an `autograder` package, a `source/` folder, solution markers, hidden-test
    lines anywhere, or anything `check_no_leaks` objects to in its notebooks.
    """
    leaks = [Leak(str(p.relative_to(bundle)), "path", "instructor-only folder")
             for p in sorted(bundle.rglob("*")) if p.is_dir() and p.name in ("autograder", "source")]
    secrets = secrets_of(sorted(course.source_dir.glob("*/*.ipynb")),
                         visible_extra=_header_if_any(course))
    for path, text in text_files(bundle):
        if path.is_relative_to(bundle / "release"):  # checked in full below
            continue
        label = str(path.relative_to(bundle))
        if path.suffix == ".ipynb":  # the lessons: no solution either, read cell by cell
            leaks += notebook_leaks(path, secrets, label=label)
        else:  # helper code may share a solution line, never a hidden one
            leaks += [Leak(label, "file", what)
                      for what in text_leaks(text, _hidden_only(secrets), numbers=False)]
    try:
        check_no_leaks(course, release_dir=bundle / "release")
    except LeakError as error:
        leaks += error.leaks
    if leaks:
        raise LeakError(leaks)


def _hidden_only(secrets):
    """`secrets` without the solution lines: helper code may share those legitimately."""
    return Secrets(frozenset(), secrets.hidden_lines, secrets.hidden_numbers)


def write_zip(folder, zip_path):
    """Zip `folder` with sorted entries, fixed dates and modes, so rebuilding is byte-identical."""
    zip_path.unlink(missing_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(f"{folder.name}/{path.relative_to(folder).as_posix()}", ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return zip_path


def student_files(course):
    """The generated top-level files of the bundle, by name."""
    specs = dependency_specs(course)
    course_id = course.course_id() or "course"
    return {
        "environment.yml": environment_yml(course_id, specs),
        "requirements.txt": requirements_txt(specs),
        "pyproject.toml": bundle_pyproject(course_id, specs),
        "README.md": student_readme(course, course_id),
    }


def dependency_specs(course):
    """`name>=version` for each student dependency, versions taken from the course pyproject.

    One place states the minimum versions; the bundle repeats them, never invents them.
    """
    pinned = {}
    pyproject = course.root / "pyproject.toml"
    if pyproject.is_file():
        for dep in tomllib.loads(pyproject.read_text()).get("project", {}).get("dependencies", []):
            name = re.match(r"[A-Za-z0-9_.-]+", dep).group(0).lower()
            pinned[name] = dep.replace(" ", "")
    return [(pinned.get(name, name), why) for name, why in STUDENT_DEPENDENCIES]


def environment_yml(course_id, specs):
    """A conda environment file that says why each dependency is there."""
    lines = [f"# Environment for the {course_id} notebooks.",
             "# Create it with:  conda env create -f environment.yml",
             f"name: {course_id}-student",
             "channels:",
             "  - conda-forge",
             "dependencies:",
             "  - python>=3.10",
             "  - pip  # to install gdlab below"]
    lines += [f"  - {spec}  # {why}" for spec, why in specs]
    lines += ["  - pip:", "      - -e .  # gdlab: the course's plots, widgets and data"]
    return "\n".join(lines) + "\n"


def requirements_txt(specs):
    """A pip requirements file with the same packages as environment.yml."""
    lines = ["# Same packages as environment.yml; run `pip install -r requirements.txt` here."]
    lines += [spec for spec, _ in specs] + ["-e ."]
    return "\n".join(lines) + "\n"


def bundle_pyproject(course_id, specs):
    """A minimal pyproject that installs only the student package."""
    deps = "".join(f'    "{spec}",\n' for spec, _ in specs)
    return (
        "# Installs only gdlab, the helpers the notebooks import. The notebooks are in release/.\n"
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{STUDENT_PACKAGE}"\nversion = "1.0.0"\n'
        f'description = "Helpers for the {course_id} notebooks"\nrequires-python = ">=3.10"\n'
        f"dependencies = [\n{deps}]\n\n"
        f'[tool.setuptools.packages.find]\ninclude = ["{STUDENT_PACKAGE}*"]\n\n'
        f'[tool.setuptools.package-data]\n{STUDENT_PACKAGE} = ["data/*"]\n'
    )


def student_readme(course, course_id):
    """A short README: set up, open the notebooks, validate, submit."""
    notebooks = "\n".join(f"- `release/{p.relative_to(course.release_dir).as_posix()}`"
                          for p in sorted(course.release_dir.glob("*/*.ipynb")))
    return f"""# {course_id}: student bundle

## Set up (once)
With conda: `conda env create -f environment.yml`, then `conda activate {course_id}-student`.
With pip (in a virtual environment, from this folder): `pip install -r requirements.txt`.
Both install the packages listed in those files and `gdlab`, the course's helpers.

## Work
Start `jupyter lab` in this folder and open `notebooks/start_here.ipynb` first: it shows
how to work, validate and submit. Then the assignments, in order:
{notebooks}

Write your code where it says `YOUR CODE HERE`. Do not delete or rename cells.

## Before you submit
Restart the kernel and run all cells, then press **Validate** (nbgrader's button) to run the
visible checks. More checks run when your work is graded. Submit the `.ipynb` file itself.
"""
