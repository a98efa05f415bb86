"""The box: bubblewrap around a warm worker; namespaces, a private tmpfs, an unprivileged
user and limits around each child the worker forks.

It knows nothing about notebooks or nbgrader, and it uses the standard library only:
`worker.py` imports it inside the box, where the rest of the autograder is not mounted.

Layers, from the outside in:
1. `worker_command` starts one worker per slot under bubblewrap, as root in a box that
   sees the Python install, the student package and the two box modules read-only, and
   nothing else of the machine: no course, no gradebook, no submissions, no network.
2. `enter_child` runs in each forked child: it unshares mount, network, PID, IPC and UTS
   namespaces, mounts a private /tmp and /proc, drops to the slot's unprivileged user,
   sets resource limits and loads the system-call policy of `syscalls` as a seccomp filter.
3. `Supervisor` runs in the process between the worker and the child (outside the
   child's reach: another user, another PID namespace): it answers the calls the filter
   hands it (seccomp user notification), notes what the child reached for, and enforces
   the wall time. What it notes cannot be forged by the student's code; what the child
   reports about itself (see `worker.Baseline`) can only be trusted as far as the static
   reading of its cells allows.
"""
import ctypes
import errno
import fcntl
import grp
import json
import os
import platform
import pwd
import re
import resource
import select
import shutil
import signal
import socket
import struct
import time
from dataclasses import dataclass

try:
    from . import syscalls
except ImportError:  # inside the box, where the box modules sit side by side in /grader
    import syscalls

# Users `gdsandbox0` ... : one per worker slot, so one slot's fork bomb cannot use up the
# process limit of another slot's honest child (RLIMIT_NPROC counts per user).
USER_PREFIX = "gdsandbox"
MAX_SLOTS = 16
SLOT_LOCKS = "/run/gd-autograder"  # one lock file per slot, held by the pool using it
BOX_DIR = "/grader"        # where the two box modules are mounted inside the box
WORKSPACE = "/tmp"         # the child's private, writable, size-capped home
MAX_JOB_BYTES = 16 * 2**20  # the largest job (cells and probes, as JSON) a worker takes
DEVICES = ("null", "zero", "full", "random", "urandom")
PTY_MAX = 4                # pseudo-terminals one child may hold
# The system's own files a program in the box reads as it starts (no note when opened).
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc/ld.so.cache", "/etc/localtime",
                "/etc/ld.so.preload", "/etc/locale.alias", "/sys/devices/system/cpu")

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_REC, MS_PRIVATE = 1 << 14, 1 << 18
READ_ONLY_ENV = "GD_BOX_READ_ONLY"  # the box's read-only paths, for the child to keep in view
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38


class SandboxUnavailable(RuntimeError):
    """This machine cannot build the box; the message says what to install or run."""


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Exceeding any of them ends that submission only."""

    wall_seconds: float = 60.0
    cpu_seconds: int = 30
    memory_mb: int = 1024          # address space on top of the warm worker's own
    processes: int = 32            # per slot user, threads included
    tmp_mb: int = 64               # the private /tmp
    file_mb: int = 16              # largest file the child may write
    output_bytes: int = 64_000     # captured output kept per cell
    result_bytes: int = 8_000_000  # everything the child hands back
    # Before the box: the file as handed in, and reading it (parse, match, static reading).
    submission_mb: int = 8         # largest notebook file taken in
    read_seconds: float = 10.0     # wall time to read one file
    read_memory_mb: int = 1024     # memory to read one file


# ---------------------------------------------------------------- outside the box

def slot_user(slot):
    """(name, uid, gid) of the unprivileged user for worker `slot`."""
    name = f"{USER_PREFIX}{slot % MAX_SLOTS}"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SandboxUnavailable(
            f"no user {name}: run `sudo scripts/install-sandbox` once on this machine") from None
    try:
        group = grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        group = str(entry.pw_gid)
    if group != name:  # a shared group would let one slot's files reach another's
        raise SandboxUnavailable(
            f"sandbox user {name} is in group {group}, not a group of its own: run "
            "`sudo scripts/install-sandbox` once more")
    return name, entry.pw_uid, entry.pw_gid


def check_available(slots=0):
    """Raise `SandboxUnavailable` unless bubblewrap, root and the slot users are here."""
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable("bubblewrap is not installed: run `sudo scripts/install-sandbox`")
    if os.geteuid() != 0:
        raise SandboxUnavailable("the hardened grader starts its sandboxes as root "
                                 "(each student's code then runs as an unprivileged user)")
    if seccomp_arch() is None:
        raise SandboxUnavailable(f"no seccomp filter for {platform.machine()}")
    for slot in range(min(slots, MAX_SLOTS)):
        slot_user(slot)


@dataclass
class SlotClaim:
    """A slot held machine-wide by an open, locked file; the lock goes with the process."""

    slot: int
    fd: int

    def release(self):
        if self.fd >= 0:
            os.close(self.fd)  # closing drops the flock
            self.fd = -1


def claim_slot(folder=SLOT_LOCKS):
    """Claim the first free slot on this machine, or raise `SandboxUnavailable`.

    Pools in different processes (two graders, two Dask workers on one host) would
    otherwise both use slot 0: one user and one process limit for two students' code.
    """
    os.makedirs(folder, mode=0o700, exist_ok=True)
    for slot in range(MAX_SLOTS):
        fd = os.open(f"{folder}/slot{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return SlotClaim(slot, fd)
    raise SandboxUnavailable(f"all {MAX_SLOTS} sandbox slots of this machine are in use "
                             "(by other graders or Dask workers here)")


def worker_command(*, python, read_only, box_modules, env):
    """The bubblewrap command line of one worker.

    `read_only` are host paths mounted at the same place (the Python install, the venv,
    the student package); `box_modules` are the files mounted under /grader; `env` is the
    worker's whole environment. The worker is root in the box, holding only the
    capabilities it needs to build each child's namespaces and drop its privileges.
    """
    command = ["bwrap", "--die-with-parent", "--new-session",
               "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
               "--unshare-cgroup-try", "--hostname", "sandbox"]
    # SYS_PTRACE: the supervisor reads the path a child asks to open from its memory.
    # SYS_RESOURCE: each child's OOM score is fixed at the top, where it cannot lower it.
    command += ["--cap-drop", "ALL"]  # as root, bubblewrap would otherwise keep them all
    for cap in ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_SYS_PTRACE",
                "CAP_SYS_RESOURCE"):
        command += ["--cap-add", cap]
    command += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64"):
        if os.path.islink(f"/{name}"):
            command += ["--symlink", os.readlink(f"/{name}"), f"/{name}"]
        elif os.path.isdir(f"/{name}"):
            command += ["--ro-bind", f"/{name}", f"/{name}"]
    # /etc/passwd and /etc/group: for the child's drop to its slot user (made as root;
    # /etc itself stays closed to that user).
    for path in ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group"):
        if os.path.exists(path):
            command += ["--ro-bind", path, path]
    command += ["--proc", "/proc", "--tmpfs", WORKSPACE]
    # A /dev of the five data devices, no more: no tty, no shared /dev/shm, and no
    # pseudo-terminals but the few of each child's own devpts (mounted on /dev/pts by
    # `enter_child`; every instance draws on the host's one count of them).
    command += ["--perms", "0755", "--tmpfs", "/dev"]
    for device in DEVICES:
        command += ["--dev-bind", f"/dev/{device}", f"/dev/{device}"]
    command += ["--perms", "0755", "--dir", "/dev/pts", "--symlink", "pts/ptmx", "/dev/ptmx",
                "--perms", "0755", "--dir", "/dev/shm"]
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        command += ["--symlink", target, f"/dev/{name}"]
    made = set()
    for path in read_only:
        # Parent folders bubblewrap makes on its own are not traversable by other users
        # (this one may sit under /root): make them explicitly, open to all.
        for parent in reversed(_ancestors(str(path))):
            if parent not in made:
                made.add(parent)
                command += ["--perms", "0755", "--dir", parent]
        command += ["--ro-bind", str(path), str(path)]
    for path in box_modules:
        command += ["--ro-bind", str(path), f"{BOX_DIR}/{os.path.basename(path)}"]
    command += ["--clearenv", "--setenv", READ_ONLY_ENV, ":".join(map(str, read_only))]
    for key, value in sorted(env.items()):
        command += ["--setenv", key, str(value)]
    command += ["--chdir", WORKSPACE, "--", str(python), "-E", "-s", "-B",
                f"{BOX_DIR}/worker.py"]
    return command


CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_NAME = "gd-autograder"


class SlotCgroup:
    """Cgroups (v1) around one worker and everything it forks: memory, processes, CPU.

    RLIMIT_AS bounds each process; a submission that forks would hold `processes` times
    as much. The slot's memory cgroup bounds them together: after the worker is warm its
    limit is what it uses plus `memory_mb`, and the kernel's OOM killer picks the child (its
    score is raised to the top) rather than the worker. A child that lowers its score again
    and brings the worker down is retried on a fresh worker, and one that does so every
    time is flagged (see `pool.Pool.run_one`); either way only its own slot is touched. The
    slot's CPU cgroup holds it to one core, so however many processes a submission starts
    (each in a session of its own), the other slots keep theirs. Without writable cgroups
    this does nothing, and the per-process limits still hold.
    """

    CONTROLLERS = ("memory", "pids", "cpu")

    def __init__(self, slot):
        self.paths = {}
        for controller in self.CONTROLLERS:
            path = f"{CGROUP_ROOT}/{controller}/{CGROUP_NAME}/slot{slot}-{os.getpid()}"
            try:
                os.makedirs(path, exist_ok=True)
                self.paths[controller] = path
            except OSError:
                pass

    def join(self):
        """Enter the cgroups (run in the worker's process before it starts bubblewrap)."""
        for path in self.paths.values():
            with open(f"{path}/cgroup.procs", "w") as procs:
                procs.write(str(os.getpid()))

    def limit(self, limits):
        """Cap the slot at what the warm worker holds plus what one submission may use,
        and at one core."""
        if "memory" in self.paths:
            # What the warm worker holds, not what the cgroup was charged: the page cache of
            # the files it imported counts in the usage, and would leave room to spare.
            with open(f"{self.paths['memory']}/memory.stat") as stat:
                held = dict(line.split() for line in stat)
            used = int(held["total_rss"]) + int(held["total_mapped_file"])
            _write(f"{self.paths['memory']}/memory.limit_in_bytes",
                   used + limits.memory_mb * 2**20)
        if "pids" in self.paths:
            _write(f"{self.paths['pids']}/pids.max", limits.processes + 16)  # bwrap, worker, ...
        if "cpu" in self.paths:
            with open(f"{self.paths['cpu']}/cpu.cfs_period_us") as period:
                _write(f"{self.paths['cpu']}/cpu.cfs_quota_us", int(period.read()))

    def oom_kills(self):
        """How many processes the kernel has killed in this slot for want of memory."""
        for path in filter(None, [self.paths.get("memory")]):
            try:
                with open(f"{path}/memory.oom_control") as control:
                    for line in control:
                        if line.startswith("oom_kill "):
                            return int(line.split()[1])
            except OSError:
                pass
        return 0

    def close(self):
        for path in self.paths.values():
            try:
                os.rmdir(path)
            except OSError:
                pass  # still busy for a moment: the next run's makedirs reuses nothing of it


def _write(path, value):
    with open(path, "w") as file:
        file.write(str(value))


def _ancestors(path):
    """`/a/b/c` -> [`/a/b`, `/a`] (nearest first)."""
    parts = os.path.normpath(path).split("/")[1:-1]
    return ["/" + "/".join(parts[:i]) for i in range(len(parts), 0, -1)]


# ---------------------------------------------------------------- inside the box

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source, target, fstype, flags=0, data=None):
    _check(_libc.mount(source.encode() if source else None, target.encode(),
                       fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                       data.encode() if data else None), f"mount {target}")


def spawn_child(run, *, slot, limits, keep_fds, watch_roots=()):
    """Fork a child that runs `run()` boxed; return (pid, status_fd).

    The forked process is the intermediate, outside the new PID namespace: it starts `run`
    as PID 1 of a fresh namespace and supervises it (`Supervisor`), then writes one JSON
    line to `status_fd`: the boxed process's fate ("exit N", "signal N", "timeout" or
    "failed ...") and the events the supervisor saw. Everything else the boxed process
    left behind dies with its namespace. `watch_roots` are the paths the child may open
    without a note.
    """
    status_read, status_write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(status_write)
        return pid, status_read
    report = {"status": "lost", "events": []}
    try:
        os.close(status_read)
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC
                             | CLONE_NEWUTS), "unshare")
        # This process's /proc, before the child mounts its own over it: the supervisor
        # finds the child's memory and working folder by the PIDs it sees.
        proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        boxed = os.fork()
        if boxed == 0:
            os.close(status_write)
            mine.close()
            enter_child(slot=slot, limits=limits, keep_fds=keep_fds, listener_to=theirs)
            run()
            os._exit(0)
        theirs.close()
        supervisor = Supervisor(proc, boxed, watch_roots)
        report["status"] = supervisor.watch(mine, limits.wall_seconds)
        report["events"] = supervisor.events
    except BaseException as error:  # the status line is the only way to tell the worker
        report["status"] = f"failed {type(error).__name__}: {error}"[:500]
    try:
        os.write(status_write, json.dumps(report).encode())
    except OSError:
        pass
    os._exit(0)


# ---------------------------------------------------------------- the supervisor

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100     # _IOWR('!', 0, struct seccomp_notif), 80 bytes
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101     # _IOWR('!', 1, struct seccomp_notif_resp), 24 bytes
SECCOMP_IOCTL_NOTIF_ID_VALID = 0x40082102  # _IOW('!', 2, __u64)
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
NOTIF = struct.Struct("=QII iIQ6Q")       # id, pid, flags, then seccomp_data: nr, arch, ip, args
RESPONSE = struct.Struct("=QqiI")          # id, val, error, flags
AT_FDCWD = -100
# /proc/<pid>/root, /proc/<pid>/cwd, /proc/<pid>/fd/<n>, and the same under task/<tid>/.
PROC_MAGIC = re.compile(r"/proc/[^/]+(?:/task/[^/]+)?/(?P<link>root|cwd|fd/\d+)")
MAX_EVENTS = 20
PATH_MAX = 4096


class Supervisor:
    """Answers the system calls the child's filter hands over, outside the child's reach.

    Watched calls run on, with a note first: a path opened outside the workspace, an
    internet connection or socket (attempts, flagged), a process or program started
    (harmless notes). Forbidden calls are refused with EPERM and noted as attempts; any
    other call off the allow-list is refused with the error the C library falls back from,
    and noted as harmless. Attempts and harmless notes are kept apart, `MAX_EVENTS` distinct
    ones of each, so no flood of harmless calls can push an attempt out; past the cap, calls
    are answered without reading the child's memory, so a child cannot make its supervisor
    work for more than it works itself.

    Opened paths are read from the child's memory and let through (the mount namespace,
    not this note, is what keeps the course out of reach): a second thread of the child
    can change the path after it is read, so the note is evidence, never a guard.
    """

    def __init__(self, proc_fd, pid, watch_roots):
        self.proc, self.pid = proc_fd, pid
        self.roots = tuple(os.path.join(root, "") for root in watch_roots)
        self.names = {number: name for name, number in syscalls.numbers(platform.machine()).items()}
        self.attempts, self.notes = [], []
        self.programs = set()  # PIDs that have run execve: programs, not the student's Python
        self.listener = -1

    @property
    def events(self):
        return self.attempts + self.notes

    def watch(self, channel, wall_seconds):
        """Supervise until the child ends or its wall time is up; return its fate."""
        deadline = time.monotonic() + wall_seconds
        pidfd = os.pidfd_open(self.pid)
        waiting = [pidfd, channel]
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select(waiting, [], [], max(left, 0)) if left > 0 else ([], 0, 0)
            if not ready:  # checked on every turn: a stream of calls cannot outrun the clock
                os.kill(self.pid, signal.SIGKILL)  # PID 1 of its namespace: all of it goes
                os.waitpid(self.pid, 0)
                return "timeout"
            if pidfd in ready:
                break
            if channel in ready:  # the child's filter is loaded: its listener arrives once
                waiting.remove(channel)
                _, fds, _, _ = socket.recv_fds(channel, 1, 1)
                channel.close()
                if fds:
                    self.listener = fds[0]
                    waiting.append(self.listener)
            elif self.listener in ready:
                self.answer_one()
        _, status = os.waitpid(self.pid, 0)
        if self.listener >= 0:
            os.close(self.listener)
        if os.WIFSIGNALED(status):
            return f"signal {os.WTERMSIG(status)}"
        return f"exit {os.WEXITSTATUS(status)}"

    def answer_one(self):
        buffer = bytearray(NOTIF.size)
        try:
            fcntl.ioctl(self.listener, SECCOMP_IOCTL_NOTIF_RECV, buffer, True)
        except OSError:
            return  # the caller died meanwhile
        ident, pid, _, number, _, _, *args = NOTIF.unpack(buffer)
        try:
            refused = self.decide(ident, pid, number, args)
        except Exception as error:  # noqa: BLE001 - a call we cannot make sense of is refused
            self.note(f"refused a call the supervisor could not read ({type(error).__name__})")
            refused = errno.ENOSYS
        response = (RESPONSE.pack(ident, 0, -refused, 0) if refused else
                    RESPONSE.pack(ident, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE))
        try:
            fcntl.ioctl(self.listener, SECCOMP_IOCTL_NOTIF_SEND, bytearray(response), True)
        except OSError:
            pass  # the caller died meanwhile: nothing to answer

    def decide(self, ident, pid, number, args):
        """Note the call; return the errno to refuse it with, or 0 to let it run."""
        name = self.names.get(number)
        if name is None:
            if number & X32_SYSCALL_BIT:  # another ABI's numbers: a way around the filter
                self.attempt(f"tried a forbidden system call (x32 number {number})")
                return errno.EPERM
            self.note(f"refused system call number {number}")  # newer than this table
            return errno.ENOSYS
        watched = syscalls.WATCHED.get(name)
        if name == "clone" and args[0] & syscalls.NEW_NAMESPACES:
            self.attempt("tried a forbidden system call (clone with new namespaces)")
            return errno.EPERM
        # A program the student started (`!pip list`) reads its own files and may try the
        # network: noted, as the start of the program was; Python code's reaches are flagged.
        report = self.note if pid in self.programs else self.attempt
        if watched == "open":
            if len(self.attempts) < MAX_EVENTS:
                path = self.opened_path(ident, pid, name, args)
                if path is not None and not os.path.join(path, "").startswith(self.roots):
                    report(f"opened {path[:200]} (outside the workspace)")
            return 0
        if watched in ("process", "program"):
            self.note(f"started a {watched}")
            if watched == "program":
                self.programs.add(pid)
        elif watched in ("connection", "socket"):
            if len(self.attempts) < MAX_EVENTS and self.internet_address(pid, args):
                report("opened a network connection" if watched == "connection"
                       else "opened a network socket")
        elif name in syscalls.FORBIDDEN:
            self.attempt(f"tried a forbidden system call ({name})")
            return errno.EPERM
        else:
            detail = syscalls.FCNTL_REFUSED.get(args[1], "") if name == "fcntl" else ""
            self.note(f"refused system call {name} {detail}".rstrip())
            return syscalls.errno_for(name)
        return 0

    def attempt(self, event):
        if event not in self.attempts and len(self.attempts) < MAX_EVENTS:
            self.attempts.append(event)

    def note(self, event):
        if event not in self.notes and len(self.notes) < MAX_EVENTS:
            self.notes.append(event)

    def opened_path(self, ident, pid, name, args):
        """The absolute, resolved path an open call names, or None if it cannot be read."""
        if name in ("open", "creat"):
            directory, address = AT_FDCWD, args[0]
        else:
            directory, address = ctypes.c_int32(args[0] & 0xFFFFFFFF).value, args[1]
        raw = read_string(pid, address, PATH_MAX)
        if raw is None or not self.still_waiting(ident):
            return None
        path = os.fsdecode(raw)
        if not path.startswith("/"):
            base = self.link(pid, "cwd" if directory == AT_FDCWD else f"fd/{directory}")
            if base is None:
                return None
            path = f"{base}/{path}"
        return self.resolve(pid, path)

    def link(self, pid, name):
        """Where the child's /proc/<pid>/<name> link points, or None."""
        try:
            return os.readlink(f"{pid}/{name}", dir_fd=self.proc)
        except OSError:
            return None

    def resolve(self, pid, path):
        """`path` as the child's open would find it, component by component as the kernel
        walks it: `..` after what precedes it, the magic links of its /proc (a process's or
        thread's root, working folder, open files) and every symbolic link followed (the
        supervisor shares the child's mounts, so its /tmp is the child's), with the kernel's
        own bound of 40 links, so a maze of links costs the supervisor little."""
        todo, resolved, links, steps = path.split("/")[::-1], "/", 0, 0
        while todo and steps < PATH_MAX:
            steps += 1
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                resolved = os.path.dirname(resolved)
                continue
            candidate = os.path.join(resolved, part)
            magic = PROC_MAGIC.fullmatch(candidate)
            if magic:
                target = "/" if magic["link"] == "root" else self.link(pid, magic["link"])
            else:
                try:
                    target = os.readlink(candidate) if os.path.islink(candidate) else None
                except OSError:  # a link that names nothing here (the child's own /proc/self)
                    target = None
            if target is None:
                resolved = candidate
                continue
            links += 1
            if links > 40:  # the kernel gives up here too (ELOOP)
                return os.path.join(candidate, *todo[::-1])
            if target.startswith("/"):
                resolved = "/"
            todo.extend(target.split("/")[::-1])
        return resolved

    def still_waiting(self, ident):
        """True if notification `ident` is still pending: its PID still names the caller."""
        try:
            fcntl.ioctl(self.listener, SECCOMP_IOCTL_NOTIF_ID_VALID, struct.pack("=Q", ident))
            return True
        except OSError:
            return False

    @staticmethod
    def internet_address(pid, args):
        """True if a connect or bind names an internet address (a local socket does not)."""
        family = read_bytes(pid, args[1], 2)
        return family is not None and int.from_bytes(family, "little") in (2, 10)


class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


def read_bytes(pid, address, size):
    """`size` bytes of process `pid`'s memory at `address`, or None."""
    if not address:
        return None
    buffer = ctypes.create_string_buffer(size)
    local, remote = _IOVec(ctypes.addressof(buffer), size), _IOVec(address, size)
    got = _libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    return buffer.raw[:got] if got > 0 else None


def read_string(pid, address, limit):
    """A NUL-terminated string from process `pid`'s memory, page by page (a string near the
    end of a mapping must not fail the read), or None."""
    page, data = resource.getpagesize(), b""
    while len(data) < limit:
        chunk = read_bytes(pid, address + len(data), page - (address + len(data)) % page)
        if not chunk:
            return None
        if b"\0" in chunk:
            return data + chunk[:chunk.index(b"\0")]
        data += chunk
    return data[:limit]


def enter_child(*, slot, limits, keep_fds, listener_to):
    """Turn this freshly forked PID 1 into the box for one submission (see module doc);
    the seccomp listener goes to the supervisor through the socket `listener_to`."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    name, uid, gid = slot_user(slot)
    # A course checked out under /tmp has its Python and gdlab/ there: hold on to them, lay
    # the private tmpfs over /tmp, and mount them back, read-only, inside it.
    under = [p for p in os.environ.pop(READ_ONLY_ENV, "").split(":")
             if p.startswith(WORKSPACE + "/")]
    held = [os.open(path, os.O_PATH) for path in under]
    _mount("tmpfs", WORKSPACE, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={limits.tmp_mb}m,mode=0700,uid={uid},gid={gid}")
    for path, fd in zip(under, held):
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(fd)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for device in DEVICES:  # the host's own device files: usable, but their times unchangeable
        _mount(None, f"/dev/{device}", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
    # Pseudo-terminals of its own (IPython's `!command` runs the command on one), a few;
    # a /dev/shm of its own; and no /proc/sys, whose host-wide counters (pseudo-terminals
    # and files in use) another child could move.
    _mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
           f"newinstance,ptmxmode=0666,mode=0620,max={PTY_MAX}")
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={limits.tmp_mb}m,mode=1777")
    _mount("tmpfs", "/proc/sys", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
           "size=4k,mode=0555")
    if not set_oom_score(1000):  # out of memory: the submission goes first, never the worker
        raise OSError("cannot set the OOM score")
    os.chdir(WORKSPACE)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):  # output is captured in Python; what C code writes is dropped
        os.dup2(null, fd)
    keep = sorted(set(keep_fds) | {listener_to.fileno()})
    os.closerange(3, keep[0])
    for low, high in zip(keep, keep[1:] + [1 << 16]):
        os.closerange(low + 1, high)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    set_limits(limits)
    listener = install_seccomp()
    socket.send_fds(listener_to, [b"L"], [listener])
    os.close(listener)
    listener_to.close()
    os.environ.update(HOME=WORKSPACE, USER=name)


def set_oom_score(score):
    """Set this process's OOM score adjustment; written with CAP_SYS_RESOURCE, it is also
    the floor below which the process, once unprivileged, cannot set it again. False if
    this kernel refuses (some refuse any score below 0, even to root)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as adjustment:
            adjustment.write(str(score))
    except OSError:
        return False
    return True


def set_limits(limits):
    """Resource limits for this process and everything it starts."""
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    memory = mapped + limits.memory_mb * 2**20
    for kind, soft, hard in (
            (resource.RLIMIT_AS, memory, memory),
            (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
            (resource.RLIMIT_NPROC, limits.processes, limits.processes),
            (resource.RLIMIT_FSIZE, limits.file_mb * 2**20, limits.file_mb * 2**20),
            (resource.RLIMIT_CORE, 0, 0),
            (resource.RLIMIT_NOFILE, 256, 256)):
        resource.setrlimit(kind, (soft, hard))


# ---------------------------------------------------------------- the seccomp filter

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000
SECCOMP_SET_MODE_FILTER_CALL = 1
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_CALL = {"x86_64": 317, "aarch64": 277}
RET_KILL_PROCESS, RET_USER_NOTIF, RET_ALLOW = 0x80000000, 0x7FC00000, 0x7FFF0000
RET_ERRNO = 0x00050000
BPF_LD_ABS, BPF_JEQ, BPF_JGE, BPF_JSET, BPF_RET = 0x20, 0x15, 0x35, 0x45, 0x06
# Checked first: the calls that most honest runs make most often.
HOT_CALLS = ("read", "write", "lseek", "getpid", "newfstatat", "fstat", "futex", "brk", "mmap",
             "munmap", "close", "getrandom", "ioctl", "mprotect", "madvise", "rt_sigaction",
             "rt_sigprocmask", "clock_nanosleep", "poll", "select", "prlimit64")


def seccomp_arch():
    """This machine's audit arch, or None if there is no filter for it."""
    return AUDIT_ARCH.get(platform.machine())


def seccomp_program(machine=None):
    """The BPF program of the `syscalls` policy: allowed calls run, watched and any other
    calls go to the supervisor, clone3 answers ENOSYS, another ABI is killed.

    Every jump is short and forward (BPF's offsets are one byte): each check is followed by
    its own returns, so no check jumps over more than a few instructions.
    """
    machine = machine or platform.machine()
    calls = syscalls.numbers(machine)
    program = []

    def emit(op, k=0, if_true=0, if_false=0):
        program.append(struct.pack("HBBI", op, if_true, if_false, k))

    def argument(index):  # the low 32 bits of the call's argument `index` (little-endian)
        return (BPF_LD_ABS, 16 + 8 * index, 0, 0)

    def when_call(name, block):
        """`block` (instructions ending in returns) decides `name`; other calls skip it."""
        emit(BPF_JEQ, calls[name], 0, len(block))
        for instruction in block:
            emit(*instruction)

    def one_of(index, values):
        """A block: allowed if argument `index` is one of `values`, else to the supervisor."""
        values = sorted(values)
        return ([argument(index)] + [(BPF_JEQ, v, len(values) - i, 0) for i, v in enumerate(values)]
                + [(BPF_RET, RET_USER_NOTIF, 0, 0), (BPF_RET, RET_ALLOW, 0, 0)])

    emit(BPF_LD_ABS, 4)                          # seccomp_data.arch
    emit(BPF_JEQ, AUDIT_ARCH[machine], 1, 0)
    emit(BPF_RET, RET_KILL_PROCESS)
    emit(BPF_LD_ABS, 0)                          # seccomp_data.nr
    if machine == "x86_64":
        emit(BPF_JGE, X32_SYSCALL_BIT, 0, 1)     # the x32 ABI: the supervisor refuses it
        emit(BPF_RET, RET_USER_NOTIF)
    for name in syscalls.NO_SUCH_CALL:
        when_call(name, [(BPF_RET, RET_ERRNO | errno.ENOSYS, 0, 0)])
    # futex, checked first of all: the call threads and locks make most.
    when_call("futex", [argument(1), (BPF_JSET, syscalls.FUTEX_PRIVATE_FLAG, 0, 1),
                        (BPF_RET, RET_ALLOW, 0, 0), (BPF_RET, RET_USER_NOTIF, 0, 0)])
    when_call("clone", [argument(0), (BPF_JSET, syscalls.NEW_NAMESPACES, 2, 0),
                        (BPF_JSET, syscalls.CLONE_THREAD, 0, 1),
                        (BPF_RET, RET_ALLOW, 0, 0), (BPF_RET, RET_USER_NOTIF, 0, 0)])
    refused = sorted(syscalls.FCNTL_REFUSED)
    when_call("fcntl", [argument(1)] + [(BPF_JEQ, cmd, len(refused) - i, 0)
                                        for i, cmd in enumerate(refused)]
              + [(BPF_RET, RET_ALLOW, 0, 0), (BPF_RET, RET_USER_NOTIF, 0, 0)])
    families = sorted(syscalls.SOCKET_FAMILIES)
    when_call("socket", [argument(0)] + [(BPF_JEQ, f, len(families) - i + 3, 0)
                                         for i, f in enumerate(families)]
              + [(BPF_JEQ, syscalls.AF_NETLINK, 0, 2), argument(2),
                 (BPF_JEQ, syscalls.NETLINK_ROUTE, 1, 0),
                 (BPF_RET, RET_USER_NOTIF, 0, 0), (BPF_RET, RET_ALLOW, 0, 0)])
    when_call("socketpair", one_of(0, [syscalls.AF_UNIX]))
    when_call("madvise", one_of(2, syscalls.MADVISE_ALLOWED))
    allowed = [name for name in HOT_CALLS if name in calls and name in syscalls.ALLOWED]
    allowed += sorted(name for name in syscalls.ALLOWED if name in calls and name not in HOT_CALLS)
    for name in allowed:
        emit(BPF_JEQ, calls[name], 0, 1)
        emit(BPF_RET, RET_ALLOW)
    emit(BPF_RET, RET_USER_NOTIF)
    return b"".join(program)


def install_seccomp():
    """Load `seccomp_program` for this process and all it starts (needs no_new_privs);
    return the listener through which the supervisor answers what the filter hands it."""
    code = seccomp_program()
    buffer = ctypes.create_string_buffer(code, len(code))

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    program = Program(len(code) // 8, ctypes.addressof(buffer))
    listener = _libc.syscall(SECCOMP_CALL[platform.machine()], SECCOMP_SET_MODE_FILTER_CALL,
                             SECCOMP_FILTER_FLAG_NEW_LISTENER, ctypes.byref(program))
    if listener < 0:
        _check(-1, "seccomp")
    return listener
