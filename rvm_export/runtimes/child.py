"""Every artifact runs in a confined child process: :class:`ChildRunner` is the runner the rest of the package
sees, and the runtime's own runner lives in the child, behind :mod:`.sandbox`'s confinement (docs/security.md).

The child is a fresh interpreter (:func:`interpreter`: the one place that chooses it), never ``fork`` (the parent
may hold PyTorch's threads) nor ``multiprocessing``'s spawn (which re-imports the caller's script). It loads
``sandbox.py`` from its file, confines itself while still a single thread, and only then imports the runtime and
opens the artifact. It gets a minimal environment (no tokens of the parent's), a scratch folder as its home and
temporary folder, and its standard output and error go to a file whose first line an error quotes.

Parent and child speak length-prefixed JSON over a socket pair, never pickle: the child runs a stranger's file,
so nothing it sends may be code to the parent. Arrays cross through two files in shared memory (``/dev/shm``),
one each way, grown by the writer; a message carries only their dtypes, shapes and offsets, checked before they
are read. Recurrent states never leave the child: the parent holds a handle per state, released when dropped.

A runner class may say what its runtime needs beyond the defaults (``sandbox_needs``: an executable such as
Node.js, device files, its own loopback network) and whether it checks the artifact against the PyTorch
reference (``wants_reference``: the reference's weights are sent over as arrays and rebuilt in the child).
"""

import json
import mmap
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from rvm_export.contract import ArtifactMetadata

from .base import ArtifactFacts, Outputs, Runner, RunnerError
from .sandbox import Policy, available

TIMEOUT_ENV = "RVM_CHILD_TIMEOUT"  # seconds a child may take to load, or to answer one frame (default 600)
LOAD_TIMEOUT = FRAME_TIMEOUT = 600.0  # a child that neither answers nor dies in time is killed and reported
MAX_MESSAGE = 64 << 20
SANDBOX_FILE = str(Path(__file__).with_name("sandbox.py"))
_BOOT = (
    "import sys, importlib.util as u; s = u.spec_from_file_location('rvm_sandbox', sys.argv[1]); "
    "m = u.module_from_spec(s); s.loader.exec_module(m); import json; fd = json.loads(sys.argv[3])['fd']; "
    "c = m.confine(m.Policy.from_json(sys.argv[2]), [fd]); "
    "from rvm_export.runtimes.child import child_main; child_main(c)"
)
_DTYPES = {"<f4", "<f2", "<f8", "<i8", "<i4", "|u1", "|b1", "<u2", "|i1"}
_ENV_KEEP = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
)
_ENV_PREFIXES = ("RVM_", "OMP_", "MKL_", "OPENBLAS_", "KMP_", "TF_CPP_", "CUBLAS_", "NCCL_")
_CALLS = {  # the runner methods the parent may call by name, and the JSON shape of their answers
    "fixed_case", "fixed_ratio", "size_problem", "judged_precision", "contract_problems", "describe", "set_threads",
}  # fmt: skip


def interpreter() -> List[str]:
    """The command that starts a child's Python: this one (the emulated-core issue adds others here), with no
    current folder on its import path (``-P``)."""
    return [sys.executable, "-P"] if sys.version_info >= (3, 11) else [sys.executable]


def _how(code: Optional[int]) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        name = {signal.SIGXCPU: "SIGXCPU: its CPU-time limit", signal.SIGXFSZ: "SIGXFSZ: its file-size limit"}
        try:
            return f"crashed ({name.get(-code) or signal.Signals(-code).name})"
        except ValueError:
            return f"crashed (signal {-code})"
    return f"exited with code {code}"


def printable(text: str, limit: int = 200) -> str:
    """``text`` as one line of printable characters (a stranger's bytes must not forge lines or escapes)."""
    return "".join(c if c.isprintable() else " " for c in text.replace("\n", " "))[:limit].strip()


class _Shared:
    """Arrays in a file mapped by both processes: :meth:`put` writes them (growing the file), :meth:`get` reads
    what the other side put, by the layouts it sent (checked: known dtypes, inside the file)."""

    ALIGN = 64

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR)
        self.map: Optional[mmap.mmap] = None

    def _mapped(self, size: int, grow: bool) -> mmap.mmap:
        if self.map is None or len(self.map) < size:
            if grow and os.fstat(self.fd).st_size < size:
                os.ftruncate(self.fd, size)
            if self.map is not None:
                self.map.close()
            self.map = mmap.mmap(self.fd, max(os.fstat(self.fd).st_size, 1))
        return self.map

    def put(self, arrays: Sequence[np.ndarray]) -> list:
        arrays = [np.ascontiguousarray(a) for a in arrays]
        layouts, end = [], 0
        for array in arrays:
            layouts.append([array.dtype.str, list(array.shape), end])
            end += -(-array.nbytes // self.ALIGN) * self.ALIGN
        buffer = self._mapped(max(end, 1), grow=True)
        for array, (_, _, offset) in zip(arrays, layouts, strict=True):
            np.ndarray(array.shape, array.dtype, buffer=buffer, offset=offset)[...] = array
        return layouts

    def get(self, layouts: Any, copy: bool = True) -> List[np.ndarray]:
        if not isinstance(layouts, list):
            raise RunnerError("the runtime's child process answered arrays without layouts")
        checked = []
        for item in layouts:
            ok = isinstance(item, list) and len(item) == 3 and item[0] in _DTYPES and isinstance(item[1], list)
            ok = ok and all(isinstance(n, int) and 0 <= n < 1 << 40 for n in item[1]) and isinstance(item[2], int)
            if not ok or item[2] < 0:
                raise RunnerError("the runtime's child process answered a malformed array layout")
            checked.append((np.dtype(item[0]), tuple(item[1]), item[2]))
        ends = [offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize for dtype, shape, offset in checked]
        buffer = self._mapped(max(ends, default=1), grow=False)
        if max(ends, default=0) > len(buffer):
            raise RunnerError("the runtime's child process answered arrays beyond its shared buffer")
        views = [np.ndarray(shape, dtype, buffer=buffer, offset=offset) for dtype, shape, offset in checked]
        return [view.copy() for view in views] if copy else views

    def close(self) -> None:
        if self.map is not None:
            self.map.close()
            self.map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _send(sock: socket.socket, message: dict) -> None:
    data = json.dumps(message).encode("utf-8")
    sock.sendall(struct.pack(">I", len(data)) + data)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _recv(sock: socket.socket) -> dict:
    (size,) = struct.unpack(">I", _recv_exact(sock, 4))
    if size > MAX_MESSAGE:
        raise ValueError(f"a message of {size} bytes")
    message = json.loads(_recv_exact(sock, size).decode("utf-8"))
    if not isinstance(message, dict):
        raise ValueError("a message that is not a JSON object")
    return message


def _scratch_root() -> Optional[str]:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _module_dirs(*names: str) -> List[str]:
    import importlib.util

    found = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            found += list(spec.submodule_search_locations)
        elif spec is not None and spec.origin:
            found.append(spec.origin)
    return found


def base_policy(artifact: Path, scratch: str) -> Policy:
    """What every runtime's child may read and write: the artifact's folder, the Python installs and this
    package, the system's libraries, /sys and the child's own /proc entries; the scratch folder alone is writable. Not /etc beyond the loader's files, not $HOME, not /tmp."""
    folder = artifact if artifact.is_dir() else artifact.parent
    python = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    system = ["/usr", "/lib", "/lib64", "/lib32", "/opt", "/sys", "/etc/ld.so.cache", "/etc/ld.so.conf",
              "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives", "/dev/urandom", "/dev/random", "/dev/zero"]  # fmt: skip
    # /proc: the child's own entries (opened in the child, "self" is its own pid) and the machine's facts that
    # runtimes read for their thread pools; never another process's (its environ is readable to the same user).
    system += ["/proc/self", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/sys", "/proc/version"]
    return Policy(
        read=[str(folder.resolve()), *sorted(python), *_module_dirs("rvm_export", "model"), *system],
        write=[scratch, "/dev/null"],
        memory_bytes=_default_memory(),
    )


def _default_memory() -> int:
    """Three quarters of this machine's memory (RVM_SANDBOX_MEMORY_MB overrides; 0: no limit)."""
    configured = os.environ.get("RVM_SANDBOX_MEMORY_MB")
    if configured is not None:
        return int(configured) << 20
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 3 // 4
    except (ValueError, OSError):
        return 0


def _child_env(scratch: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP or k.startswith(_ENV_PREFIXES)}
    for name in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        env[name] = scratch
    env.setdefault("PATH", os.defpath)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the package folder is read-only to the child
    return env


class _State:
    """The parent's handle on a recurrent state that stays in the child."""

    __slots__ = ("child", "id")

    def __init__(self, child: "ChildProcess", ident: int) -> None:
        self.child, self.id = child, ident

    def __del__(self) -> None:
        self.child.released.append(self.id)


class ChildFailure(Exception):
    """The runtime raised in the child something other than a RunnerError (a broken artifact's own error)."""


class ChildProcess:
    """One runner in a confined child: :meth:`request` sends one message (and arrays), returns the answer."""

    def __init__(self, runtime: str, path: Path, target: dict, policy: Policy) -> None:
        self.runtime, self.path, self.frames, self.released = runtime, Path(path), 0, []
        self.folder = tempfile.mkdtemp(prefix="rvm-child-", dir=_scratch_root())
        scratch = os.path.join(self.folder, "scratch")
        os.mkdir(scratch)
        policy.write = [scratch if p == "<scratch>" else p for p in policy.write]
        policy.read.append(self.folder)
        files = [os.path.join(self.folder, name) for name in ("request", "reply")]
        for file in files:
            open(file, "wb").close()
        policy.write += files
        self._request, self._reply = _Shared(files[0]), _Shared(files[1])
        self._output = tempfile.TemporaryFile()
        ours, theirs = socket.socketpair()
        target = {**target, "fd": theirs.fileno(), "files": files}
        try:
            self._process = subprocess.Popen(
                [*interpreter(), "-c", _BOOT, SANDBOX_FILE, policy.to_json(), json.dumps(target)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=self._output, stderr=self._output,
                cwd=scratch, env=_child_env(scratch), start_new_session=True,
            )  # fmt: skip
        finally:
            theirs.close()
        self._sock = ours
        try:
            self.ready = self.request({"op": "hello"}, stage="loading")[0]
        except ChildFailure as exc:  # whatever the runtime raised while opening the file: it cannot be opened
            self.close()
            raise RunnerError(f"{runtime} could not open {printable(self.path.name)}: {exc}") from None
        except BaseException:
            self.close()
            raise

    def said(self) -> str:
        """The last line the runtime wrote before it died (glibc's ``free(): invalid pointer``, a runtime's own
        error, a Python exception: what came first is often an import's warning), printable characters only."""
        try:
            size = self._output.seek(0, os.SEEK_END)
            self._output.seek(max(size - (1 << 16), 0))
            text = self._output.read(1 << 16).decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        line = next((printable(line) for line in reversed(text.splitlines()) if printable(line)), "")
        return f" ({self.runtime} said: {line})" if line else ""

    def _died(self, stage: str) -> RunnerError:
        try:
            code = self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            code = None
        self._process.wait()
        return RunnerError(
            f"{self.runtime} {_how(code)} {stage} {printable(self.path.name)}{self.said()}: the file holds something "
            "the runtime trusts and the inspection does not read (docs/security.md); it is not a model rvm-export wrote"
        )

    def handle(self, ident: Any) -> "_State":
        """The parent's handle on the child's state ``ident`` (released in the child when dropped here)."""
        return _State(self, int(ident))

    def request(
        self, message: dict, arrays: Sequence[np.ndarray] = (), stage: str = "", timeout: Optional[float] = None
    ) -> Tuple[dict, List[np.ndarray]]:
        timeout = timeout or float(os.environ.get(TIMEOUT_ENV) or FRAME_TIMEOUT)
        message = {**message, "release": self.released[:]}
        del self.released[:]
        stage = stage or f"on frame {self.frames} of"
        try:
            if arrays:
                message["arrays"] = self._request.put(arrays)
            if message["op"] != "hello":
                _send(self._sock, message)
            self._sock.settimeout(timeout)
            answer = _recv(self._sock)
        except TimeoutError:
            self._process.kill()  # its namespace's init dies with it (PR_SET_PDEATHSIG), and all it started
            self._process.wait()
            raise RunnerError(
                f"{self.runtime} did not answer within {timeout:g} s {stage} {printable(self.path.name)}: killed "
                f"({TIMEOUT_ENV} sets the limit)"
            ) from None
        except (EOFError, OSError, ValueError, struct.error):
            raise self._died(stage) from None
        if "error" in answer:
            text = printable(str(answer["error"]), 1000)
            if answer.get("denied"):
                text = f"the sandbox denied {self.runtime} {stage} {printable(self.path.name)}: {text}"
            if answer.get("runner_error") or answer.get("denied"):
                option = answer.get("option")
                raise RunnerError(text, option if isinstance(option, str) else None)
            raise ChildFailure(text)
        return answer, self._reply.get(answer["arrays"]) if "arrays" in answer else []

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                _send(self._sock, {"op": "close", "release": []})
                self._process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._sock.close()
        self._output.close()
        self._request.close()
        self._reply.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _facts(data: Any) -> ArtifactFacts:
    if not isinstance(data, dict):
        raise RunnerError("the runtime's child process answered facts that are not an object")
    size = data.get("fixed_size")
    fixed = tuple(int(v) for v in size) if isinstance(size, list) and len(size) == 2 else None
    precision = data.get("precision")
    return ArtifactFacts(
        precision if isinstance(precision, str) else None,
        printable(str(data.get("evidence", "")), 400),
        fixed,  # type: ignore[arg-type]
        bool(data.get("ratio_input", True)),
    )


class ChildRunner(Runner):
    """The parent's side of a runner whose runtime runs in a confined child process (every runner's)."""

    def __init__(self, kind: str, entry: str, path: Path, device: Optional[str], backend: Optional[str],
                 policy: Policy, require_sandbox: bool = False, threads: Optional[int] = None) -> None:  # fmt: skip
        self.kind, self.path = kind, Path(path)
        # the child runs in its scratch folder: it opens the absolute path, and says the user's in its messages
        target = {"entry": entry, "path": str(Path(path).resolve()), "shown": str(path), "device": device}
        target |= {"backend": backend, "threads": threads}
        target["require_sandbox"] = require_sandbox
        self.child = ChildProcess(kind, self.path, target, policy)
        ready = self.child.ready
        self.confined, self.confinement = bool(ready.get("confined")), printable(str(ready.get("sandbox", "")), 300)
        meta = ready.get("metadata")
        self.metadata = ArtifactMetadata.from_json(meta) if isinstance(meta, str) else None
        self._facts = _facts(ready.get("facts"))
        self.wants_reference = bool(ready.get("wants_reference"))
        self.has_probe = bool(ready.get("probe"))

    @classmethod
    def read_metadata(cls, path: Path) -> Optional[ArtifactMetadata]:
        raise NotImplementedError("a ChildRunner's metadata comes from its child")

    def _call(self, name: str, *args: Any) -> Any:
        return self.child.request({"op": "call", "name": name, "args": list(args)}, stage=f"answering {name} for")[0][
            "value"
        ]

    def facts(self) -> ArtifactFacts:
        return self._facts

    def adopt_metadata(self, metadata: ArtifactMetadata) -> None:
        self.metadata = metadata
        self.child.request({"op": "adopt", "metadata": metadata.to_json()}, stage="adopting metadata for")

    def bind_reference(self, reference: Any) -> None:
        if not self.wants_reference:
            return
        from .recording import reference_message

        message, arrays = reference_message(reference)
        self.child.request({"op": "reference", **message}, arrays, stage="checking the weights of")

    def initial_state(self, batch: int) -> Any:
        answer, _ = self.child.request({"op": "initial_state", "batch": batch}, stage="preparing")
        return self.child.handle(answer["state"])

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        self.child.frames += 1
        if not isinstance(state, _State) or state.child is not self.child:
            raise RunnerError("a state that this runner's initial_state or infer did not return")
        message = {"op": "infer", "state": state.id, "ratio": float(downsample_ratio)}
        answer, arrays = self.child.request(message, [np.asarray(src, np.float32)])
        names = answer.get("names")
        if not isinstance(names, list) or len(names) != len(arrays):
            raise RunnerError("the runtime's child process answered outputs without their names")
        return dict(zip(map(str, names), arrays, strict=True)), self.child.handle(answer["state"])

    def fixed_case(self) -> Optional[Tuple[int, int, float]]:
        value = self._call("fixed_case")
        return None if value is None else (int(value[0]), int(value[1]), float(value[2]))

    def fixed_ratio(self) -> Optional[float]:
        value = self._call("fixed_ratio")
        return None if value is None else float(value)

    def size_problem(self, width: int, height: int) -> Optional[str]:
        value = self._call("size_problem", width, height)
        return None if value is None else printable(str(value), 600)

    def judged_precision(self) -> str:
        return str(self._call("judged_precision"))

    def contract_problems(self) -> List[str]:
        return [printable(str(p), 600) for p in self._call("contract_problems")]

    def describe(self) -> str:
        return printable(str(self._call("describe")), 300)

    def set_threads(self, threads: int) -> None:
        self._call("set_threads", int(threads))

    def probe(self) -> Any:
        if not self.has_probe:
            return None
        from .child_probe import ProbeProxy

        return ProbeProxy(self)

    def close(self) -> None:
        if getattr(self, "child", None) is not None:
            self.child.close()
            self.child = None  # type: ignore[assignment]


# ---- the child's side --------------------------------------------------------------------------------------------


def _denied(exc: BaseException) -> bool:
    """Whether ``exc`` is the kernel refusing an access (Landlock answers EACCES, EPERM for some calls)."""
    text = str(exc)
    return isinstance(exc, PermissionError) or "Permission denied" in text or "Operation not permitted" in text


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def _open(target: dict) -> Runner:
    from rvm_export.targets import load_entry

    cls = load_entry(target["entry"])
    if target.get("threads"):
        cls.pin_process_threads(int(target["threads"]))
    path, device = Path(target["path"]), target.get("device")
    if target.get("backend") is not None:
        return cls.on_device(path, device, target["backend"])
    return cls.on_device(path, device)


def _answer(runner: Runner, states: Dict[int, Any], message: dict, arrays: List[np.ndarray], reply: _Shared) -> dict:
    op = message.get("op")
    if op == "call":
        name = message.get("name")
        if name not in _CALLS:
            raise RunnerError(f"no runner call {name!r}")
        return {"value": _jsonable(getattr(runner, name)(*message.get("args", [])))}
    if op == "adopt":
        runner.adopt_metadata(ArtifactMetadata.from_json(message["metadata"]))
        return {}
    if op == "reference":
        from .recording import rebuilt_reference

        runner.bind_reference(rebuilt_reference(message, arrays))
        return {}
    if op == "initial_state":
        ident = max(states, default=0) + 1
        states[ident] = runner.initial_state(int(message["batch"]))
        return {"state": ident}
    if op == "infer":
        outputs, new_state = runner.infer(arrays[0], states[int(message["state"])], float(message["ratio"]))
        ident = max(states, default=0) + 1
        states[ident] = new_state
        names = list(outputs)
        return {"names": names, "state": ident, "arrays": reply.put([np.asarray(outputs[n]) for n in names])}
    if op == "probe":
        from .child_probe import serve_probe

        return serve_probe(runner, states, message, arrays, reply)
    raise RunnerError(f"no child operation {op!r}")


def _error(exc: BaseException, target: dict) -> dict:
    from rvm_export.contract.errors import RVMError, first_line

    if isinstance(exc, MemoryError):
        exc = RVMError(f"it ran out of its memory limit ({first_line(exc)}; RVM_SANDBOX_MEMORY_MB sets the limit)")
    if isinstance(exc, RVMError):
        text = first_line(exc, 1000)
    else:  # the runtime's own error: its type, and first and last lines (TorchScript puts the cause last)
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [""]
        text = f"{type(exc).__name__}: {lines[0] if len(lines) == 1 else f'{lines[0]} ... {lines[-1]}'}"[:1000]
    text = text.replace(target["path"], target["shown"])
    answer = {"error": text, "runner_error": isinstance(exc, RVMError), "denied": _denied(exc)}
    option = getattr(exc, "option", None)
    if isinstance(option, str):
        answer["option"] = option
    return answer


def child_main(confinement: Tuple[bool, str]) -> None:
    """The child's loop, after ``sandbox.confine``: open the runner, answer "hello", then one answer per message."""
    target = json.loads(sys.argv[3])
    sock = socket.socket(fileno=target["fd"])
    request_buffer, reply_buffer = (_Shared(path) for path in target["files"])
    confined, sandbox = confinement
    try:
        if target.get("require_sandbox") and not confined:
            raise RunnerError(f"the runtime cannot be confined here: {sandbox} (--require-sandbox)")
        runner = _open(target)
        meta = runner.metadata.to_json() if runner.metadata is not None else None
        facts = asdict(runner.facts())
        wants = type(runner).bind_reference is not Runner.bind_reference
        hello = {"metadata": meta, "facts": facts, "confined": confined, "sandbox": sandbox, "wants_reference": wants}
        hello["probe"] = type(runner).probe is not Runner.probe
    except Exception as exc:  # noqa: BLE001 (every error is the parent's one line)
        _send(sock, _error(exc, target))
        return
    _send(sock, hello)
    states: Dict[int, Any] = {}
    while True:
        try:
            message = _recv(sock)
        except (EOFError, OSError, ValueError):
            return
        if message.get("op") == "close":
            runner.close()
            return
        try:
            arrays = request_buffer.get(message["arrays"], copy=False) if "arrays" in message else []
            answer = _answer(runner, states, message, arrays, reply_buffer)
        except Exception as exc:  # noqa: BLE001
            answer = _error(exc, target)
        for ident in message.get("release", []):
            states.pop(ident, None)
        _send(sock, answer)


def confinement_note() -> str:
    """One line for a report's top where this machine cannot confine the runtime ("" where it can)."""
    ok, why = available()
    return "" if ok else f"the runtime is NOT confined on this machine ({why}); run untrusted artifacts elsewhere"


__all__ = ["ChildFailure", "ChildProcess", "ChildRunner", "base_policy", "confinement_note", "interpreter"]
