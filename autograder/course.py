"""Where things are in the course directory, and how to run nbgrader on it.

Every other step goes through `run_converter`, so nbgrader always sees the course's own
`nbgrader_config.py` (and therefore the course's gradebook), wherever Python was started.
"""
import contextlib
import logging
import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import capture_log
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SAWarning
from traitlets.config import Config, PyFileConfigLoader

CONFIG_FILE = "nbgrader_config.py"
SETUP_LOCK_KEY = 0x6764_5365_7475_70  # PostgreSQL advisory lock: "gdSetup"
STUDENT_PACKAGE = "gdlab"
LESSONS_DIR = "notebooks"
# What a working copy of the course needs: the instructor's files, not its grading output.
COURSE_FILES = ("source", "release", LESSONS_DIR, CONFIG_FILE, "pyproject.toml", STUDENT_PACKAGE)
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info")

# nbgrader's chatter goes to this logger; `run_converter` captures it per call and
# hands it back (or puts it into the exception), so the CLI output stays readable.
NBGRADER_LOG = logging.getLogger("autograder.nbgrader")
NBGRADER_LOG.setLevel(logging.INFO)
NBGRADER_LOG.propagate = False


class NbgraderError(RuntimeError):
    """An nbgrader step failed; the message says which step and why."""

    def __init__(self, message, *, log=""):
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class Course:
    """An nbgrader course directory (the folder holding `nbgrader_config.py`)."""

    root: Path

    @property
    def config_file(self):
        """The course's nbgrader configuration file."""
        return self.root / CONFIG_FILE

    @property
    def source_dir(self):
        """Hand-written notebooks with solutions and hidden tests."""
        return self.root / "source"

    @property
    def release_dir(self):
        """Student versions, generated from `source/`."""
        return self.root / "release"

    @property
    def submitted_dir(self):
        """Submissions in nbgrader's `<student>/<assignment>/` layout."""
        return self.root / "submitted"

    @property
    def autograded_dir(self):
        """Executed, scored copies of the submissions."""
        return self.root / "autograded"

    @property
    def feedback_dir(self):
        """HTML feedback, one folder per student and assignment."""
        return self.root / "feedback"

    @property
    def dist_dir(self):
        """Build output meant to leave the instructor's machine (the student bundle)."""
        return self.root / "dist"

    def assignments(self):
        """Names of the assignments: the sub-folders of `source/`, sorted."""
        if not self.source_dir.is_dir():
            return []
        return sorted(p.name for p in self.source_dir.iterdir()
                      if p.is_dir() and not p.name.startswith((".", "_")))

    def header(self):
        """The shared header notebook wired in by `IncludeHeaderFooter.header`, or None."""
        name = load_config(self).IncludeHeaderFooter.get("header", "")
        return self.root / name if name else None

    def course_id(self):
        """The `CourseDirectory.course_id` set in the course's config (may be '')."""
        return load_config(self).CourseDirectory.get("course_id", "")

    def notebooks(self, assignment):
        """Notebook names (without `.ipynb`) of one assignment, sorted."""
        return sorted(p.stem for p in (self.source_dir / self.check(assignment)).glob("*.ipynb"))

    def check(self, assignment):
        """Return `assignment` if `source/` has it, else raise FileNotFoundError."""
        if assignment not in self.assignments():
            known = ", ".join(self.assignments()) or "none"
            raise FileNotFoundError(f"no assignment {assignment!r} in {self.source_dir} "
                                    f"(known: {known})")
        return assignment


def open_course(path=None):
    """Return the `Course` at `path` (default: the current directory).

    Raises FileNotFoundError when the folder holds no `nbgrader_config.py`, because
    without it nbgrader would silently start a fresh, empty gradebook.
    """
    root = Path(path or os.getcwd()).resolve()
    if not (root / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{root} is not a course directory (no {CONFIG_FILE})")
    return Course(root)


def load_config(course, **overrides):
    """Load the course's `nbgrader_config.py` and pin the course root.

    Left alone, nbgrader takes the current directory as the root; pinning it makes the
    result independent of where Python was started. `overrides`
    are extra `CourseDirectory` settings (e.g. `release_directory="/tmp/x"`).
    """
    config = PyFileConfigLoader(CONFIG_FILE, path=str(course.root)).load_config()
    extra = Config()
    extra.CourseDirectory.root = str(course.root)
    for name, value in overrides.items():
        extra.CourseDirectory[name] = value
    config.merge(extra)
    return config


def copy_course(course, target):
    """Copy the course's own files (`COURSE_FILES`, those present) to `target`; return that course.

    Grading output (submitted/, autograded/, the gradebook) stays behind, so the copy
    starts clean: the demo, the tests and the benchmarks work in such copies.
    """
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in COURSE_FILES:
        source = course.root / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=COPY_IGNORE)
        elif source.is_file():
            shutil.copyfile(source, target / name)
    return open_course(target)


def tools_env():
    """os.environ with this interpreter's `bin/` first on PATH, for running nbgrader.

    nbgrader shells out to the `alembic` script when it creates a gradebook; without the
    venv on PATH that fails half-way and leaves a database nbgrader can no longer upgrade.
    """
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path}


@contextlib.contextmanager
def _venv_tools_on_path():
    """Run the block with `tools_env()`'s PATH (nbgrader runs in-process)."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = tools_env()["PATH"]
    try:
        yield
    finally:
        os.environ["PATH"] = old


def _reason(log, error):
    """The most telling line of a failed run: the last `SomeError: ...` line, if any.

    nbgrader logs the real exception and then raises a generic NbGraderException
    ("see the above traceback"), so that generic one is skipped.
    """
    lines = [line.strip() for line in (log + "\n" + error).splitlines()]
    raised = [line for line in lines if _exception_name(line)]
    useful = [line for line in raised if _exception_name(line) != "NbGraderException"]
    if useful:
        return useful[-1]
    errors = [line for line in lines if line.startswith("[ERROR]")]
    return (errors or raised or ["unknown error"])[-1]


def _exception_name(line):
    """`ValueError` for lines like `ValueError: bad` or `pkg.mod.ValueError: bad`, else ''."""
    head, sep, _ = line.partition(":")
    name = head.rsplit(".", 1)[-1]
    if sep and name.isidentifier() and name.endswith(("Error", "Exception", "Exit")):
        return name
    return ""


def run_converter(course, converter_class, *, assignment, student="*", force=True,
                  overrides=None, **options):
    """Run one nbgrader converter (GenerateAssignment, Autograde, ...) in-process.

    `overrides` are extra `CourseDirectory` settings, `options` are attributes set on the
    converter (e.g. `create_assignment=True`). Returns nbgrader's captured log. nbgrader
    reports failure as a dict rather than raising; this raises `NbgraderError` instead.
    """
    prepare_database(course)  # nbgrader's converters would otherwise race to create it
    config = load_config(course, **(overrides or {}))
    coursedir = CourseDirectory(config=config, log=NBGRADER_LOG)
    coursedir.assignment_id = assignment
    coursedir.student_id = student
    converter = converter_class(coursedir=coursedir, config=config, log=NBGRADER_LOG)
    converter.force = force
    for name, value in options.items():
        setattr(converter, name, value)
    with _venv_tools_on_path(), warnings.catch_warnings():
        # nbgrader's own gradebook code trips SQLAlchemy's autoflush warnings; not ours to fix.
        warnings.simplefilter("ignore", SAWarning)
        result = capture_log(converter)
    log = result.get("log", "")
    if "KeyboardInterrupt" in result.get("error", ""):
        raise KeyboardInterrupt  # capture_log swallows Ctrl-C; the instructor meant it
    if not result["success"]:
        step = converter_class.__name__
        reason = _reason(log, result.get("error", ""))
        raise NbgraderError(f"{step} failed for {assignment}/{student}: {reason}", log=log)
    return log


def database_url(course):
    """The gradebook's database URL, from the course's own config (SQLite by default)."""
    return CourseDirectory(config=load_config(course), log=NBGRADER_LOG).db_url


def is_shared(url):
    """Whether the gradebook is a database server (PostgreSQL) rather than a file."""
    return url.startswith("postgresql")


@contextlib.contextmanager
def database_setup_lock(url):
    """Hold a cluster-wide lock while a gradebook may be created.

    nbgrader creates the tables (and its alembic stamp and course row) on first use; two
    graders doing that at once on an empty PostgreSQL database collide. SQLite needs
    nothing: its file lock already serialises them.
    """
    if not is_shared(url):
        yield
        return
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SETUP_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SETUP_LOCK_KEY})
    finally:
        engine.dispose()


def prepare_database(course):
    """Create the course's gradebook (tables, course row) once, before anything fans out."""
    with open_gradebook(course):
        pass


@contextlib.contextmanager
def open_gradebook(course):
    """nbgrader's `Gradebook` for this course: the database named in its config, always
    read from the course's `nbgrader_config.py` (never a default that silently starts a
    new SQLite file, nbgrader issue 1661)."""
    config = load_config(course)
    coursedir = CourseDirectory(config=config, log=NBGRADER_LOG)
    with _venv_tools_on_path(), database_setup_lock(coursedir.db_url):
        gradebook = Gradebook(coursedir.db_url, coursedir.course_id)
    try:
        yield gradebook
    finally:
        gradebook.close()
        gradebook.engine.dispose()  # a PostgreSQL connection otherwise stays open per gradebook
