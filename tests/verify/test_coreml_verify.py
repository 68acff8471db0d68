"""rvm-verify on CoreML models: the MIL interpreter's ops against PyTorch, the int8 neural network's weights
read back, and each CoreML-specific kind of broken model fails: a wrong resize sampling mode, a corrupted 8-bit
weight, a broken contract, missing metadata. (The fp16 ML Program passing, a corrupted weight and an ignored
state failing: tests/test_conformance.py.)"""

from pathlib import Path
from types import SimpleNamespace

import coremltools as ct
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from coremltools.converters.mil import Builder as mb
from coremltools.proto import NeuralNetwork_pb2 as nn_pb
from torch.nn import functional as F

from rvm_export.contract import METADATA_KEY
from rvm_export.runtimes.coreml import CoreMLRunner
from rvm_export.runtimes.mil_interpreter import (
    MilInterpreter,
    UnsupportedOpError,
    avg_pool,
    slice_by_index,
    upsample_bilinear,
)
from rvm_export.verify.api import verify_artifact
from rvm_export.verify.cli import main as verify_main
from tests.helpers import ArtifactCache, copy_artifact

FRAMES = 3
OP = SimpleNamespace(name="test")


def _package_spec_file(package: Path) -> Path:
    return package / "Data" / "com.apple.CoreML" / "model.mlmodel"


# --- the interpreter's ops against PyTorch's own definitions --------------------------------------


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("scale, size", [(0.5, (6, 8)), (2.0, (3, 5)), (0.375, (16, 8))])
def test_upsample_bilinear_samples_like_pytorch(align: bool, scale: float, size: tuple) -> None:
    x = np.random.default_rng(0).random((1, 2, *size), dtype=np.float32)
    args = {"x": x, "scale_factor_height": scale, "scale_factor_width": scale, "align_corners": align}
    ours = upsample_bilinear(OP, args)
    theirs = F.interpolate(torch.from_numpy(x), scale_factor=scale, mode="bilinear", align_corners=align)
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-6)


def test_avg_pool_ceil_mode_excludes_padding_like_pytorch() -> None:
    x = np.random.default_rng(1).random((1, 3, 7, 9), dtype=np.float32)
    args = {"x": x, "kernel_sizes": [2, 2], "strides": [2, 2], "pad_type": "custom", "pad": [0, 0, 0, 0]}
    ours = avg_pool(OP, args | {"ceil_mode": True, "exclude_padding_from_average": True})
    theirs = F.avg_pool2d(torch.from_numpy(x), 2, 2, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-6)


def test_unknown_op_fails_loudly_before_running() -> None:
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))])
    def program(x):
        return mb.softmax(x=x)

    with pytest.raises(UnsupportedOpError, match="softmax"):
        MilInterpreter(program)


# --- real artifacts pass ------------------------------------------------------------------------


def test_neuralnetwork_int8_weights_read_back_and_pass(artifacts: ArtifactCache, real_model) -> None:
    path = artifacts.coreml("neuralnetwork", "int8")
    result = CliRunner().invoke(verify_main, [str(path), "--frames", str(FRAMES)])
    assert result.exit_code == 0, result.output
    runner = CoreMLRunner(path)
    runner.bind_reference(real_model)
    assert runner.problems == [] and len(runner.weight_matches) == 86
    assert all(m.module is not None and m.allowed <= 1.0 for m in runner.weight_matches)


# --- broken artifacts fail ----------------------------------------------------------------------


def test_align_corners_resize_fails_the_numerics(tmp_path: Path, artifacts: ArtifactCache) -> None:
    """The official exporter's mistake, planted in the saved program: resizes that align corners."""
    package = copy_artifact(artifacts.coreml("mlprogram", "fp16"), tmp_path)
    spec_file = _package_spec_file(package)
    spec = ct.utils.load_spec(str(package))
    block = next(iter(spec.mlProgram.functions["main"].block_specializations.values()))
    flags = {op.inputs["align_corners"].arguments[0].name for op in block.operations if op.type == "upsample_bilinear"}
    assert len(flags) == 7
    consts = [op for op in block.operations if op.type == "const" and op.outputs[0].name in flags]
    for op in consts:
        op.attributes["val"].immediateValue.tensor.bools.values[:] = [True]
    spec_file.write_bytes(spec.SerializeToString())
    report = verify_artifact(package, frames=FRAMES)
    assert not report.passed
    assert {f.output for f in report.failures} >= {"fgr", "pha"}


def test_corrupted_8bit_weight_fails_read_back(tmp_path: Path, artifacts: ArtifactCache) -> None:
    path = copy_artifact(artifacts.coreml("neuralnetwork", "int8"), tmp_path)
    spec = ct.utils.load_spec(str(path))
    conv = next(layer.convolution for layer in spec.neuralNetwork.layers if layer.WhichOneof("layer") == "convolution")
    conv.weights.rawValue = bytes(reversed(conv.weights.rawValue))
    ct.utils.save_spec(spec, str(path))
    result = CliRunner().invoke(verify_main, [str(path), "--frames", str(FRAMES)])
    assert result.exit_code == 1, result.output
    assert "matches no PyTorch weight" in result.output


def test_neuralnetwork_align_corners_upsample_fails(tmp_path: Path, artifacts: ArtifactCache) -> None:
    path = copy_artifact(artifacts.coreml("neuralnetwork", "int8"), tmp_path)
    spec = ct.utils.load_spec(str(path))
    layer = next(layer for layer in spec.neuralNetwork.layers if layer.WhichOneof("layer") == "upsample")
    layer.upsample.linearUpsampleMode = nn_pb.UpsampleLayerParams.ALIGN_CORNERS_TRUE
    ct.utils.save_spec(spec, str(path))
    report = verify_artifact(path, frames=FRAMES)
    assert not report.passed and "ALIGN_CORNERS_TRUE" in report.failures[0].message()


def test_broken_contract_fails(tmp_path: Path, artifacts: ArtifactCache) -> None:
    path = copy_artifact(artifacts.coreml("neuralnetwork", "int8"), tmp_path)
    spec = ct.utils.load_spec(str(path))
    spec.description.input[1].type.isOptional = False
    spec.description.output[0].shortDescription = ""
    ct.utils.save_spec(spec, str(path))
    failures = verify_artifact(path, frames=FRAMES).failures
    contract = [f.message() for f in failures if f.metric == "contract"]  # one check result per problem
    assert any("r1i is not optional" in m for m in contract) and any("fgr has no description" in m for m in contract)


def test_missing_metadata_is_bad_input(tmp_path: Path, artifacts: ArtifactCache) -> None:
    path = copy_artifact(artifacts.coreml("neuralnetwork", "int8"), tmp_path)
    spec = ct.utils.load_spec(str(path))
    del spec.description.metadata.userDefined[METADATA_KEY]
    ct.utils.save_spec(spec, str(path))
    result = CliRunner().invoke(verify_main, [str(path)])
    assert result.exit_code == 2 and "carries no rvm_metadata.json" in result.output
    assert "pass the checkpoint it was exported from to verify it (--checkpoint)" in result.output


def test_slice_by_index_masks() -> None:
    x = np.arange(2 * 3 * 5 * 7, dtype=np.float32).reshape(2, 3, 5, 7)
    args = {"x": x, "begin": [0, 1, 0, 2], "end": [0, 3, 4, 0], "stride": [1, 1, 1, 2]}
    args |= {"begin_mask": [True, False, True, False], "end_mask": [True, False, False, True]}
    np.testing.assert_array_equal(slice_by_index(OP, args), x[:, 1:3, :4, 2::2])
