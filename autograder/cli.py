"""Command line: parse arguments, call the pipeline steps, print what they return.

    python -m autograder [--course DIR] release [ASSIGNMENT ...]
    python -m autograder [--course DIR] grade ASSIGNMENT [--from PATH] [--force] [--workers N]
                                              [--scheduler ADDRESS] [--feedback]
    python -m autograder [--course DIR] feedback ASSIGNMENT
    python -m autograder [--course DIR] demo
"""
import argparse
import sys

from .course import NbgraderError, open_course
from .demo import run_demo
from .feedback import generate_feedback
from .core import ClusterLost
from .grade import grade, graded_students, results_dir
from .gradebook import GradingBusy
from .intake import IntakeError
from .release import LeakError, release
from .report import export_grades_csv, summary_table, write_report, write_results_csv
from .sandbox import SandboxUnavailable
from .verdicts import MissingCheck

# Failures that mean "the command could not do its job", shown without a traceback.
EXPECTED_ERRORS = (LeakError, NbgraderError, IntakeError, FileNotFoundError, FileExistsError,
                   SandboxUnavailable, MissingCheck, ClusterLost, GradingBusy)


def build_parser():
    """The argument parser for all subcommands."""
    parser = argparse.ArgumentParser(prog="autograder",
                                     description="Instructor tools for the course.")
    course_option = argparse.ArgumentParser(add_help=False)
    # SUPPRESS lets `--course` go before or after the subcommand without one undoing the other.
    course_option.add_argument("--course", default=argparse.SUPPRESS,
                        help="course directory, holding nbgrader_config.py (default: current dir)")
    parser.add_argument("--course", default=".", help="course directory (default: current dir)")
    commands = parser.add_subparsers(dest="command", required=True)

    rel = commands.add_parser("release", parents=[course_option],
                              help="regenerate release/ and the student bundle")
    rel.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="default: all")

    grd = commands.add_parser("grade", parents=[course_option],
                              help="grade a class in the sandbox: gradebook, CSVs, report, summary")
    grd.add_argument("assignment", metavar="ASSIGNMENT")
    grd.add_argument("--from", dest="source", metavar="PATH",
                     help="submitted/ layout, LMS folder or zip (default: the course's submitted/)")
    grd.add_argument("--force", action="store_true",
                     help="regrade submissions already graded and unchanged since")
    grd.add_argument("--workers", type=int, default=None, metavar="N",
                     help="sandboxed workers grading at once (default: one per core)")
    grd.add_argument("--scheduler", metavar="ADDRESS", default=None,
                     help="grade on the Dask cluster of this scheduler, e.g. tcp://10.0.0.5:8786 "
                          "(default: on this machine)")
    grd.add_argument("--feedback", action="store_true",
                     help="also write HTML feedback (same as the feedback command afterwards)")

    fbk = commands.add_parser("feedback", parents=[course_option],
                              help="HTML feedback for every graded student, hidden tests hidden")
    fbk.add_argument("assignment", metavar="ASSIGNMENT")

    commands.add_parser("demo", parents=[course_option], help="run the whole cycle on the sample class")
    return parser


def cmd_release(course, args):
    """`release`: regenerate release/ and the bundle, list what was written."""
    released = release(course, args.assignments or None)
    for path in released.notebooks:
        print(f"released {path.relative_to(course.root)}")
    print(f"student bundle: {released.bundle_dir} (+ {released.bundle_zip.name})")


def cmd_grade(course, args):
    """`grade`: grade in the sandbox, write the CSVs and the report, print the summary."""
    rows = grade(course, args.assignment, submissions=args.source, force=args.force,
                 slots=args.workers, scheduler=args.scheduler)
    folder = results_dir(course, args.assignment)
    print(f"results: {write_results_csv(rows, folder / 'results.csv')}")
    print(f"report: {write_report(rows, folder / 'report.html', title=args.assignment)}")
    if args.feedback:
        print_feedback(course, args.assignment, graded_students(rows))
    print(f"grades: {export_grades_csv(course)}")
    print(summary_table(rows))


def cmd_feedback(course, args):
    """`feedback`: HTML feedback for everyone with a score in the gradebook."""
    print_feedback(course, args.assignment, None)


def print_feedback(course, assignment, students):
    for path in generate_feedback(course, course.check(assignment), students):
        print(f"feedback {path.relative_to(course.root)}")


def cmd_demo(course, args):
    """`demo`: the whole instructor cycle on the sample class (prints as it goes)."""
    run_demo(course)


COMMANDS = {"release": cmd_release, "grade": cmd_grade, "feedback": cmd_feedback,
            "demo": cmd_demo}


def main(argv=None):
    """Entry point of `autograder` / `python -m autograder`; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](open_course(args.course), args)
    except EXPECTED_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
