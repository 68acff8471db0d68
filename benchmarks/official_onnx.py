"""Build an ONNX file the way the official RVM ``onnx`` branch does, as the baseline users already have.

    .venv/bin/python benchmarks/official_onnx.py --checkpoint PTH --output official.onnx [--precision fp32|fp16]

What makes it "official-style" (read from the official ``export_onnx.py`` and ``model/onnx_helper.py``,
re-stated here, nothing copied): the plain model traced by ``torch.onnx.export`` at opset 12 with
constant folding, the same input/output names and dynamic axes, the downsample a ``Resize`` whose
scales are ``Concat(1, 1, r, r)`` of the runtime ``downsample_ratio`` (``pytorch_half_pixel``), and the
refiner **always** run (no ``If``: at ratio 1 it still refines, the official export's known deviation).
No simplifier, no metadata (the official files carry none), default ONNX Runtime session options when
run. fp16 is the whole model in half precision, guided filter included, like the official fp16 files.
"""

import argparse
import warnings
from pathlib import Path
from typing import List, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from model import MattingNetwork, load_checkpoint
from rvm_export.contract import INPUT_NAMES, OUTPUT_NAMES

OPSET = 12


class _ResizeByRuntimeRatio(torch.autograd.Function):
    """The official export's runtime-ratio downsample: ``Resize(x, roi=[], scales=[1, 1, r, r])``."""

    @staticmethod
    def forward(ctx: object, x: Tensor, ratio: Tensor) -> Tensor:
        r = float(ratio.reshape(-1)[0])
        return F.interpolate(x, scale_factor=r, mode="bilinear", align_corners=False, recompute_scale_factor=False)

    @staticmethod
    def symbolic(g, x, ratio):
        scales = g.op("Concat", g.op("Constant", value_t=torch.ones(2)), ratio, ratio, axis_i=0)
        roi = g.op("Constant", value_t=torch.zeros(0))
        return g.op("Resize", x, roi, scales, mode_s="linear", coordinate_transformation_mode_s="pytorch_half_pixel")


class OfficialStyle(nn.Module):
    """``MattingNetwork.forward`` as the official onnx branch exports it: refiner always included."""

    def __init__(self, net: MattingNetwork) -> None:
        super().__init__()
        self.net = net

    def forward(self, src: Tensor, r1: Tensor, r2: Tensor, r3: Tensor, r4: Tensor, ratio: Tensor) -> List[Tensor]:
        net = self.net
        src_sm = _ResizeByRuntimeRatio.apply(src, ratio)
        f1, f2, f3, f4 = net.backbone(src_sm)
        hid, *rec = net.decoder(src_sm, f1, f2, f3, net.aspp(f4), r1, r2, r3, r4)
        fgr_residual, pha = net.project_mat(hid).split([3, 1], dim=-3)
        fgr_residual, pha = net.refiner(src, src_sm, fgr_residual, pha, hid)
        return [(fgr_residual + src).clamp(0.0, 1.0), pha.clamp(0.0, 1.0), *rec]


def export_official_style(checkpoint: Path, output: Path, precision: str = "fp32") -> Path:
    """Write the official-style file (no metadata: ``rvm-bench``/``rvm-verify`` read it with ``--checkpoint``)."""
    net = load_checkpoint(checkpoint).eval()
    dtype = torch.float16 if precision == "fp16" else torch.float32
    net = net.to(dtype)
    rec = (torch.zeros(1, 1, 1, 1, dtype=dtype),) * 4
    src = torch.rand(1, 3, 1080, 1920, dtype=dtype)
    spatial = {0: "batch_size", 2: "height", 3: "width"}
    everything = {0: "batch_size", 1: "channels", 2: "height", 3: "width"}
    axes = {name: spatial for name in ("src", "fgr", "pha", "r1o", "r2o", "r3o", "r4o")}
    axes |= {name: everything for name in ("r1i", "r2i", "r3i", "r4i")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(
            OfficialStyle(net),
            (src, *rec, torch.tensor([0.25])),
            str(output),
            dynamo=False,
            export_params=True,
            opset_version=OPSET,
            do_constant_folding=True,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=axes,
        )
    return output


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--precision", choices=["fp32", "fp16"], default="fp32")
    parser.add_argument(
        "--metadata", action="store_true", help="Stamp rvm-export's metadata (official files have none)."
    )
    args = parser.parse_args(argv)
    print(f"wrote {export_official_style(args.checkpoint, args.output, args.precision)}")


if __name__ == "__main__":
    main()
