"""Optional dependencies: which pip extra each command needs, and the one-line message when it is missing.

One table for the three commands: an ``rvm-export`` target, a runner kind (``rvm-verify``, and
``rvm-convert --artifact``) or ``rvm-convert`` itself. A new target or runner adds one row to :data:`NEEDS` (and, for a new extra, one to
:data:`EXTRA_MODULES` and to pyproject.toml).
"""

import importlib.util
from typing import Dict, Optional, Tuple

DISTRIBUTION = "rvm-export"

# extra (pyproject.toml [project.optional-dependencies]) -> the top-level modules it installs
EXTRA_MODULES: Dict[str, Tuple[str, ...]] = {
    "onnx": ("onnx", "onnxruntime", "onnxslim"),
    "video": ("av", "tqdm"),
    "coreml": ("coremltools",),
    "tensorflow": ("tensorflow", "tf_keras"),
    "tfjs": ("tensorflow",),
    "plot": ("matplotlib",),
    "pt2": (),  # torch.export: torch alone
    "openvino": ("openvino", "onnx", "onnxslim"),
    "tflite": ("tensorflow", "ai_edge_litert"),
}

# (command, target or runner kind) -> the extra it needs; None: nothing beyond the base install
NEEDS: Dict[Tuple[str, str], Optional[str]] = {
    ("rvm-export", "torchscript"): None,
    ("rvm-export", "onnx"): "onnx",
    ("rvm-export", "coreml"): "coreml",
    ("rvm-export", "tensorflow"): "tensorflow",
    ("rvm-export", "tfjs"): "tfjs",
    ("rvm-export", "pt2"): None,
    ("rvm-export", "openvino"): "openvino",
    ("rvm-export", "tflite"): "tflite",
    ("runner", "torchscript"): None,
    ("runner", "onnx"): "onnx",
    ("runner", "coreml"): "coreml",
    ("runner", "tensorflow"): "tensorflow",
    ("runner", "tfjs"): None,  # runs in Node.js: see verify/runners/tfjs.py for its npm packages
    ("runner", "pt2"): None,
    ("runner", "openvino"): "openvino",
    ("runner", "tflite"): "tflite",
    ("rvm-convert", ""): "video",
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # an import hook refusing it, or a half-removed package
        return False


def message(command: str, what: str, extra: str, module: Optional[str] = None) -> str:
    """'rvm-export tensorflow needs the tensorflow extra: pip install 'rvm-export[tensorflow]''."""
    missing = f" (no module named {module!r})" if module else ""
    subject = f"running {what} artifacts" if command == "runner" else f"{command} {what}".strip()
    return f"{subject} needs the {extra} extra{missing}: pip install '{DISTRIBUTION}[{extra}]'"


def require(command: str, what: str = "") -> None:
    """Raise MissingExtraError unless every module of the extra ``command what`` needs is importable."""
    extra = NEEDS.get((command, what))
    for module in EXTRA_MODULES.get(extra or "", ()):
        if not _installed(module):
            raise MissingExtraError(message(command, what, extra, module))  # type: ignore[arg-type]


def explain(command: str, what: str, exc: ImportError) -> Optional[str]:
    """The one-line message for ``exc`` if it is a module of one of our extras, else None (a real bug).

    Prefers the extra ``command what`` is listed with (``tensorflow`` is in two extras)."""
    if isinstance(exc, MissingExtraError):
        return str(exc)
    top = (exc.name or "").split(".")[0]
    own = NEEDS.get((command, what))
    candidates = ([own] if own else []) + list(EXTRA_MODULES)
    extra = next((e for e in candidates if top in EXTRA_MODULES[e]), None)
    return None if extra is None else message(command, what, extra, top)


__all__ = ["EXTRA_MODULES", "NEEDS", "MissingExtraError", "explain", "require"]
