"""ONNX Runtime runner specifics: fp16 in the worst pixel, the deep guided filter, a static artifact, states as
OrtValues, the ratio-1 refiner skip, and bad input. (The fp32 artifact passing and perturbed or stateless
ones failing: tests/test_conformance.py.)"""

from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from rvm_export.runtimes import RunnerError
from rvm_export.runtimes.onnxruntime import OnnxRuntimeRunner
from rvm_export.verify.api import verify_artifact
from rvm_export.verify.cli import main as verify_main
from tests.helpers import ArtifactCache, always_refine, rewrite_onnx

SIZES = [(97, 75)]  # odd: crops after every 2x upsampling
RATIOS = [1.0, 0.5]  # 1.0: no refiner, as in PyTorch


def run_verify(path: Path, *args: str):
    return CliRunner().invoke(verify_main, [str(path), "--frames", "3", *args])


def test_fp16_is_accurate_in_the_worst_pixel(artifacts: ArtifactCache) -> None:
    report = verify_artifact(artifacts.onnx("fp16"), frames=3, sizes=[(160, 96)], ratios=[1.0, 0.375])
    assert report.passed, report.table()
    assert report.worst()["pha"]["max_abs"] < 0.08  # a naive fp16 guided filter is off by up to 1.0


def test_resnet50_with_deep_guided_filter_verifies(artifacts: ArtifactCache) -> None:
    """The deep refiner has weights, used only inside the If's else-branch. (Seeded ResNet50:
    a seeded MobileNetV3 amplifies float noise beyond the fp32 tolerance in any backend.)"""
    report = verify_artifact(artifacts.onnx("fp32", resnet50=True), frames=3, sizes=SIZES, ratios=RATIOS)
    assert report.passed, report.table()


def test_static_artifact_verifies_at_its_baked_in_case(artifacts: ArtifactCache) -> None:
    path = artifacts.onnx("fp32", 20, (161, 97), 0.5)
    report = verify_artifact(path, frames=3)
    assert report.passed, report.table()
    assert [r.case.label for r in report.results] == ["161x97 b1 r0.5 t3"]
    runner = OnnxRuntimeRunner(path)  # in this process: its states are OrtValues (in the child they stay there)
    assert [s.shape() for s in runner.initial_state(1)][0] == [1, 16, 24, 40]
    with pytest.raises(RunnerError, match="baked in"):
        runner.infer(np.zeros((1, 3, 97, 161), np.float32), runner.initial_state(1), 0.25)


def test_runner_keeps_states_as_ort_values_on_its_device(artifacts: ArtifactCache) -> None:
    runner = OnnxRuntimeRunner(artifacts.onnx("fp32"), ["CPUExecutionProvider"])
    assert runner.kind == "onnx" and runner.device == "cpu" and runner.fixed_case() is None
    outputs, state = runner.infer(np.full((1, 3, 64, 64), 0.5, np.float32), runner.initial_state(1), 1.0)
    assert [s.device_name() for s in state] == ["cpu"] * 4
    assert [s.shape() for s in state] == [list(outputs[f"r{i}o"].shape) for i in range(1, 5)]


# The official export's behaviour, planted in ours (other broken artifacts: tests/test_conformance.py).


def rewrite(artifacts: ArtifactCache, tmp_path: Path, edit) -> Path:
    return rewrite_onnx(artifacts.onnx("fp32"), tmp_path / "broken.onnx", edit)


def test_refiner_at_ratio_one_fails(tmp_path: Path, artifacts: ArtifactCache) -> None:
    result = run_verify(rewrite(artifacts, tmp_path, always_refine), "--size", "97x75", "--ratio", "1")
    assert result.exit_code == 1, result.output
    first = next(line for line in result.output.splitlines() if line.startswith("FAIL"))
    assert "r1" in first


def test_refiner_check_passes_below_ratio_one(tmp_path: Path, artifacts: ArtifactCache) -> None:
    """The always-refine graph is right at ratio < 1: the failure above is the ratio-1 skip."""
    result = run_verify(rewrite(artifacts, tmp_path, always_refine), "--size", "97x75", "--ratio", "0.5")
    assert result.exit_code == 0, result.output


def test_artifact_without_metadata_or_not_onnx_is_bad_input(tmp_path: Path, artifacts: ArtifactCache) -> None:
    path = tmp_path / "bare.onnx"
    model = onnx.load(str(artifacts.onnx("fp32")))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    result = run_verify(path)
    assert result.exit_code == 2 and "carries no rvm_metadata.json" in result.output
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    result = run_verify(junk)
    assert result.exit_code == 2 and "not a readable ONNX model" in result.output
