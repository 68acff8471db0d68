"""A native runtime's model in a child process of its own, for the runtimes whose C++ trusts what the file says
beyond what rvm-export's inspection reads (ncnn's layer parameters, MNN's op parameter tables: docs/security.md).

A forged parameter there can make the runtime corrupt its heap or read out of bounds: in this process that would
end ``rvm-verify`` with a signal and no line at all, so the model is loaded and stepped in a child, and the
child's death is one :class:`RunnerError` naming the signal and the stage (loading, or frame N). The inspection
still runs first, in this process, before the child ever opens the file.

The child is a fresh interpreter (``python -c``, never ``fork``: the parent may hold PyTorch's and other
runtimes' threads, and never ``multiprocessing``'s spawn, which re-imports the caller's ``__main__`` script) that
imports only the runner module serving it (torch-free); it talks over a socket pair, with its stderr kept in a
file whose first line (glibc's ``free(): invalid pointer``) the error quotes. Arrays cross through two files in
shared memory (``/dev/shm`` where there is one), one each way, that the writer grows as needed; the socket carries
only their dtypes, shapes and offsets (a 1920x1080 frame and its outputs: ~10 ms instead of ~280 ms pickled).

The serving function is the runner module's own: ``serve(conn, *args)`` loads the model from ``args``, answers
``("ready", description)`` or ``("error", message)``, then answers each request (a tuple of arrays) with
``("ok", arrays)`` or ``("error", message)`` until it receives ``None``. Written on the standard library's
``multiprocessing`` (a Process and a Pipe): one long-lived, stateful model per child is all it needs, and a
process pool (concurrent.futures, loky) would hide which call the child died in.
"""

import importlib
import json
import mmap
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .base import RunnerError

LOAD_TIMEOUT = 600  # seconds; a child that neither answers nor dies is killed and reported
FRAME_TIMEOUT = 600
_CHILD = "from rvm_export.runtimes.isolated import child_main; child_main()"
_FILES: list = []  # in the child: the request and reply buffers the parent made


def _how(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            return f"crashed ({signal.Signals(-code).name})"
        except ValueError:
            return f"crashed (signal {-code})"
    return f"exited with code {code}"


class _Shared:
    """Arrays in a file mapped by both processes: :meth:`put` writes them (growing the file), :meth:`get` copies
    them out of what the other side put, by the layouts it sent."""

    ALIGN = 64

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR)
        self.map: mmap.mmap | None = None

    def _mapped(self, size: int, grow: bool) -> mmap.mmap:
        if self.map is None or len(self.map) < size:
            if grow and os.fstat(self.fd).st_size < size:
                os.ftruncate(self.fd, size)
            if self.map is not None:
                self.map.close()
            self.map = mmap.mmap(self.fd, os.fstat(self.fd).st_size)
        return self.map

    def put(self, arrays: Sequence[np.ndarray]) -> list:
        layouts, end = [], 0
        for array in arrays:
            array = np.asarray(array)
            layouts.append((array.dtype.str, array.shape, end))
            end += -(-array.nbytes // self.ALIGN) * self.ALIGN
        buffer = self._mapped(max(end, 1), grow=True)
        for array, (dtype, shape, offset) in zip(arrays, layouts, strict=True):
            view = np.ndarray(shape, dtype, buffer=buffer, offset=offset)
            view[...] = array
        return layouts

    def get(self, layouts: list, copy: bool = True) -> list:
        if not isinstance(layouts, list) or not all(isinstance(x, tuple) and len(x) == 3 for x in layouts):
            raise RunnerError("the runtime's child process answered something that is not a list of array layouts")
        ends = [offset + int(np.prod(shape)) * np.dtype(dtype).itemsize for dtype, shape, offset in layouts]
        buffer = self._mapped(max(ends, default=1), grow=False)
        if max(ends, default=0) > len(buffer):
            raise RunnerError("the runtime's child process answered arrays beyond its shared buffer")
        views = [np.ndarray(shape, dtype, buffer=buffer, offset=offset) for dtype, shape, offset in layouts]
        return [view.copy() for view in views] if copy else views

    def close(self) -> None:
        if self.map is not None:
            self.map.close()
            self.map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _shared_folder() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


class IsolatedModel:
    """``module:function`` (``serve(conn, *args)``) in a child process; :meth:`run` sends one request."""

    def __init__(self, runtime: str, path: Path, serve: str, *args: Any) -> None:
        self.runtime, self.path, self.frames = runtime, Path(path), 0
        ours, theirs = socket.socketpair()
        self._stderr = tempfile.TemporaryFile()
        self._folder = tempfile.mkdtemp(prefix="rvm-child-", dir=_shared_folder())
        files = [os.path.join(self._folder, name) for name in ("request", "reply")]
        for file in files:
            open(file, "wb").close()
        self._request, self._reply = _Shared(files[0]), _Shared(files[1])
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, serve, str(theirs.fileno()), json.dumps([files, *args])],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr,
            )  # fmt: skip
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        try:
            status, answer = self._receive("loading", LOAD_TIMEOUT)
            if status != "ready":
                raise RunnerError(str(answer))
        except BaseException:
            self.close()
            raise
        self.description = str(answer)

    def _said(self) -> str:
        try:
            self._stderr.seek(0)
            lines = [line.strip() for line in self._stderr.read(1 << 16).decode("utf-8", "replace").splitlines()]
        except (OSError, ValueError):
            return ""
        said = next((line for line in lines if line), "")
        return f" ({self.runtime} said: {said[:200]})" if said else ""

    def _receive(self, stage: str, timeout: float) -> tuple:
        try:
            if not self._conn.poll(timeout):
                raise EOFError
            reply = self._conn.recv()
        except (EOFError, OSError):
            try:
                code = self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                code = None
            self._process.wait()
            raise RunnerError(
                f"{self.runtime} {_how(code)} {stage} {self.path.name}{self._said()}: the file holds something "
                "the runtime trusts and the inspection does not read (docs/security.md); it is not a model "
                "rvm-export wrote"
            ) from None
        if not (isinstance(reply, tuple) and len(reply) == 2):
            raise RunnerError(f"the {self.runtime} child process answered {type(reply).__name__}, not a reply")
        return reply

    def run(self, arrays: Sequence[np.ndarray]) -> list:
        """The child's answer to ``arrays`` (its outputs); RunnerError with the child's message, or its death."""
        self.frames += 1
        try:
            self._conn.send(self._request.put(arrays))
        except OSError:
            pass  # the child is gone: _receive names how
        status, answer = self._receive(f"on frame {self.frames} of", FRAME_TIMEOUT)
        if status != "ok":
            raise RunnerError(str(answer))
        return self._reply.get(answer)

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self._conn.send(None)
                self._process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._conn.close()
        self._stderr.close()
        self._request.close()
        self._reply.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def serve_loop(conn: Connection, load: Callable[[], tuple], step: Callable[[Any, tuple], list]) -> None:
    """The child's side: ``load()`` -> (model, description), then ``step(model, request)`` per request; a
    RunnerError either raises is the answer (its message becomes the parent's RunnerError)."""
    request_buffer, reply_buffer = (_Shared(path) for path in _FILES)
    try:
        model, description = load()
    except RunnerError as exc:
        conn.send(("error", str(exc)))
        return
    conn.send(("ready", description))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        try:
            outputs = step(model, tuple(request_buffer.get(request, copy=False)))  # read before the next
            conn.send(("ok", reply_buffer.put(outputs)))
        except RunnerError as exc:
            conn.send(("error", str(exc)))


def child_main() -> None:
    """``python -c`` entry of the child: ``module:function FD JSON-ARGS``."""
    global _FILES
    serve, fd, (files, *args) = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    _FILES = files
    module, _, function = serve.partition(":")
    getattr(importlib.import_module(module), function)(Connection(fd), *args)


__all__ = ["IsolatedModel", "child_main", "serve_loop"]
