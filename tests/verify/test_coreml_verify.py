"""rvm-verify on CoreML models: real ones pass (contract, weights read back, numerics of the
saved program), and each kind of broken one fails: a wrong resize sampling mode, a corrupted
weight, a broken contract, missing metadata."""

import shutil
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
    load_program,
    slice_by_index,
    upsample_bilinear,
)
from rvm_export.verify.api import verify_artifact
from rvm_export.verify.cli import main as verify_main
from rvm_export.verify.harness import verify_runner
from rvm_export.verify.sequence import Case
from tests.verify.coreml_cache import HEIGHT, RATIO, WIDTH, coreml_artifact

FRAMES = 3
OP = SimpleNamespace(name="test")


def _copy(path: Path, tmp_path: Path) -> Path:
    target = tmp_path / path.name
    if path.is_dir():
        shutil.copytree(path, target)
    else:
        shutil.copy(path, target)
    return target


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


def test_mlprogram_fp16_passes_and_runs_the_saved_program() -> None:
    path = coreml_artifact("mlprogram", "fp16")
    report = verify_artifact(path, frames=FRAMES)
    assert report.passed, report.table()
    assert [r.case for r in report.results] == [Case(WIDTH, HEIGHT, 1, RATIO, FRAMES)]
    worst = report.worst()
    assert 0 < worst["pha"]["max_abs"] < 0.05  # fp16 compute shows, but is small
    assert worst["alpha"]["mad_1e3"] < 2.5  # measured 1.57 on the moving-camera sequence (0.9 on the old pan)


def test_neuralnetwork_int8_weights_read_back_and_pass() -> None:
    path = coreml_artifact("neuralnetwork", "int8")
    result = CliRunner().invoke(verify_main, [str(path), "--frames", str(FRAMES)])
    assert result.exit_code == 0, result.output
    runner = CoreMLRunner(path)
    runner.bind_reference(_reference())
    assert runner.problems == [] and len(runner.weight_matches) == 86
    assert all(m.module is not None and m.allowed <= 1.0 for m in runner.weight_matches)


def _reference():
    from model import load_checkpoint
    from tests.verify.coreml_cache import WEIGHTS

    return load_checkpoint(WEIGHTS)


# --- broken artifacts fail ----------------------------------------------------------------------


def test_align_corners_resize_fails_the_numerics(tmp_path: Path) -> None:
    """The official exporter's mistake, planted in the saved program: resizes that align corners."""
    package = _copy(coreml_artifact("mlprogram", "fp16"), tmp_path)
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


def test_corrupted_weight_fails_read_back_and_numerics(tmp_path: Path) -> None:
    package = _copy(coreml_artifact("mlprogram", "fp16"), tmp_path)
    conv = [op for op in load_program(str(package)).functions["main"].operations if op.op_type == "conv"][-9]
    weight = np.asarray(conv.inputs["weight"].val)  # the alpha/foreground projection (last before the refiner)
    assert weight.dtype == np.float16
    blob = package / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    data = blob.read_bytes()
    assert data.count(weight.tobytes()) == 1
    blob.write_bytes(data.replace(weight.tobytes(), (weight * np.float16(1.25)).tobytes()))

    report = verify_artifact(package, frames=FRAMES)
    assert not report.passed
    assert "matches no PyTorch weight" in report.failures[0].message()
    # With the read-back silenced, the numerics alone still catch it.
    runner = CoreMLRunner(package)
    runner.bind_reference(_reference())
    runner.problems = []
    results = verify_runner(runner, _reference(), [Case(WIDTH, HEIGHT, 1, RATIO, FRAMES)])
    assert any(f.output == "pha" for r in results for f in r.failures)


def test_corrupted_8bit_weight_fails_read_back(tmp_path: Path) -> None:
    path = _copy(coreml_artifact("neuralnetwork", "int8"), tmp_path)
    spec = ct.utils.load_spec(str(path))
    conv = next(layer.convolution for layer in spec.neuralNetwork.layers if layer.WhichOneof("layer") == "convolution")
    conv.weights.rawValue = bytes(reversed(conv.weights.rawValue))
    ct.utils.save_spec(spec, str(path))
    result = CliRunner().invoke(verify_main, [str(path), "--frames", str(FRAMES)])
    assert result.exit_code == 1, result.output
    assert "matches no PyTorch weight" in result.output


def test_neuralnetwork_align_corners_upsample_fails(tmp_path: Path) -> None:
    path = _copy(coreml_artifact("neuralnetwork", "int8"), tmp_path)
    spec = ct.utils.load_spec(str(path))
    layer = next(layer for layer in spec.neuralNetwork.layers if layer.WhichOneof("layer") == "upsample")
    layer.upsample.linearUpsampleMode = nn_pb.UpsampleLayerParams.ALIGN_CORNERS_TRUE
    ct.utils.save_spec(spec, str(path))
    report = verify_artifact(path, frames=FRAMES)
    assert not report.passed and "ALIGN_CORNERS_TRUE" in report.failures[0].message()


def test_broken_contract_fails(tmp_path: Path) -> None:
    path = _copy(coreml_artifact("neuralnetwork", "int8"), tmp_path)
    spec = ct.utils.load_spec(str(path))
    spec.description.input[1].type.isOptional = False
    spec.description.output[0].shortDescription = ""
    ct.utils.save_spec(spec, str(path))
    message = verify_artifact(path, frames=FRAMES).failures[0].message()
    assert "r1i is not optional" in message and "fgr has no description" in message


def test_missing_metadata_is_bad_input(tmp_path: Path) -> None:
    path = _copy(coreml_artifact("neuralnetwork", "int8"), tmp_path)
    spec = ct.utils.load_spec(str(path))
    del spec.description.metadata.userDefined[METADATA_KEY]
    ct.utils.save_spec(spec, str(path))
    result = CliRunner().invoke(verify_main, [str(path)])
    assert result.exit_code == 2 and "carries no rvm_metadata.json" in result.output
    assert "pass --checkpoint" in result.output


def test_slice_by_index_masks() -> None:
    x = np.arange(2 * 3 * 5 * 7, dtype=np.float32).reshape(2, 3, 5, 7)
    args = {"x": x, "begin": [0, 1, 0, 2], "end": [0, 3, 4, 0], "stride": [1, 1, 1, 2]}
    args |= {"begin_mask": [True, False, True, False], "end_mask": [True, False, False, True]}
    np.testing.assert_array_equal(slice_by_index(OP, args), x[:, 1:3, :4, 2::2])
