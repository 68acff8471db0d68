"""Guided-filter refiners: predict at low resolution, refine to full resolution.

Both refiners fit a local linear model ``y ~ A * x + b`` between the low-resolution source
(plus its grey channel) and the predicted (fgr, alpha), upsample A and b bilinearly, and
apply them to the full-resolution source.

Precision: the fast guided filter divides by ``var(x) + 1e-5``. In fp16 the variance of a
flat patch is pure rounding noise, so single alpha pixels come out wrong by up to 1.0.
The fast refiner (no weights) therefore computes in float32 at least (float64 in a float64 model,
which the verifier runs to measure float32's own rounding); the deep refiner computes
in the dtype of its own weights, which :func:`model.network.half_precision` keeps in float32.
The result is cast back to the model's dtype. In a float32 model the casts are no-ops, so
the numbers are exactly the official implementation's.
"""

from typing import Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._frames import fold_time, unfold_time


def with_grey(x: Tensor) -> Tensor:
    """Append the mean over RGB as a fourth channel (the guide for alpha)."""
    return torch.cat([x, x.mean(1, keepdim=True)], dim=1)


def box_filter(x: Tensor, radius: int) -> Tensor:
    """Mean over a (2r+1)^2 window, zero padded, as two separable depthwise convolutions."""
    size = 2 * radius + 1
    channels = int(x.shape[1])  # a Python int: fixed by the architecture, so traced graphs keep it constant
    kx = torch.full([channels, 1, 1, size], 1.0 / size, dtype=x.dtype, device=x.device)
    ky = torch.full([channels, 1, size, 1], 1.0 / size, dtype=x.dtype, device=x.device)
    x = F.conv2d(x, kx, padding=[0, radius], groups=channels)
    return F.conv2d(x, ky, padding=[radius, 0], groups=channels)


def resize_to(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, [like.size(2), like.size(3)], mode="bilinear", align_corners=False)


def split_fgr_pha(out: Tensor, dtype: torch.dtype, t: int) -> Tuple[Tensor, Tensor]:
    fgr, pha = out.to(dtype).split([3, 1], dim=1)
    return unfold_time(fgr, t), unfold_time(pha, t)


class FastGuidedFilterRefiner(nn.Module):
    """Fast guided filter (He et al.) with radius 1 and eps 1e-5; no learned weights."""

    def __init__(self, radius: int = 1, eps: float = 1e-5) -> None:
        super().__init__()
        self.radius = radius
        self.eps = eps

    def forward(
        self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor, base_hid: Tensor
    ) -> Tuple[Tensor, Tensor]:
        dtype = fine_src.dtype
        work = torch.promote_types(dtype, torch.float32)
        fine_src, t = fold_time(fine_src.to(work))
        base_src, _ = fold_time(base_src.to(work))
        base_fgr, _ = fold_time(base_fgr.to(work))
        base_pha, _ = fold_time(base_pha.to(work))
        x = with_grey(base_src)
        y = torch.cat([base_fgr, base_pha], dim=1)
        mean_x = box_filter(x, self.radius)
        mean_y = box_filter(y, self.radius)
        cov_xy = box_filter(x * y, self.radius) - mean_x * mean_y
        var_x = box_filter(x * x, self.radius) - mean_x * mean_x
        a = cov_xy / (var_x + self.eps)
        b = mean_y - a * mean_x
        out = resize_to(a, fine_src) * with_grey(fine_src) + resize_to(b, fine_src)
        return split_fgr_pha(out, dtype, t)


class DeepGuidedFilterRefiner(nn.Module):
    """Deep guided filter: a learned 3x3 box filter and a small 1x1-conv net predicting A from
    (cov, var, decoder hidden features). Computes in the dtype of its weights."""

    def __init__(self, hid_ch: int = 16) -> None:
        super().__init__()
        self.box_filter = nn.Conv2d(4, 4, kernel_size=3, padding=1, bias=False, groups=4)
        with torch.no_grad():
            self.box_filter.weight.fill_(1.0 / 9)
        self.conv = nn.Sequential(
            nn.Conv2d(4 * 2 + hid_ch, hid_ch, kernel_size=1, bias=False),
            nn.BatchNorm2d(hid_ch),
            nn.ReLU(True),
            nn.Conv2d(hid_ch, hid_ch, kernel_size=1, bias=False),
            nn.BatchNorm2d(hid_ch),
            nn.ReLU(True),
            nn.Conv2d(hid_ch, 4, kernel_size=1, bias=True),
        )

    def forward(
        self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor, base_hid: Tensor
    ) -> Tuple[Tensor, Tensor]:
        dtype = fine_src.dtype
        work = self.box_filter.weight.dtype
        fine_src, t = fold_time(fine_src.to(work))
        base_src, _ = fold_time(base_src.to(work))
        base_fgr, _ = fold_time(base_fgr.to(work))
        base_pha, _ = fold_time(base_pha.to(work))
        base_hid, _ = fold_time(base_hid.to(work))
        x = with_grey(base_src)
        y = torch.cat([base_fgr, base_pha], dim=1)
        mean_x = self.box_filter(x)
        mean_y = self.box_filter(y)
        cov_xy = self.box_filter(x * y) - mean_x * mean_y
        var_x = self.box_filter(x * x) - mean_x * mean_x
        a = self.conv(torch.cat([cov_xy, var_x, base_hid], dim=1))
        b = mean_y - a * mean_x
        out = resize_to(a, fine_src) * with_grey(fine_src) + resize_to(b, fine_src)
        return split_fgr_pha(out, dtype, t)
