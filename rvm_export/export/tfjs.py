"""TF.js target: a graph model (model.json + binary weight shards) written from the frozen
``serving_default`` function of the TensorFlow port.

Why our own writer instead of the ``tensorflowjs`` converter package: its last release pins
dependencies that conflict with current TensorFlow (``pip check`` fails for good), and it
imports jax, flax, tensorflow_hub and tensorflow_decision_forests for code paths this model
never takes. The graph-model format itself is small and stable: the frozen GraphDef as JSON
(protobuf's own ``MessageToDict``), a weights manifest, little-endian weight shards and the
signature. Freezing and graph optimisation use TensorFlow's own tools. Grappler's remapper is
not run: with oneDNN it fuses conv + hardswish into ``_FusedHardSwish``, which TF.js lacks.
"""

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import click
import numpy as np
import tensorflow as tf
from google.protobuf.json_format import MessageToDict
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow.python.framework import convert_to_constants
from tensorflow.python.grappler import tf_optimizer

from rvm_export.contract import METADATA_KEY, ArtifactMetadata

from .base import ExportError, ModelSource, atomic_output
from .cli import export_with, output_option, source_options
from .reproducible import sorted_keys
from .tensorflow import RATIO_SPEC, SRC_SPEC, STATE_SPECS
from .tf_port import TFMattingNetwork, from_torch

QUANTIZATIONS = ("none", "uint8", "uint16")
SHARD_BYTES = 4 * 1024 * 1024  # the TF.js converter's default shard size
MIN_QUANTIZED_SIZE = 64  # scalars and short vectors (eps, ImageNet mean/std, biases) stay float32
GRAPPLER_PASSES = ["debug_stripper", "constfold", "arithmetic", "dependency", "constfold"]
DTYPES = {tf.float32.as_datatype_enum: "float32", tf.int32.as_datatype_enum: "int32", tf.bool.as_datatype_enum: "bool"}


def frozen_graph(net: TFMattingNetwork) -> Tuple[tf.compat.v1.GraphDef, Dict[str, Any]]:
    """The serving function with variables inlined as constants and optimised by Grappler,
    plus its signature (input and output tensor names)."""

    @tf.function(input_signature=[SRC_SPEC, *STATE_SPECS, RATIO_SPEC])
    def serve(src, r1i, r2i, r3i, r4i, downsample_ratio):  # noqa: ANN001, ANN202
        return net.outputs(src, [r1i, r2i, r3i, r4i], downsample_ratio)

    concrete = serve.get_concrete_function()
    frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
    graph_def = frozen.graph.as_graph_def()
    inputs = {t.name.split(":")[0]: t for t in frozen.inputs}
    # Flattening a dict orders it by key; the frozen function's outputs follow that order.
    output_names = {name: t.name for name, t in zip(sorted(concrete.structured_outputs), frozen.outputs, strict=True)}

    meta_graph = tf.compat.v1.train.export_meta_graph(graph_def=graph_def, graph=frozen.graph)
    fetch = meta_graph_pb2.CollectionDef()
    for name in output_names.values():
        fetch.node_list.value.append(name.split(":")[0])
    meta_graph.collection_def["train_op"].CopyFrom(fetch)
    config = config_pb2.ConfigProto()
    config.graph_options.rewrite_options.optimizers[:] = GRAPPLER_PASSES
    graph_def = tf_optimizer.OptimizeGraph(config, meta_graph)
    signature = {
        "inputs": {
            name: {"name": f"{name}:0", "dtype": "DT_FLOAT", "tensorShape": _shape(t.shape)}
            for name, t in inputs.items()
        },
        "outputs": {name: {"name": tensor, "dtype": "DT_FLOAT"} for name, tensor in output_names.items()},
    }
    return graph_def, signature


def _shape(shape: tf.TensorShape) -> Dict[str, Any]:
    if shape.rank is None:
        return {"unknownRank": True}
    return {"dim": [{"size": str(-1 if d is None else d)} for d in shape.as_list()]}


def quantize_affine(values: np.ndarray, dtype: str) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Per-tensor affine quantisation as TF.js dequantises it (``q * scale + min``), to uint8 or
    uint16; the range is widened to include 0 so that zero stays exact."""
    levels = np.iinfo(dtype).max
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    scale = (hi - lo) / levels or 1.0
    q = np.clip(np.round((values - lo) / scale), 0, levels).astype(dtype)
    return q, {"dtype": dtype, "min": lo, "scale": scale, "original_dtype": "float32"}


def extract_weights(graph_def: tf.compat.v1.GraphDef, quantization: str) -> Tuple[List[Dict[str, Any]], bytes]:
    """Move every Const node's value out of the graph into the weight manifest and buffer."""
    specs, chunks = [], []
    for node in graph_def.node:
        if node.op != "Const":
            continue
        tensor = node.attr["value"].tensor
        if tensor.dtype not in DTYPES:
            raise ExportError(f"constant {node.name} has a dtype TF.js weights cannot hold ({tensor.dtype})")
        values = tf.make_ndarray(tensor)
        spec: Dict[str, Any] = {"name": node.name, "shape": list(values.shape), "dtype": DTYPES[tensor.dtype]}
        if quantization != "none" and values.dtype == np.float32 and values.size >= MIN_QUANTIZED_SIZE:
            values, spec["quantization"] = quantize_affine(values, quantization)
        elif values.dtype == np.bool_:
            values = values.astype(np.uint8)
        chunks.append(np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<")).tobytes())
        specs.append(spec)
        del node.attr["value"]
    return specs, b"".join(chunks)


def export_tfjs(net: TFMattingNetwork, output: str | Path, metadata: ArtifactMetadata, quantization: str) -> Path:
    """Write the TF.js graph model folder (model.json + group1-shard*.bin) atomically."""
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}")
    graph_def, signature = frozen_graph(net)
    specs, data = extract_weights(graph_def, quantization)
    shards = max(1, math.ceil(len(data) / SHARD_BYTES))
    paths = [f"group1-shard{i + 1}of{shards}.bin" for i in range(shards)]
    model = {
        "format": "graph-model",
        "generatedBy": tf.__version__,
        "convertedBy": "rvm-export (export/tfjs.py)",
        "modelTopology": sorted_keys(MessageToDict(graph_def)),  # protobuf's map order varies per process
        "weightsManifest": [{"paths": paths, "weights": specs}],
        "signature": signature,
        "userDefinedMetadata": {METADATA_KEY: json.loads(metadata.to_json())},
    }
    with atomic_output(output, folder=True) as tmp:
        tmp.mkdir()
        for i, path in enumerate(paths):
            (tmp / path).write_bytes(data[i * SHARD_BYTES : (i + 1) * SHARD_BYTES])
        (tmp / "model.json").write_text(json.dumps(model))
    return Path(output)


@click.command("tfjs")
@source_options
@click.option(
    "--quantize",
    type=click.Choice(["none", "uint8", "uint16"]),
    default="none",
    show_default=True,
    help="Per-tensor weight quantization: uint8 is 4x smaller (the official web model) but measurably "
    "changes the matte of float-trained weights; uint16 is 2x smaller and close to fp32. See docs/tfjs.md.",
)
@output_option
def command(source: ModelSource, quantize: str, output: Optional[str]) -> None:
    """TF.js graph model (NHWC) with a runtime downsample_ratio."""
    export_with(
        source,
        "tfjs",
        output,
        lambda out, meta: export_tfjs(from_torch(source.model), out, meta, quantize),
        "fp32" if quantize == "none" else quantize,
        {"quantize": quantize},
        {"quantization": quantize},
    )
