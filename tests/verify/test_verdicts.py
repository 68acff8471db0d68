"""Verdicts you can trust: the noise-calibrated gate, long sequences, drift, crashes, --localize, --plot."""

import json
from pathlib import Path
from typing import Any, Tuple

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import numpy_helper

from model import load_checkpoint
from rvm_export.runtimes.torch_runner import TorchReference
from rvm_export.verify.api import verify_artifact
from rvm_export.verify.cli import main as verify_main
from rvm_export.verify.harness import verify_runner
from rvm_export.verify.report import Report
from rvm_export.verify.sequence import Case, build_sequence
from rvm_export.verify.tolerances import Tolerance, tolerance_for
from tests.helpers import WEIGHTS, ArtifactCache

TINY = ["--frames", "2", "--size", "64x48", "--ratio", "0.5"]


def run_verify(path: Path, *args: str):
    return CliRunner().invoke(verify_main, [str(path), *args])


def perturbed_onnx(good: Path, tmp_path: Path, weight: str, factor: float) -> Path:
    model = onnx.load(str(good))
    init = next(i for i in model.graph.initializer if i.name == weight)
    values = numpy_helper.to_array(init).copy()
    values[3] *= factor  # one output channel
    init.CopyFrom(numpy_helper.from_array(values, weight))
    path = tmp_path / "perturbed.onnx"
    onnx.save(model, str(path))
    return path


def test_gate_is_a_multiple_of_the_noise_between_floor_and_ceiling() -> None:
    tol = tolerance_for("fp32")
    assert tol.allowed("pha", "max_abs", 1e-4) == pytest.approx(tol.ratio * 1e-4)
    assert tol.allowed("pha", "max_abs", 0.0) == tol.image_floor.max_abs  # a silent frame still allows rounding
    assert tol.allowed("pha", "max_abs", 1.0) == tol.image_ceiling.max_abs  # noise cannot excuse garbage
    for name in ("fp32", "fp16", "int8", "uint16"):
        t = tolerance_for(name)
        for floor, ceiling in ((t.image_floor, t.image_ceiling), (t.state_floor, t.state_ceiling)):
            assert all(getattr(floor, m) < getattr(ceiling, m) for m in Tolerance.__dataclass_fields__)


def test_json_has_noise_floor_and_ratio_in_every_entry(tmp_path: Path, artifacts: ArtifactCache) -> None:
    result = run_verify(artifacts.onnx("fp32"), *TINY, "--json", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    entries = [s for case in report["cases"] for s in case["stats"]]
    assert len(entries) == 2 * 6
    for entry in entries:
        assert (
            set(entry["noise_floor"]) == set(entry["ratio"]) == set(entry["limit"]) == {"max_abs", "q999", "mean_abs"}
        )
        assert entry["noise_floor"]["max_abs"] > 0
        assert entry["ratio"]["max_abs"] == pytest.approx(entry["max_abs"] / entry["noise_floor"]["max_abs"])
    assert all(a["noise_mad_1e3"] > 0 for case in report["cases"] for a in case["alpha"])


def test_an_error_many_times_the_noise_fails_below_any_fixed_bound(tmp_path: Path, artifacts: ArtifactCache) -> None:
    """0.2% on one output channel of a decoder conv: far inside the old fixed fp32 bound (2e-3), far
    outside what float32 rounding moves (the noise floor), so the calibrated gate fails it."""
    path = perturbed_onnx(artifacts.onnx("fp32"), tmp_path, "net.decoder.decode2.gru.ih.0.weight", 1.002)
    report = verify_artifact(path, frames=2, sizes=[(64, 48)], ratios=[0.5])
    assert not report.passed
    worst = report.worst()
    assert max(worst[n]["max_abs"] for n in ("fgr", "pha", "r2o")) < 2e-3
    assert "x the noise floor" in report.failures[0].message()


def test_the_long_sequence_keeps_the_person_in_view() -> None:
    """300 frames keep moving (no two consecutive frames equal) and alpha covers a substantial part of
    every frame, so a long run measures the network on a matte, not on an empty frame."""
    case = Case(128, 96, 2, 1.0, 300)  # at 64x48 the network finds too little of the person to measure coverage
    frames = build_sequence(case)
    assert np.all(np.abs(np.diff(frames, axis=0)).reshape(299, -1).max(axis=1) > 0)
    reference, state, coverage = TorchReference(load_checkpoint(WEIGHTS)), None, []
    for src in frames:
        out, state = reference.infer(src, state, 1.0)
        coverage.append(out["pha"].mean(axis=(1, 2, 3)))
    assert 0.3 < np.min(coverage) and np.max(coverage) < 0.8
    short = build_sequence(Case(128, 96, 2, 1.0, 4))
    assert np.array_equal(short, frames[:4]), "every sequence starts with the shorter ones"


@pytest.mark.parametrize("frames", [4, 300])
def test_good_fp32_onnx_passes_at_every_length(frames: int, artifacts: ArtifactCache) -> None:
    report = verify_artifact(artifacts.onnx("fp32"), frames=frames, sizes=[(128, 96)], ratios=[0.5])
    assert report.passed, report.table()
    if frames == 300:
        assert not any(d.drifting for d in report.drifts()), report.table()


class DriftingRunner:
    """Broken: a good model whose recurrent state gains a small offset every frame, as a state carried in
    a wrong scale or with a bias would: right at first, then ever further off."""

    kind = "test"

    def __init__(self, reference: Any, precision_source: Any) -> None:
        self.reference, self.metadata = reference, precision_source

    def initial_state(self, batch: int) -> Any:
        return (None, 0)

    def infer(self, src: np.ndarray, state: Tuple[Any, int], ratio: float) -> Tuple[dict, Any]:
        inner, t = state
        if inner is not None:
            inner = [s + 4e-4 * t for s in inner]
        out, inner = self.reference.infer(src, inner, ratio)
        return out, (inner, t + 1)


def test_accumulating_error_is_named_drift() -> None:
    from rvm_export.export.base import load_source

    source = load_source(WEIGHTS)
    metadata = source.metadata("test", "fp32")
    runner = DriftingRunner(TorchReference(load_checkpoint(WEIGHTS)), metadata)
    results = verify_runner(runner, source.model, [Case(64, 48, 1, 0.5, 40)])
    report = Report("drifting", "test", metadata, tolerance_for("fp32"), results)
    assert not report.passed
    assert report.failures[0].frame > 0
    table = report.table()
    assert "drift:" in table and "DRIFT" in table, table


def test_a_crashing_backend_is_an_artifact_failure_not_bad_input(tmp_path: Path) -> None:
    from rvm_export.export.base import load_source
    from rvm_export.export.torchscript import export_torchscript

    class CrashesOnSecondFrame(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, src: torch.Tensor, r1: torch.Tensor | None = None, r2: torch.Tensor | None = None,
                    r3: torch.Tensor | None = None, r4: torch.Tensor | None = None,
                    downsample_ratio: float = 1.0) -> list[torch.Tensor]:  # fmt: skip
            if r1 is not None:
                raise RuntimeError("kernel exploded")
            return self.net(src, r1, r2, r3, r4, downsample_ratio)

    source = load_source(WEIGHTS)
    path = export_torchscript(
        CrashesOnSecondFrame(source.model),
        tmp_path / "crash.torchscript",
        source.metadata("torchscript", "fp32"),
        False,
    )
    result = run_verify(path, *TINY)
    assert result.exit_code == 1, result.output
    assert (
        "frame 1" in result.output
        and "the artifact failed to run" in result.output
        and "kernel exploded" in result.output
    )


def test_localize_names_the_perturbed_module_in_onnx(tmp_path: Path, artifacts: ArtifactCache) -> None:
    path = perturbed_onnx(artifacts.onnx("fp32"), tmp_path, "net.decoder.decode2.gru.ih.0.weight", 1.05)
    result = run_verify(path, *TINY, "--localize")
    assert result.exit_code == 1, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("first divergence:"))
    assert line.startswith("first divergence: decoder.decode2.gru.ih.0 at frame 0"), line


def test_localize_names_the_perturbed_module_in_torchscript(tmp_path: Path) -> None:
    from rvm_export.export.base import load_source
    from rvm_export.export.torchscript import export_torchscript

    source = load_source(WEIGHTS)
    net = load_checkpoint(WEIGHTS)
    with torch.no_grad():
        net.decoder.decode1.gru.hh[0].weight[2].mul_(1.05)
    path = export_torchscript(net, tmp_path / "p.torchscript", source.metadata("torchscript", "fp32"), False)
    result = run_verify(path, *TINY, "--localize")
    assert result.exit_code == 1, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("first divergence:"))
    assert line.startswith("first divergence: decoder.decode1.gru.hh.0 at frame 0"), line


def test_plot_writes_a_png(tmp_path: Path, artifacts: ArtifactCache) -> None:
    png = tmp_path / "errors.png"
    result = run_verify(artifacts.onnx("fp32"), *TINY, "--plot", str(png))
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
