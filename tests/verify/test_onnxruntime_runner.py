"""ONNX Runtime runner: closed-loop parity of real-weight artifacts, and broken artifacts caught."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import helper, numpy_helper

from rvm_export.contract import STATE_INPUTS
from rvm_export.export.onnx_graph import GATE_IF_NAME
from rvm_export.runtimes import RunnerError, open_runner
from rvm_export.runtimes.onnxruntime import OnnxRuntimeRunner
from rvm_export.verify.api import verify_artifact
from rvm_export.verify.cli import main as verify_main

from ..export.onnx_artifacts import exported

SIZES = [(97, 75)]  # odd: crops after every 2x upsampling
RATIOS = [1.0, 0.5]  # 1.0: no refiner, as in PyTorch


def run_verify(path: Path, *args: str):
    return CliRunner().invoke(verify_main, [str(path), "--frames", "3", *args])


def test_fp32_matches_pytorch_to_float_noise() -> None:
    report = verify_artifact(exported("fp32"), frames=3, sizes=SIZES, ratios=RATIOS, batch=2)
    assert report.passed, report.table()
    worst = report.worst()
    assert worst["pha"]["max_abs"] < 1e-3 and worst["r4o"]["max_abs"] < 1e-4


def test_fp16_is_accurate_in_the_worst_pixel() -> None:
    report = verify_artifact(exported("fp16"), frames=3, sizes=[(160, 96)], ratios=[1.0, 0.375])
    assert report.passed, report.table()
    assert report.worst()["pha"]["max_abs"] < 0.08  # a naive fp16 guided filter is off by up to 1.0


def test_resnet50_with_deep_guided_filter_verifies() -> None:
    """The deep refiner has weights, used only inside the If's else-branch. (Seeded ResNet50:
    a seeded MobileNetV3 amplifies float noise beyond the fp32 tolerance in any backend.)"""
    report = verify_artifact(exported("fp32", resnet50=True), frames=3, sizes=SIZES, ratios=RATIOS)
    assert report.passed, report.table()


def test_static_artifact_verifies_at_its_baked_in_case() -> None:
    path = exported("fp32", 20, (161, 97), 0.5)
    report = verify_artifact(path, frames=3)
    assert report.passed, report.table()
    assert [r.case.label for r in report.results] == ["161x97 b1 r0.5 t3"]
    runner = open_runner(path)
    assert [s.shape() for s in runner.initial_state(1)][0] == [1, 16, 24, 40]
    with pytest.raises(RunnerError, match="baked in"):
        runner.infer(np.zeros((1, 3, 97, 161), np.float32), runner.initial_state(1), 0.25)


def test_runner_keeps_states_as_ort_values_on_its_device() -> None:
    runner = OnnxRuntimeRunner(exported("fp32"), ["CPUExecutionProvider"])
    assert runner.kind == "onnx" and runner.device == "cpu" and runner.fixed_case() is None
    outputs, state = runner.infer(np.full((1, 3, 64, 64), 0.5, np.float32), runner.initial_state(1), 1.0)
    assert [s.device_name() for s in state] == ["cpu"] * 4
    assert [s.shape() for s in state] == [list(outputs[f"r{i}o"].shape) for i in range(1, 5)]


# Broken artifacts: each must fail verification.


def rewrite(tmp_path: Path, edit) -> Path:
    model = onnx.load(str(exported("fp32")))
    edit(model.graph)
    path = tmp_path / "broken.onnx"
    onnx.save(model, str(path))
    return path


def perturb_first_conv(graph: onnx.GraphProto) -> None:
    weight_name = next(n.input[1] for n in graph.node if n.op_type == "Conv")
    init = next(i for i in graph.initializer if i.name == weight_name)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.05, weight_name))


def disconnect_states(graph: onnx.GraphProto) -> None:
    """Every frame starts from zero state: the state inputs are still there but unused."""
    zero = numpy_helper.from_array(np.zeros([1, 1, 1, 1], np.float32), "zero_state")
    graph.node.insert(0, helper.make_node("Constant", [], ["zero_state"], value=zero))
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in STATE_INPUTS:
                node.input[i] = "zero_state"


def always_refine(graph: onnx.GraphProto) -> None:
    """The official export's behaviour: the refiner also runs at ratio 1."""
    index, gate = next((i, n) for i, n in enumerate(graph.node) if n.name == GATE_IF_NAME)
    branch = next(a.g for a in gate.attribute if a.name == "else_branch")
    graph.initializer.extend(branch.initializer)
    nodes = list(branch.node)
    for out, inner in zip(gate.output, branch.output, strict=True):
        nodes.append(helper.make_node("Identity", [inner.name], [out]))
    graph.node.remove(gate)
    for offset, node in enumerate(nodes):
        graph.node.insert(index + offset, node)


@pytest.mark.parametrize(
    "edit, args, detail",
    [
        (perturb_first_conv, ["--size", "97x75", "--ratio", "0.5"], "frame 0"),
        (disconnect_states, ["--size", "97x75", "--ratio", "0.5"], "frame 1"),
        (always_refine, ["--size", "97x75", "--ratio", "1"], "r1"),
    ],
    ids=["perturbed-initializer", "states-disconnected", "refiner-at-ratio-1"],
)
def test_verifier_catches_broken_artifact(tmp_path: Path, edit, args: list, detail: str) -> None:
    result = run_verify(rewrite(tmp_path, edit), *args)
    assert result.exit_code == 1, result.output
    first = next(line for line in result.output.splitlines() if line.startswith("FAIL"))
    assert detail in first


def test_refiner_check_passes_below_ratio_one(tmp_path: Path) -> None:
    """The always-refine graph is right at ratio < 1: the failure above is the ratio-1 skip."""
    result = run_verify(rewrite(tmp_path, always_refine), "--size", "97x75", "--ratio", "0.5")
    assert result.exit_code == 0, result.output


def test_artifact_without_metadata_or_not_onnx_is_bad_input(tmp_path: Path) -> None:

    path = tmp_path / "bare.onnx"
    model = onnx.load(str(exported("fp32")))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    result = run_verify(path)
    assert result.exit_code == 2 and "carries no rvm_metadata.json" in result.output
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    result = run_verify(junk)
    assert result.exit_code == 2 and "is not a loadable ONNX model" in result.output
