"""OpenVINO IR target (``.xml`` + ``.bin``), converted from this project's dynamic ONNX export.

Why from the ONNX export and not from the PyTorch model: the ONNX graph already carries the
contract in a form OpenVINO's ONNX frontend maps one to one, and it is verified on its own:
the runtime ratio drives ``Resize(scales=[1,1,r,r])`` (PyTorch's ``recompute_scale_factor=False``
sampling) and the refiner sits in an ``If`` that skips it at ratio exactly 1. OpenVINO's PyTorch
frontend would trace the model (the ratio and the ``if`` baked in) or need the ``.pt2`` program,
which runs the refiner at ratio 1 too (see :mod:`export.pt2`).

fp16 stores the network's weights as fp16 in the ``.bin`` (decompressed at load); inputs, outputs,
the state and the guided-filter refiner stay fp32 (as :func:`model.half_precision` keeps it). Not
``save_model(compress_to_fp16=True)``: that also rounds the refiner's box-filter constants (1/3)
inside the ``If``, and the fast guided filter's ``var = box(x*x) - box(x)**2`` cancels badly on
them: measured with the real weights, alpha moved by up to 0.215 (over the fp16 bound) against
2.3e-2 with the refiner kept fp32. OpenVINO's per-node opt-out is not in its Python API, hence
:func:`compress_weights`. The precision the CPU
computes in is a runtime setting (``INFERENCE_PRECISION_HINT``), recorded in the metadata as
``options.inference_precision`` ("f32"): OpenVINO's CPU default on AVX-512-BF16/AMX CPUs is bf16,
which moves alpha far beyond fp32 parity (see docs/openvino.md).
"""

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import click
import numpy as np

from model import MattingNetwork
from rvm_export.contract import METADATA_KEY, ArtifactMetadata

from .base import PRECISIONS, ExportError, ModelSource, atomic_output
from .cli import export_with, output_option, source_options
from .onnx import DEFAULT_OPSET, export_onnx

if TYPE_CHECKING:
    import openvino

SUFFIX = ".xml"
INFERENCE_PRECISION = "f32"
MIN_COMPRESSED = 64  # constants with fewer elements (scales, eps, shapes) stay fp32  # the CPU compute precision both artifacts are verified at


def compress_weights(model: "openvino.Model", min_elements: int = MIN_COMPRESSED) -> int:
    """Store the main graph's fp32 weight constants as fp16 + Convert (the pattern OpenVINO's own
    compression writes and its plugins decompress); constants inside the refiner's ``If`` and small
    ones (scales, eps) stay fp32. Returns how many were compressed."""
    import openvino as ov
    import openvino.opset13 as ops

    count = 0
    for op in model.get_ordered_ops():  # the top-level graph only: the If's bodies are not visited
        if op.get_type_name() != "Constant" or op.get_output_element_type(0) != ov.Type.f32:
            continue
        data = op.get_data()
        if data.size < min_elements:
            continue
        decompressed = ops.convert(ops.constant(data.astype(np.float16)), ov.Type.f32)
        for target in list(op.output(0).get_target_inputs()):
            target.replace_source_output(decompressed.output(0))
        count += 1
    return count


def export_openvino(
    model: MattingNetwork, output: str | Path, metadata: ArtifactMetadata, compress_to_fp16: bool
) -> Path:
    """Convert the fp32 ``model`` via ONNX to IR at ``output`` (.xml, with its .bin beside it), atomically."""
    import openvino as ov

    output = Path(output)
    if output.suffix != SUFFIX:
        raise ExportError(
            f"the output {output} must end in {SUFFIX} (OpenVINO writes the weights beside it as .bin)", "output"
        )
    with tempfile.TemporaryDirectory() as work:
        onnx_path = Path(work) / "rvm.onnx"
        export_onnx(model.float(), onnx_path, metadata, DEFAULT_OPSET)
        converted = ov.convert_model(str(onnx_path))
    if compress_to_fp16:
        compress_weights(converted)
    converted.set_rt_info(metadata.to_json(), [METADATA_KEY])
    weights = output.with_suffix(".bin")
    with atomic_output(output) as tmp:
        tmp_bin = tmp.with_suffix(".bin")  # OpenVINO finds the weights by the .xml's name
        try:
            ov.save_model(converted, str(tmp), compress_to_fp16=False)
            os.replace(tmp_bin, weights)  # the .xml, moved last, marks the artifact finished
        finally:
            tmp_bin.unlink(missing_ok=True)
    return output


@click.command("openvino")
@source_options
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="fp32",
    show_default=True,
    help="fp16: weights compressed to fp16 in the .bin (computation as set at run time; f32 verified).",
)
@output_option
def command(source: ModelSource, precision: str, output: Optional[str]) -> None:
    """OpenVINO IR (.xml + .bin) with dynamic shapes and a runtime downsample_ratio."""
    export_with(
        source,
        "openvino",
        output,
        lambda out, meta: export_openvino(source.model, out, meta, compress_to_fp16=precision == "fp16"),
        precision,
        {"precision": precision},
        {"inference_precision": INFERENCE_PRECISION},
    )
