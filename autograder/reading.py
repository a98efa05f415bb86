"""Read step: a submitted file's bytes -> the matched cells and the static reading of the
student's code, done in bounded helper processes.

Everything a submission makes our code do before the box is work the student chose: a
notebook of repeated line magics can keep IPython's transformer busy for minutes, a few
megabytes of plain lines can take gigabytes to parse. So the grader never reads a
submission itself. Each `Reader` keeps warm helpers (`python -m autograder.reading`), gives
each one file at a time, and waits for the answer until a deadline; a helper that runs
over its time is killed and replaced, and one that runs out of memory (its address space
is capped) dies or says so. Either way the answer is that student's own row, and the other
helpers read on. No student code runs here: the helpers parse, match and read statically.

The helper answers, as JSON, one of:
- `{"matched": ..., "notes": [...], "static": [...]}`: read, matched and read statically;
- `{"unreadable": reason}`: not a notebook we can read (empty, not UTF-8, not JSON, ...);
- `{"crash": "Type: message"}`: our reading code failed on this file;
and the grader adds `{"bound": reason}` when a helper ran over its time or memory.
"""
import json
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback

from . import wire
from .served import Served
from .text import exception_line

START_SECONDS = 60            # a helper that has not said hello by then cannot start
MAX_ANSWER_BYTES = 256 * 2**20


class ReaderUnavailable(RuntimeError):
    """A reading helper cannot start on this machine (not the submission's doing)."""


class Reader(Served):
    """`helpers` warm reading helpers, each owned by a thread; `read(spec, submission)`
    returns the helper's answer (a dict, see the module doc). Use as a context manager."""

    def __init__(self, helpers, limits):
        self.limits = limits
        self.helpers = [None] * max(helpers, 1)
        super().__init__(len(self.helpers), "reader")

    def submit(self, spec, submission):
        """Queue one file; a future of the helper's answer."""
        header = {"release": spec.release_nb, "others": spec.others, "name": submission.name}
        return super().submit(json.dumps(header).encode(), submission.data)

    def read(self, spec, submission):
        """The helper's answer for one file (blocks until it is there)."""
        return self.submit(spec, submission).result()

    def handle(self, index, header, data):
        helper = self.helpers[index]
        if helper is None or helper.poll() is not None:
            try:
                helper = self.helpers[index] = start_helper(self.limits)
            except Exception as error:  # noqa: BLE001 - ours, not the submission's
                raise ReaderUnavailable(exception_line(error)) from None
        answer, self.helpers[index] = ask(helper, header, data, self.limits)
        return answer

    def cool(self, index):
        if self.helpers[index] is not None:
            stop(self.helpers[index])


def start_helper(limits):
    """Start one reading helper and wait for its hello; raise if it does not come."""
    # stderr to a file, not a pipe: a helper must never block on a full pipe nobody reads.
    errors = tempfile.TemporaryFile()
    helper = subprocess.Popen([sys.executable, "-m", "autograder.reading",
                               str(limits.read_memory_mb)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=errors, start_new_session=True)
    try:
        hello = wire.read_frame(helper.stdout.fileno(), limit=1024,
                                deadline=time.monotonic() + START_SECONDS)
    except (wire.FrameTimeout, ValueError):
        hello = None
    if hello != b"ready":
        stop(helper)
        errors.seek(0)
        why = errors.read().decode(errors="replace").strip().splitlines()
        raise ReaderUnavailable("reading helper did not start: "
                                + (why[-1] if why else f"exit {helper.returncode}"))
    errors.close()
    return helper


def ask(helper, header, data, limits):
    """Send one file to `helper`; (answer, the helper to use next: None if it had to go)."""
    deadline = time.monotonic() + limits.read_seconds
    try:
        wire.write_frame(helper.stdin.fileno(), header)
        wire.write_frame(helper.stdin.fileno(), data)
        raw = wire.read_frame(helper.stdout.fileno(), limit=MAX_ANSWER_BYTES, deadline=deadline)
    except wire.FrameTimeout:
        stop(helper)
        return {"bound": f"reading it took longer than {limits.read_seconds:g} s"}, None
    except (OSError, ValueError):
        raw = None
    if raw is None:  # the helper died on this file: out of memory, or worse
        stop(helper)
        return {"bound": f"reading it needed more than {limits.read_memory_mb} MB of memory"}, None
    answer = json.loads(raw)
    if answer.get("restart"):  # it answered, but its memory is spent: a fresh one next time
        stop(helper)
        helper = None
    return answer, helper


def stop(helper):
    """End a helper (our own child, by its PID) and reap it."""
    if helper.poll() is None:
        helper.kill()
    helper.wait()


# ---------------------------------------------------------------- the helper's side

def open_file(data, header):
    """What the grader needs of one file, as the helper's answer (see the module doc)."""
    from . import tamper
    from .submission import Unreadable, match, read_notebook
    try:
        notebook, notes = read_notebook(data)
    except Unreadable as error:
        name = header.get("name")
        return {"unreadable": f"{name}: {error}" if name else str(error)}
    matched = match(notebook, header["release"], header["others"])
    mine = [c["source"] for cells in matched.answers.values() for c in cells]
    mine += [c["source"] for cells in matched.extras.values() for c in cells]
    return {"matched": matched.to_json(), "notes": notes, "static": tamper.static_flags(mine)}


def serve(memory_mb):
    """The helper's loop: one file in, one answer out, until stdin closes."""
    from . import submission, tamper  # noqa: F401  (warm: imported before the cap)
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    cap = mapped + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grader's Ctrl-C is the grader's
    wire.write_frame(stdout, b"ready")
    while (header := wire.read_frame(stdin, limit=MAX_ANSWER_BYTES)) is not None:
        data = wire.read_frame(stdin, limit=MAX_ANSWER_BYTES)
        if data is None:
            return
        try:
            answer = open_file(data, json.loads(header))
        except MemoryError:
            answer = {"bound": f"reading it needed more than {memory_mb} MB of memory",
                      "restart": True}
        except RecursionError as error:
            answer = {"crash": exception_line(error), "restart": True}
        except Exception as error:  # noqa: BLE001 - whatever the file makes our code do
            answer = {"crash": exception_line(error), "traceback": traceback.format_exc()}
        del data
        wire.write_frame(stdout, json.dumps(answer).encode())


if __name__ == "__main__":
    serve(int(sys.argv[1]))
