"""rvm-verify on TorchScript artifacts: frozen and fp16 ones pass, each TorchScript-specific kind of broken one
fails, and the CLI's exit codes. (The default fp32 export passing and perturbed or stateless ones failing:
tests/test_conformance.py.)"""

import json
from pathlib import Path
from typing import List, Optional

import pytest
import torch
from click.testing import CliRunner
from torch import Tensor, nn

from model import MattingNetwork, half_precision, load_checkpoint
from model.guided_filter import FastGuidedFilterRefiner, box_filter, resize_to, with_grey
from rvm_export.export.torchscript import export_torchscript
from rvm_export.runtimes import RunnerError
from rvm_export.verify.api import verify_artifact
from rvm_export.verify.cli import main as verify_main
from tests.helpers import ArtifactCache

SMALL = dict(frames=3, sizes=[(96, 64), (67, 45)], ratios=[1.0, 0.5])


class Wrapped(nn.Module):
    def __init__(self, net: MattingNetwork) -> None:
        super().__init__()
        self.net = net


class BgrForeground(Wrapped):
    """Broken: carries its state, but returns the foreground in BGR order."""

    def forward(self, src: Tensor, r1: Optional[Tensor] = None, r2: Optional[Tensor] = None,
                r3: Optional[Tensor] = None, r4: Optional[Tensor] = None,
                downsample_ratio: float = 1.0) -> List[Tensor]:  # fmt: skip
        out = self.net(src, r1, r2, r3, r4, downsample_ratio)
        return [out[0].flip(-3)] + out[1:]


class SwapsFgrPha(Wrapped):
    def forward(self, src: Tensor, r1: Optional[Tensor] = None, r2: Optional[Tensor] = None,
                r3: Optional[Tensor] = None, r4: Optional[Tensor] = None,
                downsample_ratio: float = 1.0) -> List[Tensor]:  # fmt: skip
        out = self.net(src, r1, r2, r3, r4, downsample_ratio)
        return [out[1], out[0]] + out[2:]


class NaiveHalfGuidedFilter(FastGuidedFilterRefiner):
    """Broken: the fast guided filter computed in the model's fp16, as a naive ``model.half()`` would."""

    def forward(self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor, base_hid: Tensor):
        x, y = with_grey(base_src), torch.cat([base_fgr, base_pha], 1)
        mean_x, mean_y = box_filter(x, 1), box_filter(y, 1)
        a = (box_filter(x * y, 1) - mean_x * mean_y) / (box_filter(x * x, 1) - mean_x * mean_x + self.eps)
        b = mean_y - a * mean_x
        out = resize_to(a, fine_src) * with_grey(fine_src) + resize_to(b, fine_src)
        fgr, pha = out.split([3, 1], 1)
        return fgr, pha


def write(module: nn.Module, path: Path, source, precision: str = "fp32", freeze: bool = False) -> Path:
    return export_torchscript(module, path, source.metadata("torchscript", precision, freeze=freeze), freeze)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_frozen_torchscript_passes(artifacts: ArtifactCache, precision: str) -> None:
    name = f"rvm_mobilenetv3_{precision}_frozen.torchscript"
    out = artifacts.export("torchscript", name, "--precision", precision, "--freeze")
    report = verify_artifact(out, **SMALL)
    assert report.passed, report.table()
    assert report.metadata.precision == precision and report.metadata.options == {"freeze": True}
    worst = report.worst()
    assert worst["pha"]["max_abs"] < (1e-4 if precision == "fp32" else 0.1)


def test_bgr_foreground_fails(tmp_path: Path, source, weights_path: Path) -> None:
    report = verify_artifact(
        write(BgrForeground(load_checkpoint(weights_path)), tmp_path / "bgr.torchscript", source), **SMALL
    )
    assert not report.passed and {f.output for f in report.failures} == {"fgr"}


def test_swapped_outputs_fail_on_shape(tmp_path: Path, source, weights_path: Path) -> None:
    report = verify_artifact(
        write(SwapsFgrPha(load_checkpoint(weights_path)), tmp_path / "swap.torchscript", source), **SMALL
    )
    assert not report.passed and report.failures[0].metric == "shape"


def test_fp16_artifact_claiming_fp32_fails(tmp_path: Path, source, weights_path: Path) -> None:
    half = half_precision(load_checkpoint(weights_path))
    artifact = write(half, tmp_path / "liar.torchscript", source, precision="fp32")
    report = verify_artifact(artifact, frames=3, sizes=[(96, 64)], ratios=[0.5])
    assert not report.passed
    first = report.failures[0]
    assert first.metric == "precision" and "claims fp32 but the artifact is fp16" in first.message()
    assert "mislabelled" in report.table()
    assert all(f.metric != "run" for f in report.failures), "it runs: the check, not a crash, fails it"


def test_naive_fp16_guided_filter_fails_in_the_worst_pixel(tmp_path: Path, source, weights_path: Path) -> None:
    """Mean error stays ~3e-3 while single alpha pixels are off by up to 1.0: only max/q99.9 catch it."""
    net = load_checkpoint(weights_path)
    net.refiner = NaiveHalfGuidedFilter()
    artifact = write(net.half(), tmp_path / "naive_fp16.torchscript", source, precision="fp16")
    report = verify_artifact(artifact, frames=2, sizes=[(96, 64)], ratios=[0.5])
    assert not report.passed
    pha_failures = {f.metric for f in report.failures if f.output == "pha"}
    assert "max_abs" in pha_failures and "mean_abs" not in pha_failures


def test_cli_exit_codes_and_json(tmp_path: Path, source, weights_path: Path, artifacts: ArtifactCache) -> None:
    good = artifacts.export("torchscript", "rvm_mobilenetv3_fp32.torchscript")
    cli = CliRunner()
    args = ["--frames", "2", "--size", "64x48", "--ratio", "0.5"]
    ok = cli.invoke(verify_main, [str(good), *args, "--json", str(tmp_path / "r.json")])
    assert ok.exit_code == 0, ok.output
    assert "PASS" in ok.output and json.loads((tmp_path / "r.json").read_text())["passed"] is True

    bad = write(BgrForeground(load_checkpoint(weights_path)), tmp_path / "bad.torchscript", source)
    failed = cli.invoke(verify_main, [str(bad), *args])
    assert failed.exit_code == 1 and "FAIL" in failed.output and "fgr, frame 0" in failed.output

    missing = cli.invoke(verify_main, [str(tmp_path / "nope.torchscript")])
    assert missing.exit_code == 2 and "artifact not found" in missing.output
    (tmp_path / "junk.torchscript").write_bytes(b"junk")
    junk = cli.invoke(verify_main, [str(tmp_path / "junk.torchscript")])
    assert junk.exit_code == 2 and "is not a zip archive" in junk.output  # refused by inspection before torch.jit.load
    other = tmp_path / "other.pth"
    torch.save(MattingNetwork("mobilenetv3", "fast_guided_filter").state_dict(), other)
    wrong_ckpt = cli.invoke(verify_main, [str(good), "--checkpoint", str(other)])
    assert wrong_ckpt.exit_code == 2 and "is not the checkpoint the artifact was exported from" in wrong_ckpt.output
    bad_size = cli.invoke(verify_main, [str(good), "--size", "64by48"])
    assert bad_size.exit_code == 2
    on_cpu = cli.invoke(verify_main, [str(good), *args, "--device", "cpu"])
    assert on_cpu.exit_code == 0, on_cpu.output
    if not torch.cuda.is_available():
        no_gpu = cli.invoke(verify_main, [str(good), *args, "--device", "cuda"])
        assert no_gpu.exit_code == 2 and "no CUDA device is available" in no_gpu.output


def test_cpu_only_runners_refuse_another_device(tmp_path: Path) -> None:
    from rvm_export.runtimes.onnxruntime import OnnxRuntimeRunner
    from rvm_export.runtimes.tensorflow import TensorFlowRunner

    with pytest.raises(RunnerError, match="runs on the CPU only, not on cuda"):
        TensorFlowRunner.on_device(tmp_path / "model_tf", "cuda")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(RunnerError, match="no CUDA provider"):
            OnnxRuntimeRunner.on_device(tmp_path / "m.onnx", "cuda")
