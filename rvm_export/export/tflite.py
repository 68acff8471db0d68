"""LiteRT (TFLite) target: a ``.tflite`` flatbuffer converted from the TensorFlow port (channels-last).

The ``serving_default`` signature keeps the contract's names: inputs ``src [B,H,W,3]``,
``r1i..r4i`` (rank 4, ``[1,1,1,1]`` zeros on the first frame) and a scalar float32
``downsample_ratio``; outputs ``fgr, pha, r1o..r4o``. Batch, height and width are dynamic and the
ratio is a runtime input: LiteRT's signature runner resizes its tensors when a frame of another
size (or the first full-size state) arrives. Only TFLite builtin ops are used (no Flex/TF ops), so
the plain ``ai-edge-litert`` interpreter runs it.

Precision: fp32 only on the command line. :func:`convert` also does the converter's fp16-weight and
dynamic-range int8 modes, to measure them: both fail parity with the real weights (fp16: pha max
0.215 over the fp16 bound 0.15, because the converter also rounds the guided filter's box-filter
constants; int8: alpha MAD x1e3 30.9 over the int8 bound 20), so neither is offered as an artifact
(docs/tflite.md).

The artifact metadata is a flatbuffer ``metadata`` entry named ``rvm_metadata.json``.
"""

from pathlib import Path
from typing import Optional

import click
import tensorflow as tf

from rvm_export.contract import METADATA_KEY, ArtifactMetadata
from rvm_export.contract.errors import first_line

from .base import ExportError, ModelSource, atomic_output
from .cli import export_with, output_option, source_options
from .tf_port import TFMattingNetwork, from_torch

SUFFIX = ".tflite"
PRECISIONS = ("fp32", "fp16", "int8")  # fp16/int8: measured, not offered (see above)
SPECS = [
    tf.TensorSpec([None, None, None, 3], tf.float32, name="src"),
    *(tf.TensorSpec([None, None, None, None], tf.float32, name=f"r{i}i") for i in range(1, 5)),
    tf.TensorSpec([], tf.float32, name="downsample_ratio"),
]


def convert(net: TFMattingNetwork, precision: str) -> bytes:
    """The TFLite flatbuffer of ``net``'s serving function at ``precision``."""
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    holder = tf.Module()
    holder.net = net

    @tf.function(input_signature=SPECS)
    def serving_default(src, r1i, r2i, r3i, r4i, downsample_ratio):
        return holder.net.outputs(src, [r1i, r2i, r3i, r4i], downsample_ratio)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serving_default.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        return converter.convert()
    except Exception as exc:  # the converter raises ConverterError with MLIR diagnostics
        raise ExportError(f"the TFLite converter failed: {first_line(exc)}")


def with_metadata(flatbuffer: bytes, metadata: ArtifactMetadata) -> bytes:
    """``flatbuffer`` with a ``metadata`` entry named METADATA_KEY holding the JSON document."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    buffer = schema.BufferT()
    buffer.data = list(metadata.to_json().encode())
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def export_tflite(net: TFMattingNetwork, output: str | Path, metadata: ArtifactMetadata, precision: str) -> Path:
    """Convert ``net`` and write the ``.tflite`` file at ``output`` atomically."""
    data = with_metadata(convert(net, precision), metadata)
    with atomic_output(output) as tmp:
        tmp.write_bytes(data)
    return Path(output)


@click.command("tflite")
@source_options
@click.option(
    "--precision",
    type=click.Choice(["fp32"]),
    default="fp32",
    show_default=True,
    help="fp32 only: TFLite's fp16 and dynamic-range int8 conversions fail parity (measured: docs/tflite.md).",
)
@output_option
def command(source: ModelSource, precision: str, output: Optional[str]) -> None:
    """LiteRT (TFLite) flatbuffer (NHWC) with dynamic shapes and a runtime downsample_ratio."""
    export_with(
        source,
        "tflite",
        output,
        lambda out, meta: export_tflite(from_torch(source.model), out, meta, precision),
        precision,
        {"precision": precision},
    )
