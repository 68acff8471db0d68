"""rvm-export coreml: the contract of the saved models, and clear errors for bad input."""

from pathlib import Path

import coremltools as ct
import numpy as np
import pytest
from click.testing import CliRunner
from coremltools.converters.mil.mil import types
from coremltools.proto import FeatureTypes_pb2 as ft

from rvm_export.contract import METADATA_KEY, ArtifactMetadata
from rvm_export.export.cli import main as export_main
from rvm_export.runtimes.coreml import check_contract, check_sampling
from rvm_export.runtimes.mil_interpreter import load_program
from tests.helpers import COREML_CASE, WEIGHTS, ArtifactCache

WIDTH, HEIGHT, _ = COREML_CASE

STATE_SHAPES = [(1, 16, 24, 32), (1, 20, 12, 16), (1, 40, 6, 8), (1, 64, 3, 4)]  # 128x96 at ratio 0.5


@pytest.mark.parametrize(
    "args, message",
    [
        (["--resolution", "0", "96", "--downsample-ratio", "0.5"], "not positive"),
        (["--resolution", "128", "96", "--downsample-ratio", "0"], "outside (0, 1]"),
        (["--resolution", "128", "96", "--downsample-ratio", "1.5"], "outside (0, 1]"),
        (["--resolution", "130", "96", "--downsample-ratio", "0.375"], "not an integer"),
        (["--resolution", "128", "96", "--downsample-ratio", "0.5", "--precision", "int4"], "int4"),
    ],
)
def test_bad_input_is_one_clear_error_and_writes_nothing(tmp_path: Path, args: list, message: str) -> None:
    output = tmp_path / "model.mlpackage"
    result = CliRunner().invoke(export_main, ["coreml", "--checkpoint", str(WEIGHTS), *args, "--output", str(output)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not output.exists() and list(tmp_path.iterdir()) == []


def test_format_and_suffix_must_agree(tmp_path: Path) -> None:
    output = tmp_path / "model.mlmodel"
    args = ["coreml", "--checkpoint", str(WEIGHTS), "--resolution", "128", "96", "--downsample-ratio", "0.5"]
    result = CliRunner().invoke(export_main, [*args, "--format", "mlprogram", "--output", str(output)])
    assert result.exit_code == 2 and "*.mlpackage" in result.output
    assert list(tmp_path.iterdir()) == []


def _metadata(spec: object) -> ArtifactMetadata:
    return ArtifactMetadata.from_json(spec.description.metadata.userDefined[METADATA_KEY])


def test_mlprogram_contract_as_the_documentation_uses_it(artifacts: ArtifactCache) -> None:
    spec = ct.utils.load_spec(str(artifacts.coreml("mlprogram", "fp16")))
    metadata = _metadata(spec)
    assert check_contract(spec, metadata, STATE_SHAPES) == []
    src = spec.description.input[0]
    assert (src.name, src.type.imageType.colorSpace, src.type.imageType.width) == (
        "src",
        ft.ImageFeatureType.RGB,
        WIDTH,
    )
    assert [f.type.isOptional for f in spec.description.input] == [False, True, True, True, True]
    pha = spec.description.output[1]
    assert (pha.name, pha.type.imageType.colorSpace, pha.type.imageType.height) == ("pha", 10, HEIGHT)  # GRAYSCALE
    user = spec.description.metadata.userDefined
    assert user["downsample_ratio"] == "0.5" and user["precision"] == "fp16"
    assert user["checkpoint_sha256"] == metadata.checkpoint_sha256 and len(metadata.checkpoint_sha256) == 64
    assert "version.coremltools" in user and metadata.options["format"] == "mlprogram"


def test_fp16_program_keeps_the_guided_filter_in_fp32(artifacts: ArtifactCache) -> None:
    ops = list(load_program(str(artifacts.coreml("mlprogram", "fp16"))).functions["main"].operations)
    convs = [op for op in ops if op.op_type == "conv"]
    refiner = [op for op in convs if op.name.startswith("refiner__")]
    assert len(refiner) == 8  # the box filter: 4 inputs x 2 separable passes
    assert all(op.outputs[0].dtype == types.fp32 for op in refiner)
    assert all(op.outputs[0].dtype == types.fp16 for op in convs if op not in refiner)


def test_neuralnetwork_int8_contract_sampling_and_8bit_weights(artifacts: ArtifactCache) -> None:
    spec = ct.utils.load_spec(str(artifacts.coreml("neuralnetwork", "int8")))
    assert spec.specificationVersion == 5  # iOS 14: needed for bilinear align_corners=False
    assert check_contract(spec, _metadata(spec), STATE_SHAPES) == []
    assert check_sampling(spec) == []
    convs = [layer.convolution for layer in spec.neuralNetwork.layers if layer.WhichOneof("layer") == "convolution"]
    assert len(convs) == 86
    assert all(c.weights.quantization.numberOfBits == 8 for c in convs)
    assert np.all([len(c.weights.floatValue) == 0 for c in convs])
