"""What a notebook's code may ask of the kernel inside the box: the system-call policy.

An allow-list, derived from the honest corpus (every fixture, mistake and demo notebook,
traced with `scripts/syscall-census`) and widened to the families those calls belong to,
so that honest code that writes files, plots, prints, sleeps, starts a thread or a
process, or opens a socket in its empty network namespace works unchanged:

- `ALLOWED` calls run without a word;
- `WATCHED` calls run too, but the supervisor outside the child notes each one first
  (a path opened outside the workspace, a process started, a connection attempted);
- `FORBIDDEN` calls reach kernel objects that outlive the child or are shared with other
  children and graders (keyrings, io_uring, userfaultfd, perf events, ptrace, BPF, mounts,
  namespaces, notifications on shared files...): refused with EPERM and flagged;
- everything else is refused with ENOSYS, which the C library takes as "this kernel has no
  such call" and falls back from, and is noted.

Standard library only: it is mounted into the box beside `sandbox.py`.
"""
import errno

# name -> (x86_64 number, aarch64 number); None where the machine has no such call.
NUMBERS = {
    "accept": (43, 202), "accept4": (288, 242), "access": (21, None), "acct": (163, 89),
    "add_key": (248, 217), "adjtimex": (159, 171), "alarm": (37, None),
    "arch_prctl": (158, None), "bind": (49, 200), "bpf": (321, 280), "brk": (12, 214),
    "capget": (125, 90), "chdir": (80, 49), "chmod": (90, None), "chroot": (161, 51),
    "clock_adjtime": (305, 266), "clock_getres": (229, 114), "clock_gettime": (228, 113),
    "clock_nanosleep": (230, 115), "clock_settime": (227, 112), "clone": (56, 220),
    "clone3": (435, 435), "close": (3, 57), "close_range": (436, 436), "connect": (42, 203),
    "copy_file_range": (326, 285), "creat": (85, None), "delete_module": (176, 106),
    "dup": (32, 23), "dup2": (33, None), "dup3": (292, 24), "epoll_create": (213, None),
    "epoll_create1": (291, 20), "epoll_ctl": (233, 21), "epoll_pwait": (281, 22),
    "epoll_pwait2": (441, 441), "epoll_wait": (232, None), "eventfd": (284, None),
    "eventfd2": (290, 19), "execve": (59, 221), "execveat": (322, 281), "exit": (60, 93),
    "exit_group": (231, 94), "faccessat": (269, 48), "faccessat2": (439, 439),
    "fadvise64": (221, 223), "fallocate": (285, 47), "fanotify_init": (300, 262),
    "fanotify_mark": (301, 263), "fchdir": (81, 50), "fchmod": (91, 52), "fchmodat": (268, 53),
    "fcntl": (72, 25), "fdatasync": (75, 83), "fgetxattr": (193, 10),
    "finit_module": (313, 273), "flistxattr": (196, 13), "flock": (73, 32), "fork": (57, None),
    "fsconfig": (431, 431), "fsmount": (432, 432), "fsopen": (430, 430), "fspick": (433, 433),
    "fstat": (5, 80), "fstatfs": (138, 44), "fsync": (74, 82), "ftruncate": (77, 46),
    "futex": (202, 98), "futex_waitv": (449, 449), "getcpu": (309, 168), "getcwd": (79, 17),
    "getdents": (78, None), "getdents64": (217, 61), "getegid": (108, 177),
    "geteuid": (107, 175), "getgid": (104, 176), "getgroups": (115, 158),
    "getitimer": (36, 102), "getpeername": (52, 205), "getpgid": (121, 155),
    "getpgrp": (111, None), "getpid": (39, 172), "getppid": (110, 173),
    "getpriority": (140, 141), "getrandom": (318, 278), "getresgid": (120, 150),
    "getresuid": (118, 148), "getrlimit": (97, 163), "getrusage": (98, 165),
    "getsid": (124, 156), "getsockname": (51, 204), "getsockopt": (55, 209),
    "gettid": (186, 178), "gettimeofday": (96, 169), "getuid": (102, 174),
    "getxattr": (191, 8), "init_module": (175, 105), "inotify_add_watch": (254, 27),
    "inotify_init": (253, None), "inotify_init1": (294, 26), "inotify_rm_watch": (255, 28),
    "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "io_uring_setup": (425, 425), "ioctl": (16, 29), "ioperm": (173, None),
    "iopl": (172, None), "kcmp": (312, 272), "kexec_file_load": (320, 294),
    "kexec_load": (246, 104), "keyctl": (250, 219), "kill": (62, 129), "lgetxattr": (192, 9),
    "link": (86, None), "linkat": (265, 37), "listen": (50, 201), "listxattr": (194, 11),
    "llistxattr": (195, 12), "lookup_dcookie": (212, 18), "lseek": (8, 62), "lstat": (6, None),
    "madvise": (28, 233), "memfd_create": (319, 279), "mkdir": (83, None),
    "mkdirat": (258, 34), "mmap": (9, 222), "mount": (165, 40), "mount_setattr": (442, 442),
    "move_mount": (429, 429), "mprotect": (10, 226), "mq_getsetattr": (245, 185),
    "mq_notify": (244, 184), "mq_open": (240, 180), "mq_timedreceive": (243, 183),
    "mq_timedsend": (242, 182), "mq_unlink": (241, 181), "mremap": (25, 216),
    "msgctl": (71, 187), "msgget": (68, 186), "msgrcv": (70, 188), "msgsnd": (69, 189),
    "msync": (26, 227), "munmap": (11, 215), "name_to_handle_at": (303, 264),
    "nanosleep": (35, 101), "newfstatat": (262, 79), "open": (2, None),
    "open_by_handle_at": (304, 265), "open_tree": (428, 428), "openat": (257, 56),
    "openat2": (437, 437), "pause": (34, None), "perf_event_open": (298, 241),
    "personality": (135, 92), "pidfd_getfd": (438, 438), "pidfd_open": (434, 434),
    "pidfd_send_signal": (424, 424), "pipe": (22, None), "pipe2": (293, 59),
    "pivot_root": (155, 41), "poll": (7, None), "ppoll": (271, 73), "prctl": (157, 167),
    "pread64": (17, 67), "preadv": (295, 69), "preadv2": (327, 286), "prlimit64": (302, 261),
    "process_vm_readv": (310, 270), "process_vm_writev": (311, 271), "pselect6": (270, 72),
    "ptrace": (101, 117), "pwrite64": (18, 68), "pwritev": (296, 70), "pwritev2": (328, 287),
    "quotactl": (179, 60), "quotactl_fd": (443, 443), "read": (0, 63), "readlink": (89, None),
    "readlinkat": (267, 78), "readv": (19, 65), "reboot": (169, 142), "recvfrom": (45, 207),
    "recvmmsg": (299, 243), "recvmsg": (47, 212), "rename": (82, None), "renameat": (264, 38),
    "renameat2": (316, 276), "request_key": (249, 218), "restart_syscall": (219, 128),
    "rmdir": (84, None), "rseq": (334, 293), "rt_sigaction": (13, 134),
    "rt_sigpending": (127, 136), "rt_sigprocmask": (14, 135), "rt_sigreturn": (15, 139),
    "rt_sigsuspend": (130, 133), "rt_sigtimedwait": (128, 137),
    "sched_get_priority_max": (146, 125), "sched_get_priority_min": (147, 126),
    "sched_getaffinity": (204, 123), "sched_getparam": (143, 121),
    "sched_getscheduler": (145, 120), "sched_setaffinity": (203, 122),
    "sched_yield": (24, 124), "select": (23, None), "semctl": (66, 191), "semget": (64, 190),
    "semop": (65, 193), "semtimedop": (220, 192), "sendfile": (40, 71), "sendmmsg": (307, 269),
    "sendmsg": (46, 211), "sendto": (44, 206), "set_robust_list": (273, 99),
    "set_tid_address": (218, 96), "setdomainname": (171, 162), "setfsgid": (123, 152),
    "setfsuid": (122, 151), "setgid": (106, 144), "setgroups": (116, 159),
    "sethostname": (170, 161), "setitimer": (38, 103), "setns": (308, 268),
    "setpgid": (109, 154), "setpriority": (141, 140), "setregid": (114, 143),
    "setresgid": (119, 149), "setresuid": (117, 147), "setreuid": (113, 145),
    "setrlimit": (160, 164), "setsid": (112, 157), "setsockopt": (54, 208),
    "settimeofday": (164, 170), "setuid": (105, 146), "shmat": (30, 196), "shmctl": (31, 195),
    "shmdt": (67, 197), "shmget": (29, 194), "shutdown": (48, 210), "sigaltstack": (131, 132),
    "signalfd": (282, None), "signalfd4": (289, 74), "socket": (41, 198),
    "socketpair": (53, 199), "stat": (4, None), "statfs": (137, 43), "statx": (332, 291),
    "swapoff": (168, 225), "swapon": (167, 224), "symlink": (88, None), "symlinkat": (266, 36),
    "sysinfo": (99, 179), "syslog": (103, 116), "tgkill": (234, 131), "time": (201, None),
    "timer_create": (222, 107), "timer_delete": (226, 111), "timer_getoverrun": (225, 109),
    "timer_gettime": (224, 108), "timer_settime": (223, 110), "timerfd_create": (283, 85),
    "timerfd_gettime": (287, 87), "timerfd_settime": (286, 86), "times": (100, 153),
    "tkill": (200, 130), "truncate": (76, 45), "umask": (95, 166), "umount2": (166, 39),
    "uname": (63, 160), "unlink": (87, None), "unlinkat": (263, 35), "unshare": (272, 97),
    "userfaultfd": (323, 282), "utimensat": (280, 88), "vfork": (58, None),
    "vhangup": (153, 58), "wait4": (61, 260), "waitid": (247, 95), "write": (1, 64),
    "writev": (20, 66),
}

ALLOWED = frozenset("""
    read write readv writev pread64 pwrite64 preadv pwritev lseek close
    close_range fstat stat lstat newfstatat statx statfs fstatfs access faccessat faccessat2
    readlink readlinkat getdents getdents64 getcwd chdir fchdir mkdir mkdirat rmdir unlink
    unlinkat rename renameat renameat2 link linkat symlink symlinkat chmod fchmod fchmodat
    utimensat truncate ftruncate fallocate fsync fdatasync umask dup dup2 dup3 pipe pipe2
    ioctl sendfile copy_file_range getxattr lgetxattr fgetxattr listxattr
    llistxattr flistxattr
    poll ppoll select pselect6 epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait
    epoll_pwait2 eventfd eventfd2 timerfd_create timerfd_settime timerfd_gettime signalfd
    signalfd4
    clock_gettime clock_getres clock_nanosleep nanosleep gettimeofday time times getitimer
    setitimer alarm timer_create timer_settime timer_gettime timer_getoverrun timer_delete
    getpid getppid gettid getuid geteuid getgid getegid getresuid getresgid getgroups getpgid
    getpgrp getsid setsid setpgid uname sysinfo getrusage getrlimit setrlimit prlimit64
    getpriority sched_yield sched_getaffinity sched_setaffinity sched_getparam
    sched_getscheduler sched_get_priority_max sched_get_priority_min getcpu capget prctl
    arch_prctl set_tid_address set_robust_list rseq restart_syscall exit
    exit_group wait4 waitid kill tgkill tkill rt_sigaction rt_sigprocmask rt_sigreturn
    rt_sigpending rt_sigtimedwait rt_sigsuspend sigaltstack pause pidfd_open
    pidfd_send_signal getrandom memfd_create
    brk mmap munmap mremap mprotect msync
    listen accept accept4 sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg
    shutdown getsockname getpeername getsockopt setsockopt
""".split())

# Allowed, with a note from the supervisor first (the note says what it saw).
WATCHED = {
    "open": "open", "openat": "open", "openat2": "open", "creat": "open",
    "fork": "process", "vfork": "process", "clone": "process",
    "execve": "program", "execveat": "program",
    "connect": "connection", "bind": "socket",
}

FORBIDDEN = frozenset("""
    add_key request_key keyctl io_uring_setup io_uring_enter io_uring_register userfaultfd
    perf_event_open ptrace bpf process_vm_readv process_vm_writev kcmp pidfd_getfd unshare
    setns mount umount2 pivot_root chroot open_tree move_mount fsopen fsconfig fsmount fspick
    mount_setattr kexec_load kexec_file_load init_module finit_module delete_module reboot
    swapon swapoff acct quotactl quotactl_fd name_to_handle_at open_by_handle_at
    fanotify_init fanotify_mark inotify_init inotify_init1 inotify_add_watch
    inotify_rm_watch lookup_dcookie syslog settimeofday clock_settime clock_adjtime adjtimex
    sethostname setdomainname iopl ioperm vhangup personality
""".split())

# Calls whose arguments decide (seccomp sees registers, never memory). The kernel state
# that every box shares (a read-only file's locks, its page cache, a futex in a file
# mapped by two children) must not be reachable through them:
# clone: a thread is allowed, a new process watched, a new namespace forbidden;
# fcntl: file locks, leases and change notifications are refused;
# futex: private futexes only (a shared one keyed on a read-only file would be a wire
# between two children mapping that file);
# madvise: the advice malloc, NumPy and the C library give; not the page-out kinds, which
# would let a child evict another's cached pages of a shared file;
# socket: local and internet families in the child's empty network namespace, and
# netlink routing (what `if_nameindex` asks); no raw, packet or kernel-crypto sockets;
# socketpair: local only.
# fadvise64 (DONTNEED evicts a shared file's pages) and preadv2/pwritev2 (RWF_NOWAIT tells
# whether a page is cached) are off the list: reading and writing fall back to the plain
# calls, and nothing honest needs the rest.
CLONE_THREAD = 0x00010000
NEW_NAMESPACES = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
FCNTL_REFUSED = {5: "F_GETLK", 6: "F_SETLK", 7: "F_SETLKW", 36: "F_OFD_GETLK",
                 37: "F_OFD_SETLK", 38: "F_OFD_SETLKW", 1024: "F_SETLEASE", 1026: "F_NOTIFY"}
SOCKET_FAMILIES = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6"}
AF_UNIX = 1
FUTEX_PRIVATE_FLAG = 128
MADVISE_ALLOWED = {0: "NORMAL", 1: "RANDOM", 2: "SEQUENTIAL", 3: "WILLNEED", 4: "DONTNEED",
                   8: "FREE", 9: "REMOVE", 10: "DONTFORK", 11: "DOFORK", 14: "HUGEPAGE",
                   15: "NOHUGEPAGE", 16: "DONTDUMP", 17: "DODUMP", 18: "WIPEONFORK",
                   19: "KEEPONFORK"}
AF_NETLINK, NETLINK_ROUTE = 16, 0
# clone3 passes its flags in memory, out of seccomp's sight: ENOSYS sends the C library
# back to clone, whose flags it can see.
NO_SUCH_CALL = ("clone3",)


def errno_for(name):
    """The error a refused call `name` answers with."""
    if name in FORBIDDEN:
        return errno.EPERM
    if name in ("fcntl", "flock"):
        return errno.ENOLCK
    if name in ("socket", "socketpair"):
        return errno.EAFNOSUPPORT
    if name in ("madvise", "futex"):
        return errno.EINVAL
    return errno.ENOSYS


def numbers(machine):
    """name -> number on `machine` ("x86_64" or "aarch64"), for the calls it has."""
    column = {"x86_64": 0, "aarch64": 1}[machine]
    return {name: row[column] for name, row in NUMBERS.items() if row[column] is not None}
