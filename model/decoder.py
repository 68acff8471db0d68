"""The recurrent decoder: four ConvGRU states (r1..r4) carried from frame to frame.

Every block takes [B,C,H,W] or [B,T,C,H,W]. Convolutions run on all frames at once
(time folded into the batch); only the ConvGRU steps through time. Recurrent states are
always 4-D, and with T frames only the state after the last frame is returned.
"""

from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._frames import fold_time, unfold_time


def upsample2x_to(x: Tensor, height: int, width: int) -> Tensor:
    """Bilinear 2x upsampling (align_corners=False), cropped to the skip connection's size
    so odd input sizes line up."""
    x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    return x[:, :, :height, :width]


class ConvGRU(nn.Module):
    """Convolutional GRU. Gate order in ``ih``: reset first, then update."""

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        self.channels = channels
        self.ih = nn.Sequential(nn.Conv2d(2 * channels, 2 * channels, kernel, padding=kernel // 2), nn.Sigmoid())
        self.hh = nn.Sequential(nn.Conv2d(2 * channels, channels, kernel, padding=kernel // 2), nn.Tanh())

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        reset, update = self.ih(torch.cat([x, h], dim=1)).split(self.channels, dim=1)
        candidate = self.hh(torch.cat([x, reset * h], dim=1))
        return (1 - update) * h + update * candidate

    def forward(self, x: Tensor, h: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        frame_shape = [x.size(0), x.size(-3), x.size(-2), x.size(-1)]
        if h is None:
            h = torch.zeros(frame_shape, dtype=x.dtype, device=x.device)
        else:
            # Accepts the [1,1,1,1] zero tensor that exported models take as their first state.
            h = h.expand(frame_shape)
        if x.dim() == 4:
            h = self.step(x, h)
            return h, h
        outputs: List[Tensor] = []
        for xt in x.unbind(1):
            h = self.step(xt, h)
            outputs.append(h)
        return torch.stack(outputs, 1), h

    def on_second_half(self, x: Tensor, h: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """Run on the second half of the channels only; the first half passes through."""
        dim = x.dim() - 3
        a, b = x.split(self.channels, dim=dim)
        b, h = self.forward(b, h)
        return torch.cat([a, b], dim=dim), h


class BottleneckBlock(nn.Module):
    """Deepest level (1/16): a ConvGRU over half of the LR-ASPP features."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gru = ConvGRU(channels // 2)

    def forward(self, x: Tensor, r: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        return self.gru.on_second_half(x, r)


class UpsamplingBlock(nn.Module):
    """Upsample, concatenate encoder features and the pooled source, conv-BN-ReLU, then a ConvGRU."""

    def __init__(self, in_ch: int, skip_ch: int, src_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch + skip_ch + src_ch, out_ch, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(True),
        )
        self.gru = ConvGRU(out_ch // 2)

    def forward(self, x: Tensor, f: Tensor, s: Tensor, r: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        x, t = fold_time(x)
        f, _ = fold_time(f)
        s, _ = fold_time(s)
        x = upsample2x_to(x, s.size(2), s.size(3))
        x = self.conv(torch.cat([x, f, s], dim=1))
        return self.gru.on_second_half(unfold_time(x, t), r)


class OutputBlock(nn.Module):
    """Back to full (downsampled-input) resolution: upsample, concatenate the source, two conv-BN-ReLUs."""

    def __init__(self, in_ch: int, src_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch + src_ch, out_ch, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(True),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(True),
        )

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        x, t = fold_time(x)
        s, _ = fold_time(s)
        x = upsample2x_to(x, s.size(2), s.size(3))
        return unfold_time(self.conv(torch.cat([x, s], dim=1)), t)


class SourcePyramid(nn.Module):
    """The source image average-pooled to 1/2, 1/4, 1/8 (ceil mode, padding not counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.avgpool = nn.AvgPool2d(2, 2, count_include_pad=False, ceil_mode=True)

    def forward(self, s0: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        s0, t = fold_time(s0)
        s1 = self.avgpool(s0)
        s2 = self.avgpool(s1)
        s3 = self.avgpool(s2)
        return unfold_time(s1, t), unfold_time(s2, t), unfold_time(s3, t)


class RecurrentDecoder(nn.Module):
    def __init__(self, feature_ch: List[int], decoder_ch: List[int]) -> None:
        super().__init__()
        self.avgpool = SourcePyramid()
        self.decode4 = BottleneckBlock(feature_ch[3])
        self.decode3 = UpsamplingBlock(feature_ch[3], feature_ch[2], 3, decoder_ch[0])
        self.decode2 = UpsamplingBlock(decoder_ch[0], feature_ch[1], 3, decoder_ch[1])
        self.decode1 = UpsamplingBlock(decoder_ch[1], feature_ch[0], 3, decoder_ch[2])
        self.decode0 = OutputBlock(decoder_ch[2], 3, decoder_ch[3])

    def forward(
        self,
        s0: Tensor,
        f1: Tensor,
        f2: Tensor,
        f3: Tensor,
        f4: Tensor,
        r1: Optional[Tensor],
        r2: Optional[Tensor],
        r3: Optional[Tensor],
        r4: Optional[Tensor],
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        s1, s2, s3 = self.avgpool(s0)
        x4, r4 = self.decode4(f4, r4)
        x3, r3 = self.decode3(x4, f3, s3, r3)
        x2, r2 = self.decode2(x3, f2, s2, r2)
        x1, r1 = self.decode1(x2, f1, s1, r1)
        return self.decode0(x1, s0), r1, r2, r3, r4


class Projection(nn.Module):
    """1x1 conv head (``project_mat``: fgr residual + alpha; ``project_seg``: segmentation logit)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        x, t = fold_time(x)
        return unfold_time(self.conv(x), t)
