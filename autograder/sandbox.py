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
   forbids new namespaces with a seccomp filter and sets resource limits.
"""
import ctypes
import fcntl
import os
import platform
import pwd
import resource
import select
import shutil
import signal
import struct
from dataclasses import dataclass

# Users `gdsandbox0` ... : one per worker slot, so one slot's fork bomb cannot use up the
# process limit of another slot's honest child (RLIMIT_NPROC counts per user).
USER_PREFIX = "gdsandbox"
MAX_SLOTS = 16
SLOT_LOCKS = "/run/gd-autograder"  # one lock file per slot, held by the pool using it
BOX_DIR = "/grader"        # where the two box modules are mounted inside the box
WORKSPACE = "/tmp"         # the child's private, writable, size-capped home
MAX_JOB_BYTES = 16 * 2**20  # the largest job (cells and probes, as JSON) a worker takes

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = (0x08000000, 0x10000000,
                                                          0x20000000, 0x40000000)
NEW_NAMESPACES = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
                  | CLONE_NEWPID | CLONE_NEWNET)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_REC, MS_PRIVATE = 1 << 14, 1 << 18
READ_ONLY_ENV = "GD_BOX_READ_ONLY"  # the box's read-only paths, for the child to keep in view
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 38, 22
SECCOMP_MODE_FILTER = 2


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


# ---------------------------------------------------------------- outside the box

def slot_user(slot):
    """(name, uid, gid) of the unprivileged user for worker `slot`."""
    name = f"{USER_PREFIX}{slot % MAX_SLOTS}"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SandboxUnavailable(
            f"no user {name}: run `sudo scripts/install-sandbox` once on this machine") from None
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
    for cap in ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"):
        command += ["--cap-add", cap]
    command += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64"):
        if os.path.islink(f"/{name}"):
            command += ["--symlink", os.readlink(f"/{name}"), f"/{name}"]
        elif os.path.isdir(f"/{name}"):
            command += ["--ro-bind", f"/{name}", f"/{name}"]
    for path in ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group"):
        if os.path.exists(path):
            command += ["--ro-bind", path, path]
    command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", WORKSPACE]
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
    """A memory and a pids cgroup (v1) around one worker and everything it forks.

    RLIMIT_AS bounds each process; a submission that forks would hold `processes` times
    as much. The cgroup bounds them together: after the worker is warm its limit is what it
    uses plus `memory_mb`, and the kernel's OOM killer picks the child (it raises its own
    score to the top) rather than the worker. Without writable cgroups this does
    nothing, and the per-process limits still hold.
    """

    def __init__(self, slot):
        self.paths = []
        for controller in ("memory", "pids"):
            path = f"{CGROUP_ROOT}/{controller}/{CGROUP_NAME}/slot{slot}-{os.getpid()}"
            try:
                os.makedirs(path, exist_ok=True)
                self.paths.append(path)
            except OSError:
                pass

    def join(self):
        """Enter the cgroups (run in the worker's process before it starts bubblewrap)."""
        for path in self.paths:
            with open(f"{path}/cgroup.procs", "w") as procs:
                procs.write(str(os.getpid()))

    def limit(self, limits):
        """Cap the slot at the warm worker's usage plus what one submission may use."""
        for path in self.paths:
            if path.startswith(f"{CGROUP_ROOT}/memory/"):
                with open(f"{path}/memory.usage_in_bytes") as usage:
                    used = int(usage.read())
                with open(f"{path}/memory.limit_in_bytes", "w") as limit:
                    limit.write(str(used + limits.memory_mb * 2**20))
            else:
                with open(f"{path}/pids.max", "w") as limit:
                    limit.write(str(limits.processes + 16))  # bubblewrap, worker, intermediate

    def oom_kills(self):
        """How many processes the kernel has killed in this slot for want of memory."""
        for path in self.paths:
            try:
                with open(f"{path}/memory.oom_control") as control:
                    for line in control:
                        if line.startswith("oom_kill "):
                            return int(line.split()[1])
            except OSError:
                pass
        return 0

    def close(self):
        for path in self.paths:
            try:
                os.rmdir(path)
            except OSError:
                pass  # still busy for a moment: the next run's makedirs reuses nothing of it


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


def spawn_child(run, *, slot, limits, keep_fds):
    """Fork a child that runs `run()` boxed; return (pid, status_fd).

    The child is the intermediate outside the new PID namespace: it starts `run` as PID 1
    of a fresh namespace, enforces the wall time, and writes one status line to
    `status_fd` ("exit N", "signal N" or "timeout"). Everything else the boxed process left
    behind dies with its namespace.
    """
    status_read, status_write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(status_write)
        return pid, status_read
    try:
        os.close(status_read)
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC
                             | CLONE_NEWUTS), "unshare")
        boxed = os.fork()
        if boxed == 0:
            os.close(status_write)
            enter_child(slot=slot, limits=limits, keep_fds=keep_fds)
            run()
            os._exit(0)
        os.write(status_write, _wait_boxed(boxed, limits.wall_seconds).encode())
    except BaseException as error:  # the status line is the only way to tell the worker
        try:
            os.write(status_write, f"failed {type(error).__name__}: {error}"[:500].encode())
        except OSError:
            pass
    os._exit(0)


def _wait_boxed(pid, wall_seconds):
    """Wait for the boxed process; kill it (and its namespace) when the wall time is up."""
    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd], [], [], wall_seconds)
    if not ready:
        os.kill(pid, signal.SIGKILL)  # PID 1 of its namespace: everything in it goes too
    _, status = os.waitpid(pid, 0)
    if not ready:
        return "timeout"
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.WEXITSTATUS(status)}"


def enter_child(*, slot, limits, keep_fds):
    """Turn this freshly forked PID 1 into the box for one submission (see module doc)."""
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
    with open("/proc/self/oom_score_adj", "w") as score:
        score.write("1000")  # out of memory: the submission goes first, never the worker
    os.chdir(WORKSPACE)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):  # output is captured in Python; what C code writes is dropped
        os.dup2(null, fd)
    keep = sorted(set(keep_fds))
    os.closerange(3, keep[0] if keep else 1 << 16)
    for low, high in zip(keep, keep[1:] + [1 << 16]):
        os.closerange(low + 1, high)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    install_seccomp()
    set_limits(limits)
    os.environ.update(HOME=WORKSPACE, USER=name)


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


# seccomp: audit arch and syscall numbers of unshare, setns, clone, clone3, per machine.
SECCOMP_ARCH = {"x86_64": (0xC000003E, 272, 308, 56, 435),
                "aarch64": (0xC00000B7, 97, 268, 220, 435)}
X32_SYSCALL_BIT = 0x40000000


def seccomp_arch():
    """This machine's row of SECCOMP_ARCH, or None if there is no filter for it."""
    return SECCOMP_ARCH.get(platform.machine())


def seccomp_program():
    """A BPF program: no new namespaces (unshare, setns, clone with CLONE_NEW*), else allow.

    clone3 answers ENOSYS, so the C library falls back to clone, whose flags BPF can see.
    """
    arch, unshare, setns, clone, clone3 = seccomp_arch()
    ld_abs, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    eperm, enosys = 0x00050000 | 1, 0x00050000 | 38
    # (code, jump-if-true label, jump-if-false label, k); labels resolve to offsets below
    program = [
        (ld_abs, None, None, 4),                      # seccomp_data.arch
        (jeq, None, "kill", arch),
        (ld_abs, None, None, 0),                      # seccomp_data.nr
        (jge, "deny", None, X32_SYSCALL_BIT),         # the x32 ABI: never used here
        (jeq, "deny", None, unshare),
        (jeq, "deny", None, setns),
        (jeq, "nosys", None, clone3),
        (jeq, None, "allow", clone),
        (ld_abs, None, None, 16),                     # low half of clone's flags
        (jset, "deny", "allow", NEW_NAMESPACES),
        ("allow", ret, allow), ("deny", ret, eperm), ("nosys", ret, enosys), ("kill", ret, kill),
    ]
    labels = {row[0]: i for i, row in enumerate(program) if isinstance(row[0], str)}
    packed = []
    for i, row in enumerate(program):
        if isinstance(row[0], str):
            packed.append(struct.pack("HBBI", row[1], 0, 0, row[2]))
            continue
        code, if_true, if_false, k = row
        jump = lambda label: 0 if label is None else labels[label] - i - 1  # noqa: E731
        packed.append(struct.pack("HBBI", code, jump(if_true), jump(if_false), k))
    return b"".join(packed)


def install_seccomp():
    """Load `seccomp_program` for this process and all it starts (needs no_new_privs)."""
    code = seccomp_program()
    buffer = ctypes.create_string_buffer(code, len(code))

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    program = Program(len(code) // 8, ctypes.addressof(buffer))
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0),
           "seccomp")
