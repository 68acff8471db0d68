"""MNN target: ``rvm.mnn``, converted by MNN's converter from this project's dynamic ONNX export.

Route: the ONNX export (dynamic batch and frame size, the runtime ``downsample_ratio`` input, the refiner in an
``If`` skipped at ratio 1) goes through MNN's ONNX frontend unchanged: MNN keeps the ONNX names, the ``If`` (as
two subgraphs) and the ratio input, and its Module API re-plans shapes when an input's shape changes.

SECURITY: the converter runs in a subprocess through the compiled entry point ``_tools.mnnconvert`` of the mnn
wheel. Never ``import MNN.tools`` (or ``MNN.tools.mnnconvert``) and never run the ``mnnconvert`` console script:
importing ``MNN.tools`` imports ``MNN.tools.utils.log``, which runs ``os.system("pip install -U
aliyun-log-python-sdk")`` when that package is missing and then posts each conversion's statistics to a remote
endpoint (mnn 3.6.1; docs/mnn.md, docs/security.md). ``_tools`` is the C++ converter alone.

Metadata: the converter's ``--bizCode`` (a string field of MNN's ``Net`` flatbuffer, which
``Module.get_info()["bizCode"]`` returns) holds the metadata document as compact JSON.

Precision: fp32 weights only. The converter's ``--fp16`` weight storage was measured and fails the fp16 gate
(alpha off by up to 0.15, fgr 16.6x the fp16 noise floor: docs/mnn.md), so it is not offered. What MNN computes in
is the app's ``precision`` setting: Normal and High compute fp32 on a CPU; Low computes fp16 on ARMv8.2 CPUs, with
no per-op opt-out, the guided filter included (docs/mnn.md).
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

import click

from model import MattingNetwork
from rvm_export.contract import ArtifactMetadata
from rvm_export.contract.errors import first_line

from .base import ExportError, ModelSource, atomic_output
from .cli import export_with, output_option, source_options
from .onnx import DEFAULT_OPSET, export_onnx
from .reproducible import stable_mnn_uuid

SUFFIX = ".mnn"
CONVERT_TIMEOUT = 600
# The converter's C++ entry point, not MNN.tools' Python wrapper (see the module docstring): returns True on success.
CONVERTER = "import sys, _tools; sys.exit(0 if _tools.mnnconvert(['mnnconvert'] + sys.argv[1:]) else 1)"


def convert(onnx_path: Path, output: Path, biz_code: str) -> None:
    """MNN's converter on ``onnx_path`` in a subprocess, writing ``output`` (fp32 weights)."""
    command = [sys.executable, "-c", CONVERTER, "-f", "ONNX", "--modelFile", str(onnx_path)]
    command += ["--MNNModel", str(output), "--bizCode", biz_code]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExportError(f"MNN's converter failed: {first_line(exc)}")
    if done.returncode != 0 or not output.is_file() or output.stat().st_size == 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise ExportError(f"MNN's converter failed: {(lines[-1] if lines else f'exit {done.returncode}')[:300]}")


def export_mnn(model: MattingNetwork, output: str | Path, metadata: ArtifactMetadata) -> Path:
    """Export ``model`` (fp32) to ONNX, convert it to MNN at ``output``, atomically."""
    output = Path(output)
    if output.suffix != SUFFIX:
        raise ExportError(f"the output {output} must end in {SUFFIX}", "output")
    with tempfile.TemporaryDirectory() as work:
        onnx_path = Path(work) / "rvm.onnx"
        export_onnx(model.float(), onnx_path, metadata, DEFAULT_OPSET)
        biz_code = json.dumps(json.loads(metadata.to_json()), separators=(",", ":"), sort_keys=True)
        with atomic_output(output) as tmp:
            convert(onnx_path, tmp, biz_code)
            tmp.write_bytes(stable_mnn_uuid(tmp.read_bytes()))  # the converter writes a random UUID
    return output


@click.command("mnn")
@source_options
@output_option
def command(source: ModelSource, output: Optional[str]) -> None:
    """MNN model (.mnn) from the ONNX export: dynamic B/H/W, runtime downsample_ratio, fp32 weights."""
    export_with(
        source,
        "mnn",
        output,
        lambda out, meta: export_mnn(source.model, out, meta),
        "fp32",
        {},
        {"opset": DEFAULT_OPSET, "weights": "fp32"},
    )


__all__ = ["command", "export_mnn"]
