"""Runner registry: artifact kind detected from the path, runner module imported lazily
(so verifying an ONNX file never imports TensorFlow)."""

import importlib
from pathlib import Path
from typing import Optional

from rvm_export.contract import extras

from .base import Outputs, Runner, RunnerError

# kind -> "module:Class"
RUNNERS = {
    "torchscript": "rvm_export.runtimes.torch_runner:TorchScriptRunner",
    "tensorflow": "rvm_export.runtimes.tensorflow:TensorFlowRunner",
    "tfjs": "rvm_export.runtimes.tfjs:TfjsRunner",
    "coreml": "rvm_export.runtimes.coreml:CoreMLRunner",
    "onnx": "rvm_export.runtimes.onnxruntime:OnnxRuntimeRunner",
    "pt2": "rvm_export.runtimes.torch_export:TorchExportRunner",
    "openvino": "rvm_export.runtimes.openvino:OpenVinoRunner",
    "tflite": "rvm_export.runtimes.litert:LiteRtRunner",
}

SUFFIX_KINDS = {
    ".torchscript": "torchscript",
    ".pt": "torchscript",
    ".ts": "torchscript",
    ".onnx": "onnx",
    ".mlmodel": "coreml",
    ".mlpackage": "coreml",
    ".pt2": "pt2",
    ".xml": "openvino",
    ".tflite": "tflite",
}


def artifact_kind(path: str | Path) -> str:
    """The artifact kind of ``path``, from its name and (for folders) its contents."""
    path = Path(path)
    if not path.exists():
        raise RunnerError(f"artifact not found: {path}")
    if path.is_dir() and (path / "saved_model.pb").exists():
        return "tensorflow"
    if path.name == "model.json" or (path.is_dir() and (path / "model.json").exists()):
        return "tfjs"
    if path.suffix in SUFFIX_KINDS:
        return SUFFIX_KINDS[path.suffix]
    raise RunnerError(
        f"cannot tell what kind of artifact {path} is; expected one of {', '.join(sorted(SUFFIX_KINDS))}, "
        "a SavedModel folder or a TF.js model.json"
    )


TFJS_BACKENDS = ("node", "webgl", "webgl-f16", "wasm", "cpu")  # node: Node.js, WebAssembly; the rest: Chromium


def open_runner(path: str | Path, device: Optional[str] = None, tfjs_backend: Optional[str] = None) -> Runner:
    """The runner for the artifact at ``path``, on ``device`` ("cpu", "cuda"; None: the runner's default).
    ``tfjs_backend`` picks where a TF.js artifact runs: in Node.js (None, "node") or in headless
    Chromium on one of TF.js's browser backends."""
    kind = artifact_kind(path)
    if tfjs_backend is not None:
        if kind != "tfjs":
            raise RunnerError(f"--tfjs-backend applies to TF.js artifacts only; {path} is a {kind} artifact")
        if tfjs_backend not in TFJS_BACKENDS:
            raise RunnerError(f"unknown TF.js backend {tfjs_backend!r}; choose one of {', '.join(TFJS_BACKENDS)}")
        if tfjs_backend != "node":
            from .tfjs_browser import BrowserTfjsRunner

            return BrowserTfjsRunner.on_device(Path(path), device, tfjs_backend)
    if kind not in RUNNERS:
        raise RunnerError(f"no runner for {kind} artifacts is installed in this version")
    module_name, class_name = RUNNERS[kind].split(":")
    try:
        extras.require("runner", kind)  # also the modules a runner imports only later
        module = importlib.import_module(module_name)
    except ImportError as exc:
        text = extras.explain("runner", kind, exc)
        if text is None:
            raise
        raise RunnerError(text)
    return getattr(module, class_name).on_device(Path(path), device)


__all__ = ["RUNNERS", "TFJS_BACKENDS", "Outputs", "Runner", "RunnerError", "artifact_kind", "open_runner"]
