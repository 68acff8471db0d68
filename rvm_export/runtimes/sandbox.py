"""The confinement of a runtime's child process: applied by the child to itself before it imports the runtime
or opens the artifact (docs/security.md, "The second line").

This module imports nothing but the standard library and nothing of the package, so that the child can load it
from its file and confine itself while it is still a single thread (a new user namespace can only be entered by
a single-threaded process, and numpy's BLAS starts threads when it is imported).

What :func:`confine` applies, each as far as this kernel allows (:func:`confine` returns what it applied):

- ``PR_SET_NO_NEW_PRIVS``: no setuid binary or file capability ever raises the child's privileges;
- a network namespace of its own (through a user namespace where the child is not root): nothing to connect to
  but its own loopback, which covers UDP and abstract sockets too; and a PID and mount namespace with its own
  /proc, so that no other process's entries there (another process's environ is readable to the same user)
  exist for it;
- Landlock (a ruleset of the highest ABI the kernel has, up to 6): reads only beneath the paths the parent
  names (the artifact's folder, the Python and runtime installs, the system's libraries), writes only in the
  scratch folder, ``execve`` of nothing but the named executables, no TCP bind or connect, abstract Unix
  sockets and signals scoped to the child's own domain (and ptrace too, which keeps other processes'
  ``/proc/PID/mem`` and ``environ`` closed);
- resource limits: data memory, file size, CPU time, no core files.

The Landlock binding is our own (about 60 lines of ctypes): the ``landlock`` package on PyPI (1.0.0.dev5, a
pre-release) covers filesystem rules only, with no TCP rules (ABI 4), no scopes (ABI 6) and no downgrade to the
ABI a kernel has; libseccomp's bindings are not needed for what Landlock and the namespace cover.
"""

import ctypes
import errno
import json
import os
import platform
import resource
import signal
import socket
import struct
import sys
from dataclasses import asdict, dataclass, field
from typing import List, Sequence, Tuple

# Landlock's ABI (include/uapi/linux/landlock.h): access rights by the ABI version that introduced them.
_FS = {
    1: (1 << 13)
    - 1,  # execute, write_file, read_file, read_dir, remove_dir/file, make_char/dir/reg/sock/fifo/block/sym
    2: 1 << 13,  # refer
    3: 1 << 14,  # truncate
    5: 1 << 15,  # ioctl_dev
}
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1, 2, 4, 8
TRUNCATE, IOCTL_DEV = 1 << 14, 1 << 15
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # the rights a rule on a file may carry
READ = READ_FILE | READ_DIR
WRITE = (1 << 13) - 1 - EXECUTE | (1 << 13) | TRUNCATE  # everything but execute, beneath the scratch folder
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2  # ABI 4
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1, 2  # ABI 6
_SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}  # create_ruleset, add_rule, restrict_self
_PR_SET_NO_NEW_PRIVS = 38
_LOADERS = ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/usr/lib/ld-linux-aarch64.so.1")
_CLONE_NEWUSER, _CLONE_NEWNET, _CLONE_NEWPID, _CLONE_NEWNS = 0x10000000, 0x40000000, 0x20000000, 0x00020000


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]


@dataclass
class Policy:
    """What the child may touch. Paths that do not exist are left out; a file may carry only file rights."""

    read: List[str] = field(default_factory=list)  # read beneath (files and folders)
    list_only: List[str] = field(default_factory=list)  # folders whose names may be listed, files not read
    write: List[str] = field(default_factory=list)  # read, write, create, remove beneath (the scratch folder)
    execute: List[str] = field(default_factory=list)  # executables the child may start (Node.js for TF.js)
    devices: List[str] = field(default_factory=list)  # device files read, written and ioctl'ed (a GPU)
    network: bool = False  # True: TCP left to the namespace (the browser runner's own loopback server)
    memory_bytes: int = 0  # RLIMIT_DATA; 0: no limit
    file_bytes: int = 4 << 30  # RLIMIT_FSIZE
    cpu_seconds: int = 3600  # RLIMIT_CPU (all threads together)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Policy":
        return cls(**json.loads(text))


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


OFF_ENV = "RVM_SANDBOX"  # "off": run runtimes unconfined (reported; --require-sandbox then refuses)


def landlock_abi() -> Tuple[int, str]:
    """(ABI version, "") where Landlock works here, else (0, why not)."""
    if os.environ.get(OFF_ENV, "").lower() == "off":
        return 0, f"{OFF_ENV}=off turns confinement off"
    if sys.platform != "linux":
        return 0, f"Landlock is a Linux feature; this is {platform.system()}"
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None:
        return 0, f"no Landlock syscall numbers known for {platform.machine()}"
    libc = _libc()
    abi = libc.syscall(numbers[0], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 0:
        code = ctypes.get_errno()
        why = {errno.ENOSYS: "the kernel has no Landlock", errno.EOPNOTSUPP: "Landlock is disabled at boot"}
        return 0, why.get(code, f"Landlock is unavailable ({os.strerror(code)})")
    return int(abi), ""


def _landlock(policy: Policy, abi: int) -> str:
    create, add_rule, restrict = _SYSCALLS[platform.machine()]
    libc = _libc()
    handled = sum(bits for version, bits in _FS.items() if version <= abi)
    net = 0 if policy.network or abi < 4 else NET_BIND_TCP | NET_CONNECT_TCP
    scoped = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL if abi >= 6 else 0
    attr = _RulesetAttr(handled, net, scoped)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        rules = [(p, READ) for p in policy.read] + [(p, READ_DIR) for p in policy.list_only]
        executables = [*policy.execute, *(_LOADERS if policy.execute else ())]  # execve opens the ELF loader too
        rules += [(p, WRITE | READ) for p in policy.write] + [(p, EXECUTE | READ_FILE) for p in executables]
        rules += [(p, READ_FILE | WRITE_FILE | IOCTL_DEV) for p in policy.devices]
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # absent here (a /lib64 on an aarch64 system): nothing to allow
            try:
                if not os.path.isdir(path):
                    rights &= FILE_RIGHTS
                rule = _PathBeneath(rights & handled, fd)
                if libc.syscall(add_rule, ruleset, 1, ctypes.byref(rule), 0) < 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"landlock_add_rule {path}: {os.strerror(code)}")
            finally:
                os.close(fd)
        if libc.syscall(restrict, ruleset, 0) < 0:
            raise OSError(ctypes.get_errno(), f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    parts = ["files"] + (["TCP"] if net else []) + (["abstract sockets and signals"] if scoped else [])
    return f"Landlock ABI {abi} ({', '.join(parts)})"


def _namespaces(keep_fds: List[int]) -> str:
    """Namespaces of the child's own: a network namespace (nothing to reach but its own loopback, brought up for
    runtimes that serve themselves) and, where the kernel allows, a PID and mount namespace with a /proc of its
    own, so that no other process's /proc entries (its environ, cmdline, maps) exist for the child. Returns what
    was made ("" for nothing). With the PID namespace this process forks: the original waits for the worker and
    ends as it ends (its exit code, or the same signal), so the parent sees the worker's death as before."""
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    user = 0 if uid == 0 else _CLONE_NEWUSER
    made = ""
    if libc.unshare(user | _CLONE_NEWNET | _CLONE_NEWPID | _CLONE_NEWNS) == 0:
        made = "own network, PID and mount namespaces"
    elif libc.unshare(user | _CLONE_NEWNET) == 0:
        made = "own network namespace"
    else:
        return ""
    if user:  # keep our own uid inside the user namespace, so file ownership reads as before
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            try:
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
            except OSError:
                pass
    if "PID" in made:
        _become_pid_namespace(libc, keep_fds)
    _loopback_up()
    return made


def _wait_and_mirror(pid: int, keep_fds: List[int], inside: bool) -> None:
    """Wait for ``pid`` and end as it ended: the same exit code, or (outside the namespace) the same signal. Inside,
    as the namespace's init, a signal cannot be raised on oneself: it is passed up as exit code 128 + signal."""
    for fd in keep_fds:
        os.close(fd)  # the worker alone holds the parent's socket: its death is the parent's end of file
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if inside:
            os._exit(128 + number)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    code = os.WEXITSTATUS(status)
    if not inside and 128 < code <= 128 + 64:  # the init's report of a signal
        signal.signal(code - 128, signal.SIG_DFL)
        os.kill(os.getpid(), code - 128)
    os._exit(code)


def _become_pid_namespace(libc: ctypes.CDLL, keep_fds: List[int]) -> None:
    """Fork into the new PID namespace (its init, which mounts its /proc and reaps), then fork the worker."""
    pid = os.fork()
    if pid:
        _wait_and_mirror(pid, keep_fds, inside=False)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: the outer killed (a timeout) ends the namespace
    ms_rec, ms_private, ms_nosuid, ms_nodev, ms_noexec = 1 << 14, 1 << 18, 2, 4, 8
    if (
        libc.mount(b"none", b"/", None, ms_rec | ms_private, None) != 0
        or libc.mount(b"proc", b"/proc", b"proc", ms_nosuid | ms_nodev | ms_noexec, None) != 0
    ):
        os._exit(125)  # the parent reports "exited with code 125" loading: not expected on a kernel that got here
    pid = os.fork()
    if pid:
        signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
        _wait_and_mirror(pid, keep_fds, inside=True)


def _loopback_up() -> None:
    try:  # SIOCGIFFLAGS / SIOCSIFFLAGS on lo: IFF_UP
        import fcntl

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            request = struct.pack("16sH22x", b"lo", 0)
            current = struct.unpack("16sH22x", fcntl.ioctl(s.fileno(), 0x8913, request))[1]
            fcntl.ioctl(s.fileno(), 0x8914, struct.pack("16sH22x", b"lo", current | 1))
    except OSError:
        pass


def _limits(policy: Policy) -> str:
    applied = []
    for name, limit, value in (
        ("memory", resource.RLIMIT_DATA, policy.memory_bytes),
        ("file size", resource.RLIMIT_FSIZE, policy.file_bytes),
        ("CPU time", resource.RLIMIT_CPU, policy.cpu_seconds),
    ):
        if value > 0:
            soft, hard = resource.getrlimit(limit)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(limit, (value, hard if limit != resource.RLIMIT_CPU else value + 5))
            applied.append(name)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return "limits on " + ", ".join(applied)


def confine(policy: Policy, keep_fds: Sequence[int] = ()) -> Tuple[bool, str]:
    """Confine this process (call it while single-threaded): (Landlock applied?, what was applied / missing).
    ``keep_fds``: descriptors only the confined worker may hold (the parent's socket), where a PID namespace makes
    this process fork and wait."""
    if os.environ.get(OFF_ENV, "").lower() == "off":
        return False, f"NOT CONFINED: {OFF_ENV}=off"
    done = []
    libc = _libc() if sys.platform == "linux" else None
    if libc is not None and libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0:
        done.append("no new privileges")
    if sys.platform == "linux":
        made = _namespaces(list(keep_fds))
        if made:
            done.append(made)
        if "PID" in made:  # its /proc shows only the child's own processes (and those it starts)
            policy.read = [p for p in policy.read if not p.startswith("/proc/")] + ["/proc"]
    done.append(_limits(policy))
    abi, why = landlock_abi()
    if abi:
        done.insert(0, _landlock(policy, abi))
        return True, "; ".join(done)
    return False, f"NOT CONFINED: {why} ({'; '.join(done)} only)"


def available() -> Tuple[bool, str]:
    """Whether :func:`confine` can apply Landlock here, and if not, why (for the report's first line)."""
    abi, why = landlock_abi()
    return bool(abi), why or f"Landlock ABI {abi}"


__all__ = ["Policy", "available", "confine", "landlock_abi"]
