"""Can ONNX fp16 drop its fp32 refiner island? Exports the real MobileNetV3 weights to ONNX fp16
three ways and verifies each with ONNX Runtime against PyTorch fp32:

  island   the exporter's default: the fast guided filter computes in fp32 inside the fp16 graph
  naive    the refiner in fp16 as PyTorch writes it (var = E[x²] - E[x]²)
  centred  the refiner in fp16 with moments about the local mean (as export/tensorflow/guided_filter.py)

Usage: .venv/bin/python benchmarks/experiments/refiner_fp16.py [--frames 4]
An experiment only: the refiners here replace ``model.refiner`` for the export; model/ and the ONNX
exporter are unchanged.
"""

import argparse
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from model import half_precision
from model._frames import fold_time
from model.guided_filter import box_filter, resize_to, split_fgr_pha, with_grey
from rvm_export.export.base import load_source
from rvm_export.export.onnx import export_onnx
from rvm_export.runtimes import open_runner
from rvm_export.runtimes.torch_runner import reference_model
from rvm_export.verify.harness import verify_runner
from rvm_export.verify.sequence import Case

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO.parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"
CASES = [Case(320, 192, 1, 0.5, 4), Case(257, 319, 1, 0.375, 4), Case(512, 288, 1, 0.25, 4)]


def centred_moments(x: Tensor, y: Tensor, mean_x: Tensor, mean_y: Tensor, radius: int) -> "tuple[Tensor, Tensor]":
    """Box-filter cov and var about each window's mean: the (2r+1)^2 taps unfolded, then averaged."""
    size = 2 * radius + 1
    b, c, h, w = x.shape
    taps_x = F.unfold(x, size, padding=radius).view(b, c, size * size, h, w)
    taps_y = F.unfold(y, size, padding=radius).view(b, c, size * size, h, w)
    dx, dy = taps_x - mean_x.unsqueeze(2), taps_y - mean_y.unsqueeze(2)
    return (dx * dy).mean(2), (dx * dx).mean(2)


class Fp16FastGuidedFilter(nn.Module):
    """The fast guided filter computed in the input's dtype (no fp32 island)."""

    def __init__(self, centred: bool, radius: int = 1, eps: float = 1e-5) -> None:
        super().__init__()
        self.centred, self.radius, self.eps = centred, radius, eps

    def forward(self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor, base_hid: Tensor):
        dtype = fine_src.dtype
        fine_src, t = fold_time(fine_src)
        base_src, _ = fold_time(base_src)
        base_fgr, _ = fold_time(base_fgr)
        base_pha, _ = fold_time(base_pha)
        x = with_grey(base_src)
        y = torch.cat([base_fgr, base_pha], dim=1)
        mean_x = box_filter(x, self.radius)
        mean_y = box_filter(y, self.radius)
        if self.centred:
            cov_xy, var_x = centred_moments(x, y, mean_x, mean_y, self.radius)
        else:
            cov_xy = box_filter(x * y, self.radius) - mean_x * mean_y
            var_x = box_filter(x * x, self.radius) - mean_x * mean_x
        a = cov_xy / (var_x + self.eps)
        b = mean_y - a * mean_x
        out = resize_to(a, fine_src) * with_grey(fine_src) + resize_to(b, fine_src)
        return split_fgr_pha(out, dtype, t)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=4)
    args = parser.parse_args()
    cases = [Case(c.width, c.height, c.batch, c.ratio, args.frames) for c in CASES]
    source = load_source(WEIGHTS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("island", "naive", "centred"):
            model = half_precision(load_source(WEIGHTS).model)
            if name != "island":
                model.refiner = Fp16FastGuidedFilter(centred=name == "centred")
            path = Path(tmp) / f"{name}_fp16.onnx"
            export_onnx(model, path, source.metadata("onnx", "fp16", opset=17))
            runner = open_runner(path, "cpu")
            results = verify_runner(runner, reference_model(runner.metadata), cases)
            for result in results:
                pha = [s for s in result.stats if s.output == "pha"]
                rows.append(
                    (
                        name,
                        result.case.label,
                        max(s.max_abs for s in pha),
                        max(s.q999 for s in pha),
                        max(a.mad_1e3 for a in result.alpha),
                        "pass" if not result.failures else f"FAIL ({len(result.failures)})",
                    )
                )
    print(f"ONNX fp16 (ONNX Runtime CPU), real weights, {args.frames} frames; error against PyTorch fp32")
    print(f"{'refiner':<9}{'case':<24}{'pha max':>9}{'q99.9':>9}{'MAD x1e3':>10}  fp16 gate")
    for name, label, worst, q999, mad, verdict in rows:
        print(f"{name:<9}{label:<24}{worst:>9.2e}{q999:>9.2e}{mad:>10.2f}  {verdict}")


if __name__ == "__main__":
    main()
