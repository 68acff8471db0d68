"""A native runtime's model in a child process of its own, for the runtimes whose C++ trusts what the file says
beyond what rvm-export's inspection reads (ncnn's layer parameters, MNN's op parameter tables: docs/security.md).

A forged parameter there can make the runtime corrupt its heap or read out of bounds: in this process that would
end ``rvm-verify`` with a signal and no line at all, so the model is loaded and stepped in a child, and the
child's death is one :class:`RunnerError` naming the signal and the stage (loading, or frame N). The inspection
still runs first, in this process, before the child ever opens the file.

The child is started with ``spawn`` (never ``fork``: the parent may hold PyTorch's and other runtimes' threads)
and imports only the runner module that serves it. Frames and states cross a pipe as numpy arrays (pickled by
``multiprocessing``; about 2 GB/s here, so a 1920x1080 frame and its outputs add ~25 ms: measured in docs/ncnn.md).

The serving function is the runner module's own: ``serve(conn, *args)`` loads the model from ``args``, answers
``("ready", description)`` or ``("error", message)``, then answers each request (a tuple of arrays) with
``("ok", arrays)`` or ``("error", message)`` until it receives ``None``. Written on the standard library's
``multiprocessing`` (a Process and a Pipe): one long-lived, stateful model per child is all it needs, and a
process pool (concurrent.futures, loky) would hide which call the child died in.
"""

import multiprocessing
import signal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .base import RunnerError

LOAD_TIMEOUT = 600  # seconds; a child that neither answers nor dies is killed and reported
FRAME_TIMEOUT = 600


def _signal_name(code: int | None) -> str:
    if code is None:
        return "did not answer"
    if code < 0:
        try:
            return f"crashed ({signal.Signals(-code).name})"
        except ValueError:
            return f"crashed (signal {-code})"
    return f"exited with code {code}"


class IsolatedModel:
    """``serve(conn, *args)`` running in a child process; :meth:`run` sends it one request and returns its answer."""

    def __init__(self, runtime: str, path: Path, serve: Callable[..., None], *args: Any) -> None:
        self.runtime, self.path, self.frames = runtime, Path(path), 0
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child, *args), daemon=True, name=f"rvm-{runtime}")
        self._process.start()
        child.close()
        status, answer = self._receive("loading it", LOAD_TIMEOUT)
        if status != "ready":
            self.close()
            raise RunnerError(str(answer))
        self.description = str(answer)

    def _receive(self, stage: str, timeout: float) -> tuple:
        try:
            if not self._conn.poll(timeout):
                raise EOFError
            reply = self._conn.recv()
        except (EOFError, OSError):
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
            how = _signal_name(self._process.exitcode)
            raise RunnerError(
                f"{self.runtime} {how} {stage} {self.path.name}: the file holds something the runtime trusts and "
                "the inspection does not read (docs/security.md); it is not a model rvm-export wrote"
            ) from None
        if not (isinstance(reply, tuple) and len(reply) == 2):
            raise RunnerError(f"the {self.runtime} child process answered {type(reply).__name__}, not a reply")
        return reply

    def run(self, arrays: Sequence[np.ndarray]) -> list:
        """The child's answer to ``arrays`` (its outputs); RunnerError with the child's message, or its death."""
        self.frames += 1
        try:
            self._conn.send(tuple(arrays))
        except (BrokenPipeError, OSError):
            pass  # the child is gone: _receive names how
        status, answer = self._receive(f"on frame {self.frames} of", FRAME_TIMEOUT)
        if status != "ok":
            raise RunnerError(str(answer))
        return list(answer)

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
        self._conn.close()


def serve_loop(conn: Connection, load: Callable[[], Any], step: Callable[[Any, tuple], list]) -> None:
    """The child's side: ``load()`` the model (its RunnerError is the answer), then ``step(model, request)``."""
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
            conn.send(("ok", step(model, request)))
        except RunnerError as exc:
            conn.send(("error", str(exc)))


__all__ = ["IsolatedModel", "serve_loop"]
