"""The system-call policy and the seccomp program built from it, without a box: a small
interpreter of classic BPF runs the program on calls and arguments, so a wrong jump or a
wrong argument offset shows up here as a wrong answer, on both machines we build for."""
import errno
import struct

import pytest

from autograder import syscalls
from autograder.sandbox import (AUDIT_ARCH, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS,
                                RET_USER_NOTIF, X32_SYSCALL_BIT, seccomp_program)

MACHINES = ("x86_64", "aarch64")


def run_filter(program, nr, arch, args=(0,) * 6):
    """What the BPF `program` returns for one call (seccomp_data: nr, arch, ip, args)."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args)
    accumulator, pc = 0, 0
    instructions = [struct.unpack("HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    while True:
        code, if_true, if_false, k = instructions[pc]
        pc += 1
        if code == 0x20:                                    # ld [k]
            accumulator = struct.unpack_from("=I", data, k)[0]
            continue
        if code == 0x06:                                    # ret k
            return k
        taken = {0x15: accumulator == k, 0x35: accumulator >= k,
                 0x45: bool(accumulator & k)}[code]         # jeq, jge, jset
        pc += if_true if taken else if_false


@pytest.fixture(params=MACHINES)
def machine(request):
    return request.param


def answer(machine, name, *args):
    arguments = list(args) + [0] * (6 - len(args))
    return run_filter(seccomp_program(machine), syscalls.numbers(machine)[name],
                      AUDIT_ARCH[machine], arguments)


def test_the_policy_names_only_calls_it_knows_and_each_once():
    names = set(syscalls.NUMBERS)
    groups = [syscalls.ALLOWED, set(syscalls.WATCHED), syscalls.FORBIDDEN]
    assert all(group <= names for group in groups)
    assert not (syscalls.ALLOWED & syscalls.FORBIDDEN or syscalls.ALLOWED & set(syscalls.WATCHED)
                or syscalls.FORBIDDEN & set(syscalls.WATCHED))


def test_every_allowed_call_runs_and_everything_else_goes_to_the_supervisor(machine):
    calls = syscalls.numbers(machine)
    special = {"clone", "clone3", "fcntl", "futex", "madvise", "socket", "socketpair"}
    for name in calls:
        if name in special:
            continue
        expected = RET_ALLOW if name in syscalls.ALLOWED else RET_USER_NOTIF
        assert answer(machine, name) == expected, name


def test_arguments_decide_the_calls_that_reach_shared_kernel_state(machine):
    private_wait = 0 | syscalls.FUTEX_PRIVATE_FLAG
    assert answer(machine, "futex", 0, private_wait) == RET_ALLOW
    assert answer(machine, "futex", 0, 0) == RET_USER_NOTIF           # a shared futex
    assert answer(machine, "clone", 0x00010000 | 0x00000100) == RET_ALLOW    # a thread
    assert answer(machine, "clone", 17) == RET_USER_NOTIF              # fork: watched
    assert answer(machine, "clone", 0x10000000 | 0x00010000) == RET_USER_NOTIF  # a namespace
    assert answer(machine, "clone3") == RET_ERRNO | errno.ENOSYS
    for command in syscalls.FCNTL_REFUSED:
        assert answer(machine, "fcntl", 3, command) == RET_USER_NOTIF, command
    assert answer(machine, "fcntl", 3, 1) == RET_ALLOW                 # F_GETFD
    for family in syscalls.SOCKET_FAMILIES:
        assert answer(machine, "socket", family) == RET_ALLOW
    assert answer(machine, "socket", syscalls.AF_NETLINK, 3, syscalls.NETLINK_ROUTE) == RET_ALLOW
    assert answer(machine, "socket", syscalls.AF_NETLINK, 3, 9) == RET_USER_NOTIF  # audit
    assert answer(machine, "socket", 17) == RET_USER_NOTIF             # AF_PACKET
    assert answer(machine, "socketpair", syscalls.AF_UNIX) == RET_ALLOW
    assert answer(machine, "socketpair", 40) == RET_USER_NOTIF         # AF_VSOCK
    for advice in syscalls.MADVISE_ALLOWED:
        assert answer(machine, "madvise", 0, 4096, advice) == RET_ALLOW
    assert answer(machine, "madvise", 0, 4096, 21) == RET_USER_NOTIF   # MADV_PAGEOUT


def test_another_abi_is_killed_or_refused():
    program = seccomp_program("x86_64")
    assert run_filter(program, 0, 0x40000003) == RET_KILL_PROCESS      # i386
    assert run_filter(program, X32_SYSCALL_BIT | 0, AUDIT_ARCH["x86_64"]) == RET_USER_NOTIF


def test_the_kernel_answers_a_refused_call_with_an_error_the_c_library_knows():
    assert syscalls.errno_for("keyctl") == errno.EPERM
    assert syscalls.errno_for("flock") == errno.ENOLCK
    assert syscalls.errno_for("shmget") == errno.ENOSYS
    assert syscalls.errno_for("socket") == errno.EAFNOSUPPORT
