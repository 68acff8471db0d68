"""The runtime layer: :func:`open_runner` finds the target of an artifact on disk (the registry in
``rvm_export/targets.py`` decides) and imports its runner lazily, so verifying an ONNX file never
imports TensorFlow. Verification, rvm-bench and convert_video all open artifacts here."""

import importlib
from pathlib import Path
from typing import Optional

from rvm_export.contract import extras
from rvm_export.targets import TARGETS, UnknownArtifactError, target_of

from .base import Outputs, Runner, RunnerError


def artifact_kind(path: str | Path) -> str:
    """The target whose artifact ``path`` is (its name and, for folders, its contents; the registry decides)."""
    path = Path(path)
    if not path.exists():
        raise RunnerError(f"artifact not found: {path}")
    try:
        return target_of(path).name
    except UnknownArtifactError as exc:
        raise RunnerError(str(exc))


TFJS_BACKENDS = ("node", "webgl", "webgl-f16", "wasm", "cpu")  # node: Node.js, WebAssembly; the rest: Chromium


def open_runner(path: str | Path, device: Optional[str] = None, tfjs_backend: Optional[str] = None) -> Runner:
    """The runner for the artifact at ``path``, on ``device`` ("cpu", "cuda"; None: the runner's default).
    ``tfjs_backend`` picks where a TF.js artifact runs: in Node.js (None, "node") or in headless
    Chromium on one of TF.js's browser backends."""
    kind = artifact_kind(path)
    if tfjs_backend is not None:
        if kind != "tfjs":
            raise RunnerError(
                f"a TF.js backend applies to TF.js artifacts only; {path} is a {kind} artifact", "tfjs_backend"
            )
        if tfjs_backend not in TFJS_BACKENDS:
            raise RunnerError(f"unknown TF.js backend {tfjs_backend!r}; choose one of {', '.join(TFJS_BACKENDS)}")
        if tfjs_backend != "node":
            from .tfjs_browser import BrowserTfjsRunner

            return BrowserTfjsRunner.on_device(Path(path), device, tfjs_backend)
    module_name, class_name = TARGETS[kind].runner.split(":")
    try:
        extras.require("runner", kind)  # also the modules a runner imports only later
        module = importlib.import_module(module_name)
    except ImportError as exc:
        text = extras.explain("runner", kind, exc)
        if text is None:
            raise
        raise RunnerError(text)
    return getattr(module, class_name).on_device(Path(path), device)


__all__ = ["TFJS_BACKENDS", "Outputs", "Runner", "RunnerError", "artifact_kind", "open_runner"]
