"""The runtime layer: :func:`open_runner` finds the target of an artifact on disk (the registry in
``rvm_export/targets.py`` decides) and imports its runner lazily, so verifying an ONNX file never
imports TensorFlow. Verification, rvm-bench and convert_video all open artifacts here, and every artifact is
inspected as data first (``inspection.py``): what would run code or reach outside its folder is refused before
anything of it is loaded. Then the runtime opens it in a confined child process (``child.py``, ``sandbox.py``): the
second line, for what the inspection cannot see."""

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Iterator, Optional, Type

from rvm_export import extras
from rvm_export.targets import TARGETS, UnknownArtifactError, load_entry, target_of

from .base import Outputs, Runner, RunnerError
from .child import ChildRunner, base_policy, confinement_note
from .inspection import inspect_artifact
from .sandbox import available

REQUIRE_SANDBOX_ENV = "RVM_REQUIRE_SANDBOX"  # "1": as --require-sandbox (CI's own runs set it)


def artifact_kind(path: str | Path) -> str:
    """The target whose artifact ``path`` is (its name and, for folders, its contents; the registry decides)."""
    path = Path(path)
    if not path.exists():
        raise RunnerError(f"artifact not found: {path}")
    try:
        return target_of(path).name
    except UnknownArtifactError as exc:
        raise RunnerError(str(exc))


def runner_class(kind: str, entry: Optional[str] = None) -> Type[Runner]:
    """The runner class of ``kind``'s artifacts (or ``entry``), imported; a missing extra is one RunnerError line."""
    try:
        extras.require("runner", kind)  # also the modules a runner imports only later
        return load_entry(entry or TARGETS[kind].runner)
    except ImportError as exc:
        text = extras.explain("runner", kind, exc)
        if text is None:
            raise
        raise RunnerError(text)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """File descriptors 1 and 2 (what C++ libraries and Python warnings print) sent to /dev/null for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def sandbox_required(require: bool = False) -> bool:
    return require or os.environ.get(REQUIRE_SANDBOX_ENV, "") not in ("", "0")


def open_runner(
    path: str | Path,
    device: Optional[str] = None,
    backend: Optional[str] = None,
    require_sandbox: bool = False,
    threads: Optional[int] = None,
) -> Runner:
    """The runner for the artifact at ``path``, on ``device`` ("cpu", "cuda"; None: the runner's default).
    ``backend`` picks one of the target's runtime backends (a TF.js artifact: Node.js, the default, or
    one of TF.js's browser backends in headless Chromium). The runtime runs in a confined child process;
    ``require_sandbox`` (or RVM_REQUIRE_SANDBOX=1) refuses to run it where it cannot be confined.
    ``threads``: the runtime's thread count, fixed before it opens (rvm-bench)."""
    kind = artifact_kind(path)
    spec = TARGETS[kind]
    entry = spec.runner
    if backend is not None:
        if not spec.backends:
            offered = ", ".join(t.title for t in TARGETS.values() if t.backends)
            raise RunnerError(
                f"a runtime backend applies to {offered} artifacts only; {path} is a {kind} artifact", "tfjs_backend"
            )
        if backend not in spec.backends:
            raise RunnerError(f"unknown {spec.title} backend {backend!r}; choose one of {', '.join(spec.backends)}")
        if backend != spec.backends[0]:
            entry = spec.backend_runner or entry
    with quiet():  # the runtimes' import-time chatter (absl, oneDNN, coremltools) is not the command's output
        runner = runner_class(kind, entry)  # the runtime's extra is checked first: inspection reads with its parsers
    require = sandbox_required(require_sandbox)
    confinable, why = available()
    if require and not confinable:
        raise RunnerError(
            f"{path} cannot be run confined here: {why}; run it on Linux with Landlock", "require_sandbox"
        )
    with quiet():
        inspect_artifact(Path(path), kind)  # nothing of a stranger's file runs before its checks pass
    policy = base_policy(Path(path).resolve(), "<scratch>")
    runner.sandbox_needs(policy, Path(path), device, backend)
    chosen = backend if entry != spec.runner else None
    return ChildRunner(kind, entry, Path(path), device, chosen, policy, require, threads)


__all__ = [
    "Outputs",
    "Runner",
    "RunnerError",
    "artifact_kind",
    "confinement_note",
    "open_runner",
    "runner_class",
    "sandbox_required",
]
