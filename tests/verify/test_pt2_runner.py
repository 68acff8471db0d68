"""torch.export (.pt2): the exported program passes rvm-verify (exact at ratio 1), broken ones fail,
it loads with torch alone, and the documented snippet runs as written."""

from pathlib import Path
from typing import Tuple

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import Tensor

from model.network import resize_by_ratio
from rvm_export.contract import METADATA_KEY
from rvm_export.export.base import load_source
from rvm_export.export.pt2 import CeilAvgPool, Pt2MattingNetwork, export_program, resize_by_ratio_tensor
from rvm_export.verify.api import verify_artifact
from rvm_export.verify.cli import main as verify_main
from rvm_export.verify.sequence import Case, build_sequence

from ..conftest import export_artifact, last_reference_pha, run_documented_snippet

SMALL = dict(frames=3, sizes=[(96, 64), (67, 45)], ratios=[1.0, 0.5])
BROKEN = dict(frames=2, sizes=[(96, 64)], ratios=[0.5])


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory, weights_path: Path) -> Path:
    path = tmp_path_factory.mktemp("pt2") / "rvm_mobilenetv3_fp32.pt2"
    export_artifact("pt2", "--checkpoint", str(weights_path), "--output", str(path))
    return path


def test_exported_program_passes_and_is_exact_at_ratio_one(artifact: Path) -> None:
    report = verify_artifact(artifact, **SMALL)
    assert report.passed, report.table()
    assert report.metadata.format == "pt2" and report.metadata.precision == "fp32"
    at_one = [s for r in report.results if r.case.ratio == 1.0 for s in r.stats]
    below = [s for r in report.results if r.case.ratio < 1.0 for s in r.stats]
    assert at_one and max(s.max_abs for s in at_one) == 0.0, "ratio 1: the refiner is skipped, bit for bit"
    assert below and max(s.max_abs for s in below) < 2e-3


@pytest.mark.parametrize("size, ratio", [((64, 96), 0.5), ((257, 319), 0.375), ((45, 67), 1.0), ((90, 160), 0.3)])
def test_tensor_ratio_resize_matches_interpolate(size: Tuple[int, int], ratio: float) -> None:
    x = torch.rand(2, 3, *size)
    want = resize_by_ratio(x, ratio)
    got = resize_by_ratio_tensor(x, torch.tensor([ratio]))
    assert got.shape == want.shape
    assert (got - want).abs().max() <= (0 if ratio == 1 else 1e-6)


def test_ceil_pool_matches_the_model_pool() -> None:
    x = torch.rand(2, 3, 45, 67)
    want = torch.nn.AvgPool2d(2, 2, count_include_pad=False, ceil_mode=True)(x)
    assert torch.equal(CeilAvgPool()(x), want)


def test_perturbed_weight_in_the_saved_file_fails(artifact: Path, tmp_path: Path) -> None:
    extra = {METADATA_KEY: ""}
    program = torch.export.load(str(artifact), extra_files=extra)
    with torch.no_grad():
        program.state_dict["net.decoder.decode1.gru.ih.0.weight"].mul_(1.02)
    path = tmp_path / "perturbed.pt2"
    torch.export.save(program, str(path), extra_files=extra)
    report = verify_artifact(path, **BROKEN)
    assert not report.passed
    assert {f.output for f in report.failures} >= {"pha", "r1o"}


class IgnoresState(Pt2MattingNetwork):
    """Broken: takes the recurrent inputs but always runs as on a first frame."""

    def forward(self, src: Tensor, r1i: Tensor, r2i: Tensor, r3i: Tensor, r4i: Tensor, downsample_ratio: Tensor):
        zero = torch.zeros(1, 1, 1, 1, dtype=src.dtype) + 0 * (r1i.sum() + r2i.sum() + r3i.sum() + r4i.sum())
        return super().forward(src, zero, zero, zero, zero, downsample_ratio)


def test_ignored_recurrent_input_fails_and_metadata_is_required(tmp_path: Path, weights_path: Path) -> None:
    source = load_source(weights_path)
    program = export_program(IgnoresState(source.model))
    path = tmp_path / "stateless.pt2"
    torch.export.save(program, str(path), extra_files={METADATA_KEY: source.metadata("pt2", "fp32").to_json()})
    report = verify_artifact(path, **BROKEN)
    assert not report.passed
    assert min(f.frame for f in report.failures) == 1, "frame 0 is identical; the drift starts at frame 1"

    bare = tmp_path / "bare.pt2"  # the same program saved without metadata is refused as bad input
    torch.export.save(program, str(bare))
    result = CliRunner().invoke(verify_main, [str(bare)])
    assert result.exit_code == 2 and "carries no rvm_metadata.json" in result.output


def test_documented_snippet_runs_as_written(artifact: Path, tmp_path: Path, monkeypatch, real_model) -> None:
    (tmp_path / "rvm_mobilenetv3_fp32.pt2").symlink_to(artifact)
    frames = [torch.from_numpy(f) for f in build_sequence(Case(128, 96, 1, 0.25, 3))]
    scope = run_documented_snippet("pt2.md", frames, tmp_path, monkeypatch)
    assert scope["pha"].shape == (1, 1, 96, 128)
    assert np.abs(scope["pha"].numpy() - last_reference_pha(real_model, frames, 0.25)).max() < 2e-3
