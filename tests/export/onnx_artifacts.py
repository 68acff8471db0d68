"""ONNX artifacts exported once per test session and shared by tests/export and tests/verify.

Exporting takes seconds, so each artifact is built on first use (functools.cache) into one
temporary folder that lives as long as the test process."""

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO.parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"
DOC = REPO.parent / "shared" / "seed" / "rvm_inference_doc_zh.md"
_WORK = Path(tempfile.mkdtemp(prefix="rvm-onnx-tests-"))
atexit.register(shutil.rmtree, _WORK, True)


@cache
def exported(
    precision: str = "fp32",
    opset: int = 12,
    static: Optional[Tuple[int, int]] = None,
    ratio: Optional[float] = None,
    resnet50: bool = False,
) -> Path:
    """The real MobileNetV3 weights exported with these options (read-only: copy before editing).

    ``resnet50``: a seeded ResNet50 with the deep guided filter instead (no real weights exist)."""
    from rvm_export.export.base import at_precision, load_source
    from rvm_export.export.onnx import export_onnx

    source = load_source(None, "resnet50", "deep_guided_filter") if resnet50 else load_source(WEIGHTS)
    options = {"opset": opset, "static": list(static) if static else None, "downsample_ratio": ratio}
    name = (
        f"rvm_{'resnet50' if resnet50 else 'mobilenetv3'}_{precision}_op{opset}"
        + (f"_{static[0]}x{static[1]}" if static else "")
        + ".onnx"
    )
    metadata = source.metadata("onnx", precision, **options)
    return export_onnx(at_precision(source.model, precision), _WORK / name, metadata, opset, static, ratio)
