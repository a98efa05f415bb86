"""The box on its own: what a submission's code can and cannot do, job by job.

Each test runs plain cells through `autograder.pool.Pool` (no notebook, no grading) and
reads back what they printed, so a hole shows up as the line the cell printed through it.
"""
import errno
import grp
import json
import os
import platform
import pwd
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import sandbox_processes

from autograder.pool import Pool
from autograder.sandbox import MAX_JOB_BYTES, MAX_SLOTS, PTY_MAX, USER_PREFIX, Limits, claim_slot

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("sandbox_ready")
# Host-side variables the box must not pass on (the grader's own marker among them).
HOST_ONLY_ENV = {"NBGRADER_EXECUTION": "autograde", "GD_HOST_SECRET": "not for students"}


@pytest.fixture(scope="module")
def pool():
    """One warm worker (slot 0), shared by the tests: what one job leaves, the next one meets."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in HOST_ONLY_ENV.items():
            patch.setenv(name, value)
        with Pool(1, Limits(wall_seconds=20, cpu_seconds=10)) as warm:
            yield warm


def job(cells):
    return {"cells": list(cells), "reruns": {}, "probes": [], "seed": 0}


def texts(result):
    """Per cell, what it printed, then what it raised."""
    lines = [json.loads(line) for line in result.lines.splitlines() if line.strip()]
    return [line["output"] + line.get("error", "") for line in lines if "cell" in line]


def run(pool, *cells):
    """Run `cells` as one job; the run's result and what each cell printed or raised."""
    (result,) = pool.run([("job", job(cells))])
    return result, texts(result)


def printed(pool, *cells):
    """What each cell printed (or raised), after a run that ended normally."""
    result, text = run(pool, *cells)
    assert result.status == "exit 0", result.status
    return text


def in_turn(pool, *jobs):
    """Run jobs (each a list of cells) one after the other on the one worker, in one batch
    as the grader does; what each job's cells printed."""
    results = {r.token: r for r in pool.run([(str(i), job(cells)) for i, cells in enumerate(jobs)])}
    assert [results[str(i)].status for i in range(len(jobs))] == ["exit 0"] * len(jobs)
    return [texts(results[str(i)]) for i in range(len(jobs))]


def test_code_runs_as_the_slot_user_without_capabilities(pool):
    (text,) = printed(pool, 'import os\nprint(os.getresuid(), os.getresgid())\n'
                            'print(open("/proc/self/status").read())')
    user = pwd.getpwnam(f"{USER_PREFIX}{pool.claims[0].slot}")  # the slot it claimed
    assert text.startswith(f"{(user.pw_uid,) * 3} {(user.pw_gid,) * 3}\n")
    status = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
    # Inheritable and bounding sets stay full; with no_new_privs no program can use them.
    assert [int(status[name], 16) for name in ("CapPrm", "CapEff", "CapAmb")] == [0, 0, 0]
    assert (status["NoNewPrivs"], status["Seccomp"]) == ("1", "2")


def test_slots_are_claimed_machine_wide_and_given_back(pool):
    """Pools in other processes (a second grader, Dask workers on this host) claim other
    slots: never one user and one process limit for two students' code."""
    other = claim_slot()
    try:
        assert other.slot != pool.claims[0].slot
    finally:
        other.release()
    again = claim_slot()
    again.release()
    assert again.slot == other.slot  # released, so the lowest free slot again


def test_code_cannot_read_secrets_the_course_or_the_host(pool, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the grader's eyes only")
    paths = [Path("/etc/shadow"), ROOT / "source" / "02_gradient_step" / "gradient_step.ipynb",
             ROOT / "autograder" / "reference.py", ROOT / "nbgrader_config.py", secret]
    assert all(path.exists() for path in paths)  # on the host they are there
    (text,) = printed(pool, f'''
for path in {[str(p) for p in paths]!r}:
    try:
        open(path, "rb").read(1)
        print("READ", path)
    except OSError as error:
        print("blocked", path, type(error).__name__)
''')
    assert "READ" not in text
    assert text.count("blocked") == len(paths)


def test_code_cannot_import_the_autograder(pool):
    (text,) = printed(pool, '''
for name in ("autograder.reference", "autograder.verdicts", "autograder.sandbox"):
    try:
        __import__(name)
        print("IMPORTED", name)
    except ImportError:
        print("no", name)
try:
    import autograder
    print("package file:", autograder.__file__)
except ImportError:
    print("package file: None")
''')
    assert "IMPORTED" not in text
    assert "package file: None" in text  # at most an empty namespace: its folder is not there


def test_code_has_no_network(pool):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        (text,) = printed(pool, f'''
import socket
print("interfaces:", [name for _, name in socket.if_nameindex()])
for address in [("127.0.0.1", {port}), ("1.1.1.1", 443), ("8.8.8.8", 53)]:
    try:
        socket.create_connection(address, timeout=2).close()
        print("CONNECTED", address)
    except OSError as error:
        print("refused", address, error.errno)
''')
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert "CONNECTED" not in text
    assert "interfaces: ['lo']" in text


def test_code_cannot_make_new_namespaces(pool):
    (text,) = printed(pool, '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for name, flag in [("user", 0x10000000), ("net", 0x40000000), ("mount", 0x00020000)]:
    print(name, libc.unshare(flag), ctypes.get_errno())
''')
    assert text.splitlines() == [f"{name} -1 {errno.EPERM}" for name in ("user", "net", "mount")]


def test_code_sees_only_its_own_processes(pool):
    (text,) = printed(pool, 'import os\n'
                            'print(sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))')
    assert text == "[1]\n"


def test_tmp_is_private_to_each_job(pool):
    _, (text,) = in_turn(pool, ['open("/tmp/left-behind", "w").write("for the next student")'],
                         ['import os\nprint(sorted(os.listdir("/tmp")))'])
    assert "left-behind" not in text


def test_environment_carries_nothing_from_the_host(pool):
    (text,) = printed(pool, 'import json, os\nprint(json.dumps(sorted(os.environ)))')
    names = json.loads(text)
    assert not [name for name in names if name.startswith(("NBGRADER", "JUPYTER", "JPY", "GD_"))]
    assert set(HOST_ONLY_ENV).isdisjoint(names)


def test_a_jobs_data_is_not_visible_to_the_next_job(pool):
    prefix = "answer-of-the-student-before-"
    marker = prefix + os.urandom(8).hex()
    # The scanning cell holds the prefix, never a whole marker: it cannot find itself.
    leave = f'left_in_namespace = "{marker}"\nprint(left_in_namespace)'
    _, (text, leftover) = in_turn(pool, [leave], [f'''
import ctypes
import re

marker = re.compile(b"{prefix}" + b"[0-9a-f]{{16}}")
found = 0
with open("/proc/self/maps") as maps:
    for line in maps:
        fields = line.split()
        name = fields[5] if len(fields) > 5 else ""
        if "r" in fields[1] and not name.startswith(("[vvar", "[vsyscall", "/dev")):
            low, high = (int(x, 16) for x in fields[0].split("-"))
            found += len(marker.findall(ctypes.string_at(low, high - low)))
print("copies in memory:", found)
''', 'print(left_in_namespace)'])
    assert text == "copies in memory: 0\n"
    assert leftover.startswith("NameError")


def test_no_process_outlives_its_job(pool):
    (text,) = printed(pool, '''
import os, signal, subprocess, time
subprocess.Popen(["sleep", "600"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)
    os._exit(0)
print(len([p for p in os.listdir("/proc") if p.isdigit()]), "processes")
''')
    assert text == "3 processes\n"  # the job, the sleep and the daemon, all in its namespace
    deadline = time.monotonic() + 5
    while sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox_processes() == {}


def test_an_oversized_job_is_refused_and_the_worker_lives_on(pool):
    printed(pool, "pass")  # the worker is up
    worker = pool.workers[0].process.pid
    result, _ = run(pool, "x = '" + "a" * MAX_JOB_BYTES + "'")
    assert result.status.startswith("refused:") and not result.infrastructure_error
    assert printed(pool, 'print("next")') == ["next\n"]
    assert pool.workers[0].process.pid == worker


def test_memory_limit_bounds_the_whole_submission():
    hog_mb, children = 48, 4
    with Pool(1, Limits(wall_seconds=20, cpu_seconds=10, memory_mb=64, processes=8)) as small:
        _, text = run(small, f'''
import os, time
ready_read, ready_write = os.pipe()
children = []
for _ in range({children}):
    pid = os.fork()
    if pid == 0:
        try:
            hog = bytearray({hog_mb} * 2**20)  # zero-filled: every page is really used
            os.write(ready_write, b"1")
            time.sleep(10)
        finally:
            os._exit(0)
    children.append(pid)
held, deadline = 0, time.time() + 5
while held < {children} and time.time() < deadline:
    held += len(os.read(ready_read, {children}))
print(held * {hog_mb})
for pid in children:
    os.kill(pid, 9)
''')
    # A run stopped for using too much holds nothing: that, too, keeps within the limit.
    held = int(text[0]) if text and text[0].strip().isdigit() else 0
    assert held <= 64, f"one submission held {held} MB at once under a 64 MB limit"


# ---------------------------------------------------------------- storage channels
#
# Whatever one child can create, fill or lock on the host, no other child may read: not
# the same slot's next child, not another slot's child at the same time, not a child of
# another grading run. Two cells play two colluding students who agreed on a name (the
# tag) beforehand: the writer stores a fresh secret in every kind of storage it can reach,
# the reader looks for it in each. Channels that carry one bit at a time (locks, open
# notifications) carry the secret's 64 bits over 64 shared read-only files, or 64 bytes of
# one. `test_the_channel_cells_carry_the_secret_outside_the_box` is the control: unboxed,
# the same cells find the secret, so a channel the box leaves open shows up here.

# Where the reader looks. The writer stores in each but `request_key` and `/proc/locks`,
# which read what it stored in the keyrings and in the locks.
CHANNELS = ("user keyring", "session keyring", "request_key", "SysV shared memory",
            "SysV message queue", "POSIX message queue", "/dev/shm file", "/tmp file",
            "abstract unix socket", "unix socket names", "flock", "record locks", "/proc/locks",
            "inotify", "pseudo-terminal")
READS_FROM = {"request_key": ("user keyring", "session keyring"),
              "/proc/locks": ("flock", "record locks")}
CHANNEL_LIMITS = Limits(wall_seconds=20, cpu_seconds=10)

CHANNEL_PRELUDE = r'''
import ctypes, fcntl, json, os, platform, socket, struct, threading, time
# x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl) of the calls Python has no wrapper for.
NR = {"add_key": 248, "request_key": 249, "keyctl": 250, "mq_open": 240, "mq_unlink": 241,
      "mq_timedsend": 242, "mq_timedreceive": 243} if platform.machine() == "x86_64" else {}
KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING = -3, -4
KEYCTL_SETPERM, KEYCTL_SEARCH, KEYCTL_READ, KEYCTL_INVALIDATE = 5, 10, 11, 21
IPC_CREAT, IPC_NOWAIT, IPC_RMID, SHM_RDONLY = 0o1000, 0o4000, 0, 0o10000
IN_OPEN, FLOCK = 0x20, "hhqqi4x"  # struct flock: type, whence, start, len, pid
# TAG: the name the two students agreed on beforehand (fresh per test run, so that two
# runs on one host, or objects an earlier run left, cannot mix).
IPC_KEY, NAME, BITS = 0x67640000 | int(TAG[:4], 16), f"gd-channel-{TAG}", 64
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmat.restype = ctypes.c_void_p
libc.shmdt.argtypes = [ctypes.c_void_p]
libc.msgsnd.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
libc.msgrcv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long, ctypes.c_int]
libc.msgrcv.restype = ctypes.c_ssize_t
# Files every child can read and none can write (one per inode: hard links share locks):
# one per bit for whole-file locks and for open notifications, and one for byte-range
# locks (bit i: byte i), from a place in the list the tag picks.
SHARED = {}
for name in sorted(os.listdir("/usr/bin")):
    path = os.path.join("/usr/bin", name)
    if os.path.isfile(path) and not os.path.islink(path) and os.access(path, os.R_OK):
        SHARED.setdefault(os.stat(path).st_ino, path)
SHARED = list(SHARED.values())
SHARED = SHARED[int(TAG, 16) % len(SHARED):] + SHARED[:int(TAG, 16) % len(SHARED)]
FLOCK_FILES, INOTIFY_FILES, RECORD_FILE = SHARED[:BITS], SHARED[BITS:2 * BITS], SHARED[2 * BITS]


def checked(result, what):
    if result == -1 or result is None or result == ctypes.c_void_p(-1).value:
        raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")
    return result


def call(name, *args):
    """A system call Python has no wrapper for, by number."""
    if name not in NR:
        raise OSError(0, f"{name}: no number for {platform.machine()} here")
    return checked(libc.syscall(NR[name], *(ctypes.c_long(a) if isinstance(a, int) else a
                                            for a in args)), name)


def to_bits(text):
    return [(int(text, 16) >> (BITS - 1 - i)) & 1 for i in range(BITS)]


def from_bits(bits):
    number = sum(bit << (BITS - 1 - i) for i, bit in enumerate(bits))
    return f"{number:0{BITS // 4}x}" if number else None
'''

WRITER_BODY = r'''
stored, keep, undo = {}, [], []


def store(channel, action):
    try:
        action()
        stored[channel] = "stored"
    except Exception as error:
        stored[channel] = f"{type(error).__name__}: {error}"


def in_keyring(ring):
    def action():
        key = call("add_key", b"user", NAME.encode(), SECRET.encode(), len(SECRET), ring)
        undo.append(lambda: call("keyctl", KEYCTL_INVALIDATE, key))
        call("keyctl", KEYCTL_SETPERM, key, 0x3F3F3F3F)  # anyone who finds it may read it
    return action


def shared_memory():
    ident = checked(libc.shmget(IPC_KEY, 4096, IPC_CREAT | 0o666), "shmget")
    undo.append(lambda: libc.shmctl(ident, IPC_RMID, None))
    ctypes.memmove(checked(libc.shmat(ident, None, 0), "shmat"), SECRET.encode(), len(SECRET))


def message_queue():
    ident = checked(libc.msgget(IPC_KEY, IPC_CREAT | 0o666), "msgget")
    undo.append(lambda: libc.msgctl(ident, IPC_RMID, None))
    checked(libc.msgsnd(ident, struct.pack("q", 1) + SECRET.encode(), len(SECRET), IPC_NOWAIT),
            "msgsnd")


def posix_queue():
    fd = call("mq_open", NAME.encode(), os.O_CREAT | os.O_RDWR, 0o666, None)
    undo.append(lambda: call("mq_unlink", NAME.encode()))
    call("mq_timedsend", fd, SECRET.encode(), len(SECRET), 0, None)


def in_file(path):
    def action():
        with open(path, "w") as file:
            file.write(SECRET)
        undo.append(lambda: os.unlink(path))
    return action


def serving_socket():
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    keep.append(server)
    server.bind("\0" + NAME)
    server.listen(8)
    server.settimeout(0.1)

    def answer():
        while server.fileno() >= 0:
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection:
                connection.sendall(SECRET.encode())
    threading.Thread(target=answer, daemon=True).start()


def named_socket():
    named = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    keep.append(named)
    named.bind(f"\0{NAME}-{SECRET}")


def whole_file_locks():
    for bit, path in zip(to_bits(SECRET), FLOCK_FILES):
        if bit:
            fd = os.open(path, os.O_RDONLY)
            keep.append(fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def record_locks():
    fd = os.open(RECORD_FILE, os.O_RDONLY)
    keep.append(fd)
    for index, bit in enumerate(to_bits(SECRET)):
        if bit:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, index)


def open_watched_files():
    for bit, path in zip(to_bits(SECRET), INOTIFY_FILES):
        if bit:
            os.close(os.open(path, os.O_RDONLY))


def watchable_files():
    os.close(checked(libc.inotify_init1(os.O_CLOEXEC), "inotify_init1"))  # can anyone watch?
    open_watched_files()


def terminal():
    master, slave = os.openpty()
    keep.extend([master, slave])
    os.write(master, SECRET.encode() + b"\n")


for channel, action in [
        ("user keyring", in_keyring(KEY_SPEC_USER_KEYRING)),
        ("session keyring", in_keyring(KEY_SPEC_SESSION_KEYRING)),
        ("SysV shared memory", shared_memory), ("SysV message queue", message_queue),
        ("POSIX message queue", posix_queue), ("/dev/shm file", in_file(f"/dev/shm/{NAME}")),
        ("/tmp file", in_file(f"/tmp/{NAME}")), ("abstract unix socket", serving_socket),
        ("unix socket names", named_socket), ("flock", whole_file_locks),
        ("record locks", record_locks), ("inotify", watchable_files),
        ("pseudo-terminal", terminal)]:
    store(channel, action)
held = [time.time()]
while time.time() < held[0] + HOLD:  # hold it all, and keep opening the watched files
    open_watched_files()
    time.sleep(0.1)
held.append(time.time())
for step in undo if CLEAN_UP else []:
    try:
        step()
    except Exception:
        pass
for thing in keep:
    thing.close() if hasattr(thing, "close") else os.close(thing)
print(json.dumps({"stored": stored, "held": held}))
'''

READER_BODY = r'''
found, errors, watch = {}, {}, []


def look(channel, action):
    if found.get(channel):
        return
    try:
        found[channel] = action() or None
    except Exception as error:
        found[channel] = None
        errors[channel] = f"{type(error).__name__}: {error}"


def in_keyring(ring):
    def action():
        if ring is None:  # every keyring of the caller, as request_key searches them
            key = call("request_key", b"user", NAME.encode(), None, 0)
        else:
            key = call("keyctl", KEYCTL_SEARCH, ring, b"user", NAME.encode(), 0)
        buffer = ctypes.create_string_buffer(256)
        size = call("keyctl", KEYCTL_READ, key, buffer, len(buffer))
        return buffer.raw[:size].decode(errors="replace")
    return action


def shared_memory():
    ident = checked(libc.shmget(IPC_KEY, 0, 0), "shmget")
    address = checked(libc.shmat(ident, None, SHM_RDONLY), "shmat")
    try:
        return ctypes.string_at(address, 64).rstrip(b"\0").decode(errors="replace")
    finally:
        libc.shmdt(address)


def message_queue():
    ident = checked(libc.msgget(IPC_KEY, 0), "msgget")
    buffer = ctypes.create_string_buffer(8 + 256)
    size = checked(libc.msgrcv(ident, buffer, 256, 0, IPC_NOWAIT), "msgrcv")
    return buffer.raw[8:8 + size].decode(errors="replace")


def posix_queue():
    fd = call("mq_open", NAME.encode(), os.O_RDONLY | os.O_NONBLOCK, 0, None)
    try:
        buffer = ctypes.create_string_buffer(1 << 16)
        size = call("mq_timedreceive", fd, buffer, len(buffer), None, None)
        return buffer.raw[:size].decode(errors="replace")
    finally:
        os.close(fd)


def in_file(path):
    def action():
        with open(path) as file:
            return file.read()
    return action


def serving_socket():
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(1)
        client.connect("\0" + NAME)
        return client.recv(256).decode(errors="replace")


def named_socket():
    prefix = f"@{NAME}-"
    with open("/proc/net/unix") as table:
        names = [line.split()[-1] for line in table if len(line.split()) > 7]
    return " ".join(name[len(prefix):] for name in names if name.startswith(prefix))


def whole_file_locks():
    bits = []
    for path in FLOCK_FILES:
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            bits.append(0)
        except BlockingIOError:
            bits.append(1)
        finally:
            os.close(fd)
    return from_bits(bits)


def record_locks():
    fd = os.open(RECORD_FILE, os.O_RDONLY)
    try:
        bits = []
        for index in range(BITS):
            query = struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, index, 1, 0)
            kind = struct.unpack(FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))[0]
            bits.append(int(kind != fcntl.F_UNLCK))
        return from_bits(bits)
    finally:
        os.close(fd)


def listed_locks():
    """Both kinds of lock, as the kernel lists them in /proc/locks."""
    whole = {os.stat(path).st_ino: index for index, path in enumerate(FLOCK_FILES)}
    record = os.stat(RECORD_FILE).st_ino
    whole_bits, record_bits = [0] * BITS, [0] * BITS
    with open("/proc/locks") as table:
        for line in table:
            fields = [field for field in line.split() if field != "->"]
            if len(fields) < 8:
                continue
            inode, start, end = int(fields[5].split(":")[-1]), int(fields[6]), fields[7]
            if fields[1] == "FLOCK" and inode in whole:
                whole_bits[whole[inode]] = 1
            elif fields[1] == "POSIX" and inode == record:
                last = BITS - 1 if end == "EOF" else min(int(end), BITS - 1)
                for index in range(start, last + 1):
                    record_bits[index] = 1
    return " ".join(filter(None, (from_bits(whole_bits), from_bits(record_bits))))


def opened_files():
    if not watch:
        fd = checked(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC), "inotify_init1")
        indexes = {checked(libc.inotify_add_watch(fd, path.encode(), IN_OPEN), "inotify_add_watch"):
                   index for index, path in enumerate(INOTIFY_FILES)}
        watch.extend([fd, indexes, [0] * BITS])
    fd, indexes, bits = watch
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return from_bits(bits)
        offset = 0
        while offset < len(data):
            wd, _, _, size = struct.unpack_from("iIII", data, offset)
            if wd in indexes:
                bits[indexes[wd]] = 1
            offset += 16 + size


def terminals():
    got = []
    for name in os.listdir("/dev/pts") if os.path.isdir("/dev/pts") else []:
        path = f"/dev/pts/{name}"
        if name.isdigit() and os.stat(path).st_uid == os.getuid():  # never someone's terminal
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)
            try:
                got.append(os.read(fd, 256).decode(errors="replace"))
            except BlockingIOError:
                pass
            finally:
                os.close(fd)
    return " ".join(got)


readers = [
    ("user keyring", in_keyring(KEY_SPEC_USER_KEYRING)),
    ("session keyring", in_keyring(KEY_SPEC_SESSION_KEYRING)), ("request_key", in_keyring(None)),
    ("SysV shared memory", shared_memory), ("SysV message queue", message_queue),
    ("POSIX message queue", posix_queue), ("/dev/shm file", in_file(f"/dev/shm/{NAME}")),
    ("/tmp file", in_file(f"/tmp/{NAME}")), ("abstract unix socket", serving_socket),
    ("unix socket names", named_socket), ("flock", whole_file_locks),
    ("record locks", record_locks), ("/proc/locks", listed_locks), ("inotify", opened_files),
    ("pseudo-terminal", terminals)]
time.sleep(DELAY)
polled = [time.time()]
while True:
    for channel, action in readers:
        look(channel, action)
    if time.time() >= polled[0] + POLL:
        break
    time.sleep(0.2)
polled.append(time.time())
print(json.dumps({"found": found, "errors": errors, "polled": polled}))
'''


def writer_cell(tag, secret, *, hold, clean_up=False):
    """The cell that stores `secret` in every channel, holds it all `hold` seconds, and
    prints JSON: per channel "stored" or why not, and when it held. With `clean_up` it
    removes what outlives it (for the control run on the host; a boxed writer never does)."""
    return (f"TAG, SECRET, HOLD, CLEAN_UP = {tag!r}, {secret!r}, {hold!r}, {clean_up!r}\n"
            + CHANNEL_PRELUDE + WRITER_BODY)


def reader_cell(tag, *, delay=0.0, poll=0.0):
    """The cell that waits `delay` seconds, then looks in every channel for `poll` seconds
    (at least once) and prints JSON: per channel what it found (null: nothing), the errors
    it met, and when it looked. It never holds the secret: only the tag both agreed on."""
    return f"TAG, DELAY, POLL = {tag!r}, {delay!r}, {poll!r}\n" + CHANNEL_PRELUDE + READER_BODY


def warm_up(pool, timeout=60):
    """Wait until every worker of `pool` is warm, so jobs submitted together run together."""
    deadline = time.monotonic() + timeout
    while not all(worker is not None and worker.ready for worker in pool.workers):
        assert time.monotonic() < deadline, "the pool's workers did not warm up"
        time.sleep(0.05)


def one_slot_after_another(pool, tag, secret):
    """The module's one worker: the writer's job, then the reader's, in one batch."""
    results = {result.token: result for result in pool.run([
        ("writer", job([writer_cell(tag, secret, hold=0)])), ("reader", job([reader_cell(tag)]))])}
    return results["writer"], results["reader"]


def two_slots_at_once(pool, tag, secret):
    """Two workers of one pool side by side: the writer holds what it stored for 3 s, the
    reader looks from 0.5 s in, for 2 s."""
    with Pool(2, CHANNEL_LIMITS) as pair:
        warm_up(pair)
        writer = pair.submit("writer", job([writer_cell(tag, secret, hold=3.0)]))
        reader = pair.submit("reader", job([reader_cell(tag, delay=0.5, poll=2.0)]))
        return writer.result(), reader.result()


def two_pools_in_turn(pool, tag, secret):
    """Two grading runs: the writer's pool is closed before the reader's starts."""
    with Pool(1, CHANNEL_LIMITS) as first:
        writer = first.submit("writer", job([writer_cell(tag, secret, hold=0)])).result()
    with Pool(1, CHANNEL_LIMITS) as second:
        reader = second.submit("reader", job([reader_cell(tag)])).result()
    return writer, reader


def pseudo_terminals_in_use():
    """How many pseudo-terminals this host has open (one count for every devpts)."""
    return int(Path("/proc/sys/kernel/pty/nr").read_text())


def slot_user_keys():
    """`{uid: keys}` of the slot users that own any key on this host (/proc/key-users)."""
    uids = set()
    for slot in range(MAX_SLOTS):
        try:
            uids.add(pwd.getpwnam(f"{USER_PREFIX}{slot}").pw_uid)
        except KeyError:
            continue
    try:
        table = Path("/proc/key-users").read_text()
    except FileNotFoundError:  # a kernel without keys
        return {}
    owned = {}
    for line in table.splitlines():
        uid, _, keys = line.split()[:3]
        uid, keys = int(uid.rstrip(":")), int(keys.split("/")[0])
        if uid in uids and keys:
            owned[uid] = keys
    return owned


def processes_left(results, timeout=5):
    """Processes of the slot users that ran `results`, once they had `timeout` s to go."""
    users = {f"{USER_PREFIX}{result.where.rsplit('slot', 1)[1]}" for result in results}
    deadline = time.monotonic() + timeout
    while True:
        left = {pid: user for pid, user in sandbox_processes().items() if user in users}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def one_json_cell(result):
    """The JSON the run's one cell printed."""
    assert result.status == "exit 0", (result.token, result.status)
    (text,) = texts(result)
    return json.loads(text)


@pytest.mark.parametrize("runs", [one_slot_after_another, two_slots_at_once, two_pools_in_turn],
                         ids=lambda runs: runs.__name__)
def test_no_storage_channel_carries_a_secret_from_one_child_to_another(pool, runs):
    """What one child stores, no other child finds: channel by channel, the reader comes
    back empty, and nothing of either child is left on the host."""
    secret, tag = os.urandom(8).hex(), os.urandom(2).hex()
    ptys_before = pseudo_terminals_in_use()
    writer, reader = runs(pool, tag, secret)
    wrote, read = one_json_cell(writer), one_json_cell(reader)
    assert sorted(wrote["stored"]) == sorted(set(CHANNELS) - set(READS_FROM))
    assert sorted(read["found"]) == sorted(CHANNELS), read["errors"]  # it looked everywhere
    (stored, held_until), (looked, looked_until) = wrote["held"], read["polled"]
    if runs is two_slots_at_once:  # it looked while the writer held, for a second at least
        assert min(held_until, looked_until) - max(stored, looked) >= 1.0, (wrote, read)
    else:
        assert held_until <= looked  # later: the writer's child had ended
    leaked = [channel for channel in CHANNELS if secret in (read["found"][channel] or "")]
    assert not leaked, f"{runs.__name__}: the secret went from child to child through {leaked}"
    seen = {channel: what for channel, what in read["found"].items() if what}
    assert not seen, f"{runs.__name__}: the reader found something through {seen}"
    assert secret not in reader.lines.decode() + "\n".join(reader.events)
    # Nothing outlives the children on the host: no process, no key, no pseudo-terminal.
    assert processes_left([writer, reader]) == {}
    assert slot_user_keys() == {}, "a slot user owns keys on the host (/proc/key-users)"
    assert pseudo_terminals_in_use() <= ptys_before


def test_the_channel_cells_carry_the_secret_outside_the_box():
    """The control: run side by side as two plain processes of one unprivileged user on
    this host (no box), the same cells find the secret through every channel the host
    offers. (It runs as `nobody`, never a slot user; the writer removes what it stored, but
    `nobody` keeps the two empty keyrings the kernel made for it, its user keyrings.)"""
    python = "/usr/bin/python3"  # the venv's may sit under a folder `nobody` cannot enter
    if not os.access(python, os.X_OK):
        pytest.skip(f"no {python} to run the unboxed control with")
    user = pwd.getpwnam("nobody")
    secret, tag = os.urandom(8).hex(), os.urandom(2).hex()
    unboxed = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd="/", text=True,
                   env={"PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writer = subprocess.Popen([python, "-c", writer_cell(tag, secret, hold=3.0, clean_up=True)],
                              **unboxed)
    reader = subprocess.Popen([python, "-c", reader_cell(tag, delay=0.5, poll=2.0)], **unboxed)
    (wrote, wrote_errors), (read, read_errors) = (writer.communicate(timeout=30),
                                                  reader.communicate(timeout=30))
    stored = json.loads(wrote or "{}").get("stored", {})
    found = json.loads(read or "{}").get("found", {})
    assert sorted(stored) == sorted(set(CHANNELS) - set(READS_FROM)), wrote_errors
    assert sorted(found) == sorted(CHANNELS), read_errors
    offered = [channel for channel in CHANNELS
               if any(stored[source] == "stored" for source in READS_FROM.get(channel, (channel,)))]
    missed = {channel: found[channel] for channel in offered
              if secret not in (found[channel] or "")}
    assert not missed, f"stored, but the reader did not find the secret through {missed}"
    everywhere = {"/tmp file", "abstract unix socket", "unix socket names", "flock",
                  "record locks", "SysV shared memory", "SysV message queue"}
    assert everywhere <= set(offered), stored  # Linux always offers these


# ---------------------------------------------------------------- the filter, call by call

# From the kernel's arch/x86/entry/syscalls/syscall_64.tbl, not from `autograder.syscalls`:
# a wrong number there must not pass here. Each call's arguments would, unboxed, succeed or
# fail otherwise than EPERM (the comments say how), so only the filter answers EPERM.
FORBIDDEN_CALLS = [
    ("add_key", 248, '(b"user", b"gd-probe", b"x", 1, -2)'),  # a key in the process keyring
    ("keyctl", 250, "(0, -4, 0)"),  # KEYCTL_GET_KEYRING_ID of the user keyring
    ("request_key", 249, '(b"user", b"gd-probe", None, 0)'),  # ENOKEY
    ("io_uring_setup", 425, "(1, ctypes.create_string_buffer(120))"),  # a ring
    ("userfaultfd", 323, "(1,)"),  # UFFD_USER_MODE_ONLY: a descriptor
    ("perf_event_open", 298, "(ctypes.create_string_buffer(128), 0, -1, -1, 0)"),  # EACCES
    ("ptrace", 101, "(0, 0, 0, 0)"),  # PTRACE_TRACEME
    ("bpf", 321, "(0, ctypes.create_string_buffer(128), 128)"),  # BPF_MAP_CREATE: EINVAL
    ("inotify_init1", 294, "(0,)"),  # an inotify instance
    ("fanotify_init", 300, "(0, 0)"),
    ("unshare", 272, "(0x10000000,)"),  # CLONE_NEWUSER: a user namespace
    ("mount", 165, '(b"none", b"/tmp", b"tmpfs", 0, None)'),
]


def test_calls_that_reach_shared_kernel_objects_are_forbidden_and_flagged(pool):
    if platform.machine() != "x86_64":
        pytest.skip("the raw system-call numbers here are x86_64's")
    calls = "".join(f"    ({name!r}, {number}, {args}),\n"
                    for name, number, args in FORBIDDEN_CALLS)
    result, (text,) = run(pool, f'''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for name, number, args in [
{calls}]:
    ctypes.set_errno(0)
    answer = libc.syscall(number, *(ctypes.c_long(a) if isinstance(a, int) else a for a in args))
    print(name, answer, ctypes.get_errno())
''')
    assert result.status == "exit 0"
    assert text.splitlines() == [f"{name} -1 {errno.EPERM}" for name, _, _ in FORBIDDEN_CALLS]
    flagged = {f"tried a forbidden system call ({name})" for name, _, _ in FORBIDDEN_CALLS}
    assert flagged <= set(result.events), result.events


def test_calls_off_the_list_answer_enosys_and_are_noted(pool):
    result, (text,) = run(pool, '''
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
queues = libc if hasattr(libc, "mq_open") else ctypes.CDLL("librt.so.1", use_errno=True)
for name, attempt in [
        ("shmget", lambda: libc.shmget(0x67640002, 4096, 0o1666)),
        ("msgget", lambda: libc.msgget(0x67640002, 0o1666)),
        ("semget", lambda: libc.semget(0x67640002, 1, 0o1666)),
        ("mq_open", lambda: queues.mq_open(b"/gd-probe", os.O_CREAT | os.O_RDWR, 0o600, None))]:
    ctypes.set_errno(0)
    print(name, attempt(), errno.errorcode.get(ctypes.get_errno()))
''')
    assert result.status == "exit 0"
    names = ("shmget", "msgget", "semget", "mq_open")
    assert text.splitlines() == [f"{name} -1 ENOSYS" for name in names]
    assert {f"refused system call {name}" for name in names} <= set(result.events), result.events


def test_locks_and_notifications_on_shared_files_are_refused(pool):
    """Unboxed, each of these would lock or watch a file every child can open (the lease
    would fail with EACCES: the file is not the child's)."""
    result, (text,) = run(pool, '''
import errno, fcntl, os, struct
shared, folder = os.open("/usr/bin/env", os.O_RDONLY), os.open("/usr/bin", os.O_RDONLY)
lock = struct.pack("hhqqi4x", fcntl.F_RDLCK, os.SEEK_SET, 0, 1, 0)
for name, attempt in [
        ("flock", lambda: fcntl.flock(shared, fcntl.LOCK_SH | fcntl.LOCK_NB)),
        ("F_SETLK", lambda: fcntl.fcntl(shared, fcntl.F_SETLK, lock)),
        ("F_GETLK", lambda: fcntl.fcntl(shared, fcntl.F_GETLK, lock)),
        ("F_OFD_SETLK", lambda: fcntl.fcntl(shared, 37, lock)),
        ("F_SETLEASE", lambda: fcntl.fcntl(shared, 1024, fcntl.F_RDLCK)),
        ("F_NOTIFY", lambda: fcntl.fcntl(folder, 1026, 1))]:  # DN_ACCESS
    try:
        attempt()
        print(name, "done")
    except OSError as error:
        print(name, errno.errorcode[error.errno])
''')
    assert result.status == "exit 0"
    names = ("flock", "F_SETLK", "F_GETLK", "F_OFD_SETLK", "F_SETLEASE", "F_NOTIFY")
    assert text.splitlines() == [f"{name} ENOLCK" for name in names]
    noted = {"refused system call flock"}
    noted |= {f"refused system call fcntl {name}" for name in names[1:]}
    assert noted <= set(result.events), result.events


def test_the_box_has_the_five_data_devices_and_a_few_terminals_of_its_own(pool):
    """No tty; a /dev/shm of the child's own; pseudo-terminals only from its own devpts (what
    IPython's `!command` runs on), PTY_MAX of them: every devpts draws on the host's one
    count, so a child must not be able to use it up."""
    before = pseudo_terminals_in_use()
    (text,) = printed(pool, f'''
import os
print(sorted(os.listdir("/dev")))
held = []
try:
    while len(held) < {PTY_MAX + 10}:
        held.append(os.openpty())
except OSError as error:
    print(len(held), "pseudo-terminals, then", error.strerror)
''')
    listing, terminals = text.splitlines()
    assert listing == str(["fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr",
                           "stdin", "stdout", "urandom", "zero"])
    assert terminals == f"{PTY_MAX} pseudo-terminals, then No space left on device"
    assert pseudo_terminals_in_use() <= before  # they went with the child


def test_honest_work_runs_without_a_single_event(pool):
    result, (text,) = run(pool, '''
import os, socket, threading
import matplotlib.pyplot as plt
import numpy as np
from gdlab.data import load_study_habits

features, targets = load_study_habits()  # the data file shipped with gdlab
weights = np.linalg.solve(features.T @ features, features.T @ targets)
figure, axes = plt.subplots()
axes.plot(np.linspace(0, 1, 50), np.linspace(0, 1, 50) ** 2)
figure.savefig("/tmp/curve.png")
plt.close(figure)
sums = []
worker = threading.Thread(target=lambda: sums.append(float(np.abs(weights).sum())))
worker.start()
worker.join()
with open("/tmp/notes.txt", "w") as notes:
    notes.write("learnrate 0.5")
with open("/tmp/notes.txt") as notes:
    kept = notes.read()
mine, theirs = socket.socketpair()
mine.sendall(b"ping")
answer = theirs.recv(4)
mine.close()
theirs.close()
made = os.path.getsize("/tmp/curve.png") > 0
for name in ("curve.png", "notes.txt"):
    os.remove(f"/tmp/{name}")
print(features.shape, weights.shape, len(sums), kept, answer, made,
      {"curve.png", "notes.txt"} & set(os.listdir("/tmp")))
''')
    assert result.status == "exit 0", text
    assert text == "(40, 3) (3, 2) 1 learnrate 0.5 b'ping' True set()\n"
    assert result.events == ()


def test_each_slot_user_has_a_group_of_its_own(pool):
    users = [pwd.getpwnam(f"{USER_PREFIX}{slot}") for slot in range(MAX_SLOTS)]
    for user in users:
        group = grp.getgrgid(user.pw_gid)
        assert group.gr_name == user.pw_name
        assert set(group.gr_mem) <= {user.pw_name}, f"{group.gr_name} has members {group.gr_mem}"
        sharing = [other.pw_name for other in pwd.getpwall()
                   if other.pw_gid == user.pw_gid and other.pw_name != user.pw_name]
        assert not sharing, f"{user.pw_name}'s group is also the group of {sharing}"
    assert len({user.pw_gid for user in users}) == MAX_SLOTS
    (text,) = printed(pool, 'import os\nprint(os.getresgid(), os.getgroups())\n'
                            'print(open("/proc/self/status").read())')
    gid = pwd.getpwnam(f"{USER_PREFIX}{pool.claims[0].slot}").pw_gid
    resgid, groups = text.splitlines()[0].split(") ")
    assert resgid + ")" == str((gid,) * 3)
    assert set(json.loads(groups)) <= {gid}
    status = dict(line.split(":", 1) for line in text.splitlines()[1:] if ":" in line)
    assert set(status["Groups"].split()) <= {str(gid)}


def test_a_child_cannot_use_up_the_hosts_processes_or_disk(pool):
    limits = pool.limits
    (text,) = printed(pool, f'''
import os, signal, time
children = []
try:
    while len(children) < 4 * {limits.processes}:
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
except OSError:
    pass
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
written = 0
try:
    for index in range(4 * {limits.tmp_mb} // 8):
        with open(f"/tmp/fill{{index}}", "wb", buffering=0) as file:
            for _ in range(8):  # 8 MB a file, under the largest file one may write
                written += file.write(bytes(2**20)) // 2**20
except OSError as error:
    print("stopped:", error.strerror)
print(len(children), "processes,", written, "MB")
''')
    stopped, counts = text.splitlines()
    started, written = int(counts.split()[0]), int(counts.split()[2])
    assert started < limits.processes  # the job itself counts as one
    assert written <= limits.tmp_mb
    assert stopped == "stopped: No space left on device"


def test_the_supervisor_notes_paths_however_they_are_spelt(pool):
    """`..` after a /proc magic link, a thread's root, a symbolic link in /tmp, a maze of
    links: each open outside the workspace is noted as the path the kernel would walk to,
    and the maze costs the supervisor no more than the kernel's 40 links."""
    result, (text,) = run(pool, '''
import os, threading, time
tid = threading.get_native_id()
os.symlink("/work", "/tmp/w")
for link in range(60):
    os.symlink(f"/tmp/m{link + 1}", f"/tmp/m{link}")
start = time.monotonic()
for path in ("/proc/self/cwd/../opt/a", f"/proc/self/task/{tid}/root/opt/b", "/tmp/w/c",
             "/tmp/m0/d"):
    try:
        os.listdir(path)
    except OSError:
        pass
print(round(time.monotonic() - start, 1))
''')
    assert result.status == "exit 0"
    assert float(text) < 2
    for path in ("/opt/a", "/opt/b", "/work/c"):
        assert f"opened {path} (outside the workspace)" in result.events, result.events
