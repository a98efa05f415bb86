"""The warm interpreter inside the box: imports once, forks a child per submission, runs
the cells, streams plain results back. It never holds an expected value.

Runs as `python /grader/worker.py SLOT` under bubblewrap (see `sandbox.worker_command`);
only `sandbox.py`, `syscalls.py` and `wire.py` sit beside it; the rest of the autograder is
not mounted.

Protocol on stdin/stdout, every frame a 4-byte big-endian length and its bytes:
- the worker says `{"ready": ...}` once warm;
- the grader sends a header `{"token", "limits"}` and then the job, JSON with `cells`
  (sources to run in order), `probes` (what to hand back) and `seed`;
- the worker answers with a header `{"token", "truncated", "seconds"}`, the supervisor's
  status line (the child's fate and what it saw the child reach for, from outside its
  reach) and the child's result lines (the student's process's words). It reads neither:
  only the grader parses them, and the buffers they passed through are wiped.
The job is read into one preallocated buffer and wiped once the child has it, so a later
child cannot find an earlier student's cells in the memory it inherits.
"""
import gc
import json
import os
import select
import sys
import time

import sandbox
from wire import read_frame_into, write_frame

# Bound now: a cell that patches `os.write` cannot rewrite what the child sends back.
_write = os.write
STATUS_BYTES = 64 * 1024  # the supervisor's status line: a fate and a few dozen notes
MAX_JOB_BYTES = sandbox.MAX_JOB_BYTES
class CappedText:
    """A text stream that keeps the first `limit` characters and counts the rest."""

    def __init__(self, limit):
        self.limit, self.parts, self.kept, self.dropped = limit, [], 0, 0

    def write(self, text):
        text = str(text)
        room = self.limit - self.kept
        self.parts.append(text[:max(room, 0)])
        self.kept += min(len(text), max(room, 0))
        self.dropped += max(len(text) - max(room, 0), 0)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    def text(self):
        tail = f"\n[... {self.dropped} more characters of output not kept]" if self.dropped else ""
        return "".join(self.parts) + tail


class Worker:
    """Warm state shared (copy-on-write) by every child: modules, a shell, the baseline."""

    def __init__(self, slot):
        self.slot = slot
        sandbox.set_oom_score(-1000)  # never the OOM killer's choice, where the kernel allows
        # matplotlib wants a writable config dir: copy the prebuilt font cache into ours.
        import shutil
        writable = os.path.join(sandbox.WORKSPACE, "matplotlib")
        shutil.copytree(os.environ["MPLCONFIGDIR"], writable, dirs_exist_ok=True)
        os.environ["MPLCONFIGDIR"] = writable
        import numpy  # noqa: F401  (OPENBLAS_NUM_THREADS=1 comes from the environment)
        for lazy in ("linalg", "fft", "random", "polynomial", "ma", "testing", "lib.stride_tricks"):
            __import__(f"numpy.{lazy}")
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config
        import ipywidgets  # noqa: F401
        for module in ("gdlab.checks", "gdlab.data", "gdlab.plots", "gdlab.widgets"):
            __import__(module)
        config = Config()
        config.HistoryManager.enabled = False
        self.shell = InteractiveShell.instance(config=config)
        self.shell.enable_gui = lambda gui=None: None  # no event loop: inline needs none
        # Errors come back as one line each (type and message); a traceback would show
        # the grader's frames and, formatted in the box, costs more than the cell.
        self.shell.showtraceback = self.shell.showsyntaxerror = lambda *a, **k: None
        self.shell.enable_matplotlib("inline")
        # A figure shows as its text, as in a notebook's text view: no PNG rendering cost.
        self.shell.display_formatter.formatters["image/png"].enabled = False
        self.run_cell("import numpy as np\nimport matplotlib.pyplot as plt\n"
                      "plt.plot([0, 1]); plt.show()\nfrom ipywidgets import interact")
        self.shell.reset(new_session=False)
        self.numpy, self.plt = numpy, plt
        self.baseline = Baseline(self.shell, numpy)
        self.watch_roots = self.allowed_roots()
        self.results = bytearray()  # one buffer for every child's results, wiped after each
        self.status = bytearray(STATUS_BYTES)  # and one for its supervisor's status line
        gc.collect()
        gc.freeze()  # the warm heap stays shared with every child

    def allowed_roots(self):
        import gdlab
        import matplotlib
        roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sandbox.WORKSPACE, sandbox.BOX_DIR,
                 os.path.dirname(gdlab.__file__), matplotlib.get_data_path(),
                 os.environ.get("MPLCONFIGDIR", sandbox.WORKSPACE), "/proc",
                 "/dev/pts", "/dev/ptmx", "/dev/shm", *sandbox.SYSTEM_PATHS,
                 *(f"/dev/{device}" for device in sandbox.DEVICES)}
        roots |= {os.path.realpath(p) for p in sys.path if p}
        return sorted(roots)

    def run_cell(self, source, limit=64_000):
        """Run one cell as a kernel would; return (status dict, captured output)."""
        out = CappedText(limit)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        try:
            result = self.shell.run_cell(source, store_history=False)
        finally:
            sys.stdout, sys.stderr = saved
        error = result.error_before_exec or result.error_in_exec
        status = {"status": "error" if error else "ok"}
        if error is not None:
            status["error"] = f"{type(error).__name__}: {error}"[:600]
        return status, out.text()

    def serve(self):
        """Answer jobs until stdin closes."""
        header_buffer, job_buffer = bytearray(64 * 1024), bytearray(MAX_JOB_BYTES)
        write_frame(1, json.dumps({"ready": self.slot, "pid": os.getpid()}).encode())
        while True:
            size = read_frame_into(0, header_buffer)
            if size is None:
                return
            header = json.loads(bytes(header_buffer[:size]))
            length = read_frame_into(0, job_buffer)
            if length is None:
                return
            limits = sandbox.Limits(**header["limits"])
            start = time.perf_counter()
            status, results, truncated = self.run_job(memoryview(job_buffer)[:length], limits)
            try:
                write_frame(1, json.dumps({"token": header["token"], "truncated": truncated,
                                           "seconds": time.perf_counter() - start}).encode())
                write_frame(1, status)
                write_frame(1, results)
            finally:
                # The next child inherits this memory: both buffers hold the student's words.
                used = min(len(self.results), len(results) + 1)  # the byte past the limit too
                self.results[:used] = bytes(used)
                self.status[:len(status)] = bytes(len(status))

    def run_job(self, job, limits):
        """Fork the boxed child for one job; collect its result bytes and its fate."""
        result_read, result_write = os.pipe()
        try:
            pid, status_fd = sandbox.spawn_child(
                lambda: Child(self, job, result_write, limits).run(),
                slot=self.slot, limits=limits, keep_fds=[result_write],
                watch_roots=self.watch_roots)
        finally:
            job[:] = bytes(len(job))  # the child has its copy; nobody after it gets one
            os.close(result_write)
        # Straight into one buffer, wiped once sent: chunks read and joined would stay in
        # freed memory, where every later child (a fork of this process) could read them.
        if len(self.results) < limits.result_bytes + 1:
            self.results = bytearray(limits.result_bytes + 1)
        results = memoryview(self.results)
        size, truncated = 0, False
        deadline = time.monotonic() + limits.wall_seconds + 10
        while time.monotonic() < deadline:
            ready, _, _ = select.select([result_read], [], [], 1.0)
            if not ready:
                continue
            got = os.readv(result_read, [results[size:]])
            if not got:
                break
            size += got
            if size > limits.result_bytes:
                truncated = True
                break
        os.close(result_read)
        if time.monotonic() >= deadline or truncated:
            os.kill(pid, 9)  # the intermediate; its boxed child dies by its death signal
        status = self.read_status(status_fd)
        os.close(status_fd)
        os.waitpid(pid, 0)
        return status, results[:min(size, limits.result_bytes)], truncated

    def read_status(self, fd):
        """The intermediate's one JSON line (the child's fate, what its supervisor saw),
        unread: the paths it quotes are the student's, so they pass through one buffer,
        wiped once sent, and are parsed by the grader only."""
        view, size = memoryview(self.status), 0
        while size < len(view) and (got := os.readv(fd, [view[size:]])):
            size += got
        return view[:size]


class Child:
    """One submission's run, inside the box: cells, tamper signals, probes, one line each."""

    def __init__(self, worker, job, result_fd, limits):
        self.worker, self.shell, self.limits = worker, worker.shell, limits
        self.job = json.loads(bytes(job))
        self.fd = result_fd
        self.pid = os.getpid()

    def send(self, record):
        if os.getpid() != self.pid:  # a copy the student forked, back in the runner's code:
            os._exit(0)              # it has no word to add to the results
        line = json.dumps(record, allow_nan=True, default=str) + "\n"
        _write(self.fd, line.encode())

    def run(self):
        import random
        np = self.worker.numpy
        seed = self.job.get("seed", 0)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        baseline = self.worker.baseline
        for index, source in enumerate(self.job["cells"]):
            status, output = self.worker.run_cell(source, self.limits.output_bytes)
            self.worker.plt.close("all")
            self.send({"cell": index, **status, "output": output})
        for probe in self.job["probes"]:
            self.send(self.probe(probe))
        self.send({"signals": baseline.changes(self.shell, np)})
        self.send({"done": True})

    def probe(self, probe):
        """Evaluate one probe in the student's namespace; plain numbers or an error back."""
        import warnings
        np, ns = self.worker.numpy, self.shell.user_ns
        try:
            if probe["kind"] == "rerun":
                for name, value in probe["set"].items():
                    ns[name] = decode(value, np)
                for source in self.job["reruns"][probe["cell"]]:
                    status, _ = self.worker.run_cell(source, 0)
                    if status["status"] == "error":
                        return {"probe": probe["id"], "ok": False, "error": status["error"]}
                value = tuple(ns.get(name) for name in probe["collect"])
            elif probe["name"] not in ns:
                return {"probe": probe["id"], "ok": False,
                        "error": f"NameError: name '{probe['name']}' is not defined"}
            elif probe["kind"] == "value":
                value = ns[probe["name"]]
            else:
                args = [ns.get(a["ref"]) if isinstance(a, dict) and "ref" in a else decode(a, np)
                        for a in probe["args"]]
                saved_names = {name: ns.get(name) for name in probe.get("swap", {})}
                for name, constant in probe.get("swap", {}).items():
                    ns[name] = lambda x, c=constant: np.full(np.shape(x), c, dtype=float)
                out = CappedText(0)
                saved = sys.stdout, sys.stderr
                sys.stdout = sys.stderr = out
                try:
                    with warnings.catch_warnings(), np.errstate(over=probe.get("over", "warn")):
                        warnings.simplefilter("error" if probe.get("strict") else "ignore")
                        value = ns[probe["name"]](*args)
                finally:
                    sys.stdout, sys.stderr = saved
                    ns.update(saved_names)
            return {"probe": probe["id"], "ok": True, "value": encode(value, np)}
        except BaseException as error:  # SystemExit and KeyboardInterrupt included
            return {"probe": probe["id"], "ok": False,
                    "error": f"{type(error).__name__}: {error}"[:600]}


def encode(value, np, depth=0):
    """Plain JSON for a value: numbers as {shape, data}, tuples kept, anything else its type."""
    if value is None:
        return None
    if isinstance(value, tuple) and depth < 2:
        return {"tuple": [encode(item, np, depth + 1) for item in value]}
    try:
        array = np.asarray(value, dtype=float)
    except BaseException:
        return {"type": type(value).__name__[:60]}
    if array.size > 100_000:
        return {"type": f"array of {array.size} numbers"}
    return {"shape": list(array.shape), "data": array.ravel().tolist()}


def decode(value, np):
    """The inverse of `encode` for inputs the grader sends (arrays and numbers)."""
    if isinstance(value, dict) and "shape" in value:
        return np.array(value["data"], dtype=float).reshape(value["shape"])
    return value


class Baseline:
    """What the student's code could patch to fool checks run in its interpreter.

    Taken in the worker, before any child exists: ids of numpy's and the builtins' names,
    the interpreter's hooks. A child reports what differs after the student's cells.
    """

    def __init__(self, shell, np):
        self.numpy = {name: id(getattr(np, name)) for name in dir(np) if not name.startswith("_")}
        self.testing = {name: id(getattr(np.testing, name)) for name in dir(np.testing)
                        if not name.startswith("_")}
        import builtins
        self.builtins = {name: id(value) for name, value in vars(builtins).items()}
        self.hooks = self.ipython_hooks(shell)
        self.modules = {name: id(sys.modules.get(name)) for name in ("numpy", "builtins", "sys")}

    @staticmethod
    def ipython_hooks(shell):
        manager = shell.input_transformer_manager
        return {"input transformer": len(shell.input_transformers_post)
                + len(manager.cleanup_transforms) + len(manager.line_transforms)
                + len(manager.token_transformers),
                "AST transformer": len(shell.ast_transformers),
                "trace function": int(sys.gettrace() is not None or sys.getprofile() is not None),
                "import hook": len(sys.meta_path) + len(sys.path_hooks)}

    def changes(self, shell, np):
        import builtins
        found = [f"patched numpy.{name}" for name, ident in self.numpy.items()
                 if id(getattr(np, name, None)) != ident]
        found += [f"patched numpy.testing.{name}" for name, ident in self.testing.items()
                  if id(getattr(np.testing, name, None)) != ident]
        found += [f"replaced builtins.{name}" for name, ident in self.builtins.items()
                  if id(vars(builtins).get(name)) != ident and name != "_"]
        found += [f"replaced module {name}" for name, ident in self.modules.items()
                  if id(sys.modules.get(name)) != ident]
        found += [f"added an {hook}" for hook, count in self.ipython_hooks(shell).items()
                  if count > self.hooks[hook]]
        bound = shell.user_ns.get("np", np)
        if bound is not np:
            found.append(f"bound np to a {type(bound).__name__}, not numpy")
        return found[:20]


if __name__ == "__main__":
    Worker(int(sys.argv[1]) if len(sys.argv) > 1 else 0).serve()
