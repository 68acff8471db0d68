"""Lite R-ASPP: a 1x1 conv branch gated by a global-context branch (from MobileNetV3's segmentation head)."""

from torch import Tensor, nn

from ._frames import fold_time, unfold_time


class LRASPP(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.aspp1 = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(True))
        self.aspp2 = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        x, t = fold_time(x)
        return unfold_time(self.aspp1(x) * self.aspp2(x), t)
