"""Where the work runs: a local pool of warm sandboxed workers, one per slot.

`Pool.submit(token, job)` takes one job (JSON-able cells and probes, no names, no expected
values) and returns a future of its `RunResult`; `Pool.run(jobs)` yields them as they finish. A sandbox that fails
(a worker that dies, a child that cannot be boxed) is retried on a fresh worker; only
when that fails too does the job come back as an infrastructure error.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import threading
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from . import sandbox
from .sandbox import Limits, SandboxUnavailable
from .served import Served

BOX_MODULES = [Path(__file__).with_name(name)
               for name in ("sandbox.py", "syscalls.py", "wire.py", "worker.py")]
RETRIES = 2
WORKER_DIED = "infrastructure: sandbox worker died"  # while running a job it had taken


@dataclass(frozen=True)
class RunResult:
    """What came back for one job: the child's fate, its raw result lines, or why not."""

    token: str
    status: str            # "exit 0", "signal 9", "timeout", or "infrastructure: ..."
    lines: bytes = b""
    truncated: bool = False
    seconds: float = 0.0
    out_of_memory: bool = False  # the kernel killed a process of the run for memory
    where: str = ""        # host and slot that ran it
    events: tuple = ()     # what the supervisor saw the run reach for (outside its reach)
    detail: str = ""       # for the grader's log: why the sandbox failed, in full

    @property
    def infrastructure_error(self):
        return self.status.startswith("infrastructure")


def student_package_dir():
    """The folder holding `gdlab` (mounted read-only in the box)."""
    import gdlab
    return Path(gdlab.__file__).resolve().parent


def mpl_config_dir():
    """A matplotlib config dir with the font cache built once, readable by the box users."""
    import matplotlib
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    folder = root / "gd-autograder" / f"matplotlib-{matplotlib.__version__}"
    if not any(folder.glob("fontlist-*.json")):
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], check=True,
                       env={**os.environ, "MPLCONFIGDIR": str(folder)})
    for path in [folder, *folder.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def box_command(slot):
    """The bubblewrap command line for the worker of `slot` (see `sandbox.worker_command`)."""
    read_only = {Path(sys.base_prefix).resolve(), Path(sys.prefix), student_package_dir(),
                 mpl_config_dir()}
    env = {"PATH": f"{sys.prefix}/bin:/usr/bin:/bin", "HOME": sandbox.WORKSPACE, "LANG": "C.UTF-8",
           "OPENBLAS_NUM_THREADS": 1, "OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1,
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": mpl_config_dir(),
           "IPYTHONDIR": f"{sandbox.WORKSPACE}/.ipython", "PYTHONNOUSERSITE": 1}
    command = sandbox.worker_command(python=Path(sys.executable), read_only=sorted(read_only),
                                     box_modules=BOX_MODULES, env=env)
    # An installed (not editable) autograder would sit inside a mounted site-packages:
    # cover it, so no code in the box can import the reference implementation.
    here = Path(__file__).resolve().parent
    if any(here.is_relative_to(path) for path in read_only):
        command[command.index("--clearenv"):command.index("--clearenv")] = ["--tmpfs", str(here)]
    return command + [str(slot)]


def parse_status(data):
    """The supervisor's status line: (the child's fate, the events it saw). A line that is
    not there (the worker ended the supervisor at its own deadline) is a lost fate."""
    try:
        status = json.loads(bytes(data))
        events = tuple(str(event)[:300] for event in status["events"][:2 * sandbox.MAX_EVENTS])
        return str(status["status"]), events
    except (ValueError, KeyError, TypeError):
        return "lost", ()


class BoxedWorker:
    """One warm worker process in its bubblewrap box, spoken to in frames."""

    def __init__(self, slot, limits):
        self.slot, self.limits = slot, limits
        self.cgroup = sandbox.SlotCgroup(slot)
        self.process = subprocess.Popen(box_command(slot), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        preexec_fn=self.cgroup.join)
        self.stderr_tail = []
        self.drainer = threading.Thread(target=self._drain_stderr, daemon=True)
        self.drainer.start()
        self.ready = False

    def wait_until_ready(self):
        """Wait for the worker's hello; raise `SandboxUnavailable` if it never comes."""
        if self.ready:
            return
        hello = self.read_frame()
        if hello is None or b"ready" not in hello:
            self.close()
            error = SandboxUnavailable(f"sandbox worker {self.slot} did not start: "
                                       f"{self.last_words()}")
            error.detail = "\n".join(self.stderr_tail)  # the whole traceback, for the log
            raise error
        self.cgroup.limit(self.limits)
        self.ready = True

    def last_words(self):
        """The worker's last line on stderr (a traceback's last line says what went wrong),
        once it has ended."""
        self.drainer.join(timeout=5)
        said = [line for line in self.stderr_tail if line]
        return said[-1] if said else f"exit {self.process.poll()}"

    def _drain_stderr(self):
        for line in self.process.stderr:
            self.stderr_tail = (self.stderr_tail + [line.decode(errors="replace").strip()])[-20:]

    def read_frame(self):
        size = self.process.stdout.read(4)
        if len(size) < 4:
            return None
        (length,) = struct.unpack(">I", size)
        data = self.process.stdout.read(length)
        return data if len(data) == length else None

    def write_frame(self, data):
        self.process.stdin.write(struct.pack(">I", len(data)) + data)

    def run(self, token, job_bytes, limits):
        """Run one job; a `RunResult` (an infrastructure error if the worker broke)."""
        self.wait_until_ready()
        killed_before = self.cgroup.oom_kills()
        try:
            self.write_frame(json.dumps({"token": token, "limits": asdict(limits)}).encode())
            self.write_frame(job_bytes)
            self.process.stdin.flush()
            header, status, lines = self.read_frame(), self.read_frame(), self.read_frame()
        except (BrokenPipeError, OSError) as error:
            header, status, lines = None, None, str(error)
        if header is None or status is None or lines is None:
            return RunResult(token, f"{WORKER_DIED}: {self.last_words()}",
                             detail="\n".join(self.stderr_tail))
        header = json.loads(header)
        fate, events = parse_status(status)
        if fate.startswith("failed"):  # the box could not be built around this child
            fate = f"infrastructure: {fate}"
        return RunResult(token, fate, lines, header["truncated"], header["seconds"],
                         self.cgroup.oom_kills() > killed_before, events=events)

    @property
    def alive(self):
        return self.process.poll() is None

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.cgroup.close()


class Pool(Served):
    """`slots` boxed workers, each served by its own thread for the pool's whole life.

    Each slot is claimed machine-wide (`sandbox.claim_slot`), so two pools on one machine
    (two graders, or two Dask workers) never share a slot's user or cgroup. Each thread
    starts its own worker: bubblewrap's --die-with-parent fires when the *thread* that
    started it ends, so the workers stay warm exactly as long as the pool. Use as a context
    manager so they always stop.
    """

    closed_error = SandboxUnavailable

    def __init__(self, slots=None, limits=Limits()):
        self.slots = slots or os.cpu_count() or 1
        self.limits = limits
        sandbox.check_available()
        self.claims = []
        try:
            for _ in range(self.slots):
                self.claims.append(sandbox.claim_slot())
                sandbox.slot_user(self.claims[-1].slot)
        except BaseException:
            self._release()
            raise
        self.workers = [None] * self.slots
        super().__init__(self.slots, "sandbox-slot")

    def close(self):
        """Cancel what has not started, stop the slot threads (each closes its worker) and
        give the slots back. Jobs already running finish first."""
        super().close()
        self._release()

    def _release(self):
        for claim in self.claims:
            claim.release()
        self.claims = []

    def where(self, index):
        """Where a slot's runs happen, as reported with each result."""
        return f"{socket.gethostname()}/slot{self.claims[index].slot}"

    def submit(self, token, job):
        """Queue one job (a JSON-able dict); a `concurrent.futures.Future` of its `RunResult`."""
        return super().submit(token, json.dumps(job, allow_nan=True).encode())

    def run(self, jobs):
        """Yield a `RunResult` per `(token, job)` as each finishes, `slots` at a time."""
        futures = [self.submit(token, job) for token, job in jobs]
        for future in as_completed(futures):
            yield future.result()

    def warm(self, index):
        self._worker(index)

    def handle(self, index, token, job):
        return self.run_one(index, token, job)

    def cool(self, index):
        if self.workers[index] is not None:
            self.workers[index].close()

    def _worker(self, index, fresh=False):
        current = self.workers[index]
        if fresh or current is None or not current.alive:
            if current is not None:
                current.close()
            self.workers[index] = BoxedWorker(self.claims[index].slot, self.limits)
            self.workers[index].wait_until_ready()
        return self.workers[index]

    def run_one(self, index, token, job):
        """Run a job on a slot's worker, retrying on a fresh worker if the sandbox failed."""
        if len(job) > sandbox.MAX_JOB_BYTES:  # the worker would die reading it, every retry
            return RunResult(token, f"refused: its code is {len(job) / 2**20:.0f} MB, over the "
                                    f"{sandbox.MAX_JOB_BYTES // 2**20} MB a run takes",
                             where=self.where(index))
        result, deaths = None, 0
        for attempt in range(1 + RETRIES):
            try:
                result = self._worker(index, fresh=attempt > 0).run(token, job, self.limits)
            except Exception as error:  # a worker that cannot start or answer: never a score
                result = RunResult(token, f"infrastructure: {type(error).__name__}: {error}",
                                   detail=getattr(error, "detail", ""))
            if not result.infrastructure_error:
                break
            deaths += result.status.startswith(WORKER_DIED)
        if deaths == 1 + RETRIES:  # a warm worker died under this job on every try: its doing
            result = replace(result, status=f"killed its worker: {result.status[16:]}")
        return replace(result, where=self.where(index))
