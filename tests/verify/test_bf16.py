"""bf16: the network in bfloat16 with the refiner in fp32 passes the bf16 gate (its own noise model: PyTorch
at the same recipe against fp32); the naive recipe, the guided filter in bfloat16 as well, fails it.

PyTorch computes bfloat16 natively on CPUs with AMX or AVX512-BF16 and emulates it elsewhere, with the
same numbers, so these tests run on any CPU (slowly: hence the small case)."""

import copy
from pathlib import Path

import torch
from torch import Tensor

from model.guided_filter import FastGuidedFilterRefiner, box_filter, resize_to, split_fgr_pha, with_grey
from model.network import half_precision
from rvm_export.contract.metadata import ArtifactMetadata
from rvm_export.export.torchscript import export_torchscript
from rvm_export.verify.api import verify_artifact
from tests.helpers import WEIGHTS, export_artifact

CASE = dict(frames=2, sizes=[(128, 96)], ratios=[0.5])


class NaiveGuidedFilter(FastGuidedFilterRefiner):
    """The fast guided filter computed in its inputs' dtype (no promotion to fp32): the naive recipe."""

    def forward(self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor, base_hid: Tensor):
        dtype = fine_src.dtype
        x = with_grey(base_src)
        y = torch.cat([base_fgr, base_pha], dim=1)
        mean_x = box_filter(x, self.radius)
        mean_y = box_filter(y, self.radius)
        cov_xy = box_filter(x * y, self.radius) - mean_x * mean_y
        var_x = box_filter(x * x, self.radius) - mean_x * mean_x
        a = cov_xy / (var_x + self.eps)
        b = mean_y - a * mean_x
        out = resize_to(a, fine_src) * with_grey(fine_src) + resize_to(b, fine_src)
        return split_fgr_pha(out, dtype, 1)


def test_a_bf16_torchscript_passes_the_bf16_gate(tmp_path: Path) -> None:
    path = tmp_path / "rvm_bf16.torchscript"
    export_artifact("torchscript", "--checkpoint", WEIGHTS, "--precision", "bf16", "--output", path)
    report = verify_artifact(path, **CASE)
    assert report.metadata.precision == "bf16"
    assert report.passed, report.table()


def test_the_guided_filter_in_bf16_fails_the_bf16_gate(real_model, source, tmp_path: Path) -> None:
    naive = half_precision(copy.deepcopy(real_model), torch.bfloat16)
    naive.refiner = NaiveGuidedFilter()
    path = tmp_path / "naive_bf16.torchscript"
    metadata: ArtifactMetadata = source.metadata("torchscript", "bf16", freeze=False)
    export_torchscript(naive, path, metadata, freeze=False)
    report = verify_artifact(path, **CASE)
    assert not report.passed
    assert any(f.output == "pha" for f in report.failures), report.table()
