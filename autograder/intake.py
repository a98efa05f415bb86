"""Intake step: whatever arrived -> nbgrader's `submitted/<student>/<assignment>/` layout.

Accepted inputs: a folder already in nbgrader's layout (default: the course's `submitted/`),
a folder of notebooks downloaded from an LMS (`alice_01_sigmoid.ipynb`, `bob_12345_sigmoid.ipynb`,
`carol - sigmoid (1).ipynb`, or `<student>/<anything>.ipynb`), or a zip of either.
Every student yields one `Intake` record; a bad file becomes a record with a `problem`, never
an exception, so one student cannot stop the batch. Every file is kept as received, with its
sha256, under `submitted/.receipts/` (a hidden folder, so nbgrader does not see it).
"""
import hashlib
import json
import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


RECEIPTS = ".receipts"
MAX_MEMBER_BYTES = 64 * 2**20  # of a zip's member, extracted (grading's own limit is lower)
# Not a valid id on purpose, so it can never clash with a real student.
UNKNOWN_STUDENT = "(unknown)"
# Files an LMS or an OS adds on its own; they are nobody's submission.
JUNK = {"__MACOSX", ".DS_Store", ".ipynb_checkpoints", "Thumbs.db", "desktop.ini"}
# "sigmoid (1)" (a browser's second download), "sigmoid-1" (an LMS resubmission)
COPY_SUFFIX = re.compile(r"(\s*\(\d+\)|-\d+)$")
# LMS file names carry numeric ids and LATE flags after the student's name.
NOISE_TOKEN = re.compile(r"\d+|late")
# A student id nbgrader itself accepts, kept as it is.
NBGRADER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# Moodle names each student's folder `Alice Smith_123456_assignsubmission_file_`.
MOODLE_SUFFIX = re.compile(r"_assignsubmission_.*$", re.IGNORECASE)


class IntakeError(RuntimeError):
    """The input as a whole cannot be read (missing path, corrupt zip)."""


@dataclass(frozen=True)
class Intake:
    """One student's submission of one assignment.

    `path` is the notebook nbgrader will grade (the assignment folder if the assignment
    has several notebooks); it is None when `problem` says why nothing can be graded.
    """

    student: str
    path: Path | None
    problem: str | None = None


def intake(course, assignment, source=None, *, max_bytes=MAX_MEMBER_BYTES):
    """Bring `source` (default: `submitted/`) into `submitted/`; return one `Intake` per student.

    A zip's members are extracted up to `max_bytes` and one byte more: a member that large
    is a file over the intake limit either way (grading flags it), and a zip bomb must not
    fill the disk."""
    source = Path(source) if source else course.submitted_dir
    if not source.exists():
        raise IntakeError(f"nothing to take in: {source} does not exist")
    if source.is_file():
        with tempfile.TemporaryDirectory(prefix="intake-") as tmp:
            unzip(source, Path(tmp), max_bytes=max_bytes)
            return intake_folder(course, assignment, Path(tmp),
                                 label=lambda p, root: f"{source.name}!{p.relative_to(root)}")
    return intake_folder(course, assignment, source)


def unzip(archive, into, *, max_bytes=MAX_MEMBER_BYTES):
    """Extract `archive` into the folder `into`, each member cut after `max_bytes` + 1 bytes;
    raise `IntakeError` if it is no zip. Names keep to `into`, as `zipfile` keeps them:
    no absolute paths, no `..`."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.infolist():
                parts = [fit_name(part) for part in
                         PurePosixPath(member.filename.replace("\\", "/")).parts
                         if part not in ("/", ".", "..")]
                if not parts:
                    continue
                target = into.joinpath(*parts)
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(member) as source, target.open("wb") as copy:
                    left = max_bytes + 1
                    while left and (chunk := source.read(min(left, 1 << 20))):
                        copy.write(chunk)
                        left -= len(chunk)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise IntakeError(f"cannot read {archive} as a zip: {error}") from error


def fit_name(name, limit=200):
    """`name` shortened, if it must be, to fit a file system's 255 bytes (a long name in
    another script is within an LMS's limits and far over in UTF-8 bytes): its start, a
    digest of the whole (so two long names stay two) and its suffix."""
    if len(name.encode()) <= limit:
        return name
    suffix = PurePosixPath(name).suffix if len(PurePosixPath(name).suffix) < 16 else ""
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    start = name.encode()[:limit - len(suffix) - 12].decode(errors="ignore")
    return f"{start}-{digest}{suffix}"


def unwrap(folder, assignments):
    """Descend through folders that only wrap a single folder (`submissions/...`).

    Stops at nbgrader's layout, so a one-student `alice/01_sigmoid/` keeps its owner.
    """
    entries = [p for p in folder.iterdir() if not is_junk(p.name)]
    if len(entries) == 1 and entries[0].is_dir() and not is_nbgrader_layout(folder, assignments):
        return unwrap(entries[0], assignments)
    return folder


def is_junk(name):
    """True for file and folder names no student chose (OS, LMS and Jupyter leftovers)."""
    return name in JUNK or name.startswith(".")


def intake_folder(course, assignment, root, *, label=None):
    """Intake from a folder (nbgrader layout or LMS style); see `intake`.

    If the submissions sit in a wrapper folder, a notebook whose name does not say whose
    it is belongs to the innermost wrapper (a zip of `alice/sigmoid.ipynb`).
    """
    label = label or (lambda path, top: str(path.relative_to(top)))
    folder = unwrap(root, course.assignments())
    if is_nbgrader_layout(folder, course.assignments()):
        # nbgrader's own ids stay as they are (renamed, a student would be two students to
        # nbgrader). Two other folders that map to one id must not overwrite each other:
        # their files add up, and the student is reported with two notebooks.
        groups = defaultdict(list)
        for d in sorted(folder.iterdir()):
            if (d / assignment).is_dir() and not is_junk(d.name):
                groups[d.name if NBGRADER_ID.fullmatch(d.name) else safe_id(d.name)] += \
                    files_under(d / assignment)
    else:
        groups = group_by_student(folder, assignment, course.notebooks(assignment),
                                  fallback=safe_id(folder.name) if folder != root else "")
    return [take_student(course, assignment, student, files,
                         originals={f: label(f, root) for f in files})
            for student, files in sorted(groups.items())]


def is_nbgrader_layout(folder, assignments):
    """True if `folder` looks like nbgrader's `submitted/`: every student folder in it holds
    a folder named after one of the course's `assignments`, and no notebook lies loose. (An
    LMS folder where one student made an `01_sigmoid/` folder of their own is still an LMS
    folder: the others must not vanish.)"""
    entries = [p for p in folder.iterdir() if not is_junk(p.name)]
    students = [d for d in entries if d.is_dir()]
    return bool(students) and len(students) == len(entries) and all(
        any((d / name).is_dir() for name in assignments) for d in students)


def files_under(folder):
    """The files a student made under `folder`, sorted, leftovers skipped."""
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not any(is_junk(part) for part in p.relative_to(folder).parts))


def group_by_student(folder, assignment, notebooks, *, fallback=""):
    """Map student id -> files, for an LMS download.

    A file in a sub-folder belongs to the student the sub-folder is named after; a file at
    the top belongs to the student its name starts with, else to `fallback`.
    """
    tags = [assignment] + list(notebooks)
    groups = defaultdict(list)
    for path in files_under(folder):
        parts = path.relative_to(folder).parts
        if len(parts) > 1:
            owner = safe_id(MOODLE_SUFFIX.sub("", parts[0]))
        else:
            owner = student_from_filename(path.stem, tags) or fallback
        groups[owner].append(path)
    return disambiguate(groups)


def student_from_filename(stem, tags):
    """Derive a student id from an LMS file name, with its numeric ids still attached.

    `alice_01_sigmoid` -> `alice`, `bob_12345_sigmoid` -> `bob_12345`,
    `carol - sigmoid (1)` -> `carol`. The assignment / notebook names in `tags` are cut off.
    """
    name = safe_id(COPY_SUFFIX.sub("", stem))
    for tag in sorted({safe_id(t) for t in tags}, key=len, reverse=True):
        if name == tag or name.endswith("_" + tag):
            name = name[: -len(tag)].rstrip("_-")
            break
    return name


def disambiguate(groups):
    """Drop LMS numbers and LATE flags from ids (`bob_12345` -> `bob`) where that stays unique."""
    short = {student: _without_noise(student) for student in groups}
    counts = Counter(short.values())
    renamed = defaultdict(list)
    for student, files in groups.items():
        renamed[short[student] if counts[short[student]] == 1 else student] += files
    return dict(renamed)


def _without_noise(student):
    """`bob_12345` -> `bob`, `dan_late_7_8` -> `dan`; an id made only of numbers is kept."""
    tokens = student.split("_")
    while len(tokens) > 1 and NOISE_TOKEN.fullmatch(tokens[-1]):
        tokens.pop()
    return "_".join(tokens)


def safe_id(text):
    """A student id nbgrader and file systems accept: lowercase ASCII, digits, `_` and `-`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    student = re.sub(r"[^a-z0-9_-]+", "_", ascii_text.lower()).strip("_-")
    if student or not text.strip():
        return student
    # A name with no Latin letters (Иван, 李娜) still needs an id of its own, stable per name.
    return "s_" + hashlib.sha256(text.encode()).hexdigest()[:10]


def take_student(course, assignment, student, files, *, originals):
    """Receipt a student's files, place them as nbgrader expects, and return the record."""
    links = [f for f in files if is_linked(f)]
    if links:  # followed, a link hands in whatever it points at (the instructor's source/)
        return Intake(student or UNKNOWN_STUDENT, None,
                      f"refused: symbolic links are not submissions ({_names(links)})")
    for path in files:
        keep_receipt(course, assignment, student, path, original=originals[path])
    expected = course.notebooks(assignment)
    chosen, problem = match_notebooks([f for f in files if f.suffix == ".ipynb"], expected)
    if not student:
        problem = "cannot tell whose files these are"
    if problem:
        return Intake(student or UNKNOWN_STUDENT, None, f"{problem} ({_names(files)})")
    # Whether each notebook can be read is for grading to find out, in a bounded helper:
    # a file parsed here could hold the whole intake up.
    target = course.submitted_dir / student / assignment
    if not all(f.resolve().is_relative_to(target.resolve()) for f in files):
        shutil.rmtree(target, ignore_errors=True)  # the newest arrival replaces the last one
        copy_extras(files, target)
    for name, path in chosen.items():
        if path.resolve() != (target / f"{name}.ipynb").resolve():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / f"{name}.ipynb")
    return Intake(student, target / f"{expected[0]}.ipynb" if len(expected) == 1 else target)


def is_linked(path):
    """True if `path`, its folder or the folder above (the student's) is a symbolic link."""
    return any(p.is_symlink() for p in (path, path.parent, path.parent.parent))


def _names(files):
    """A short list of file names for a problem message."""
    return ", ".join(sorted(p.name for p in files)) or "no files"


def copy_extras(files, target):
    """Copy files other than notebooks (e.g. nbgrader's `timestamp.txt`) into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for path in files:
        if path.suffix != ".ipynb":
            shutil.copyfile(path, target / path.name)


def match_notebooks(found, expected):
    """Pair each expected notebook name with one of the student's notebooks.

    One expected notebook takes any single notebook, whatever it was renamed to; otherwise
    a notebook must contain the expected name (`gradient_step (1).ipynb`). Returns
    `(mapping, problem)`.
    """
    if not found:
        return {}, "no notebook"
    if len(expected) == 1 and len(found) == 1:
        return {expected[0]: found[0]}, None
    mapping = {}
    for name in expected:
        candidates = [f for f in found if name in safe_id(f.stem)]
        if len(candidates) != 1:
            how = "no notebook" if not candidates else f"{len(candidates)} notebooks"
            return {}, f"{how} for {name}.ipynb"
        mapping[name] = candidates[0]
    return mapping, None


def keep_receipt(course, assignment, student, path, *, original):
    """Store a read-only copy of `path` by content hash and log it in `receipts.jsonl`."""
    folder = course.submitted_dir / RECEIPTS
    folder.mkdir(parents=True, exist_ok=True)
    with path.open("rb") as file:  # in pieces: a file of any size is kept, never held whole
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    copy = folder / f"{digest}{path.suffix}"
    if not copy.exists():
        shutil.copyfile(path, copy)
        copy.chmod(0o444)
    line = json.dumps({"student": student, "assignment": assignment,
                       "original": original, "sha256": digest}, sort_keys=True)
    log = folder / "receipts.jsonl"
    if not log.exists() or line not in log.read_text(encoding="utf-8").splitlines():
        with log.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    return digest


def read_receipts(course):
    """All receipts recorded so far, as dicts (student, assignment, original, sha256)."""
    log = course.submitted_dir / RECEIPTS / "receipts.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
