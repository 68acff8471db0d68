"""MobileNetV3-Large encoder as RVM uses it.

The layout (``features.N.block.M...``) follows torchvision's MobileNetV3 so the official
checkpoints load strictly, but nothing here imports torchvision. RVM's changes to the
classifier network: the last stage is dilated (stride 1, dilation 2) so the deepest
feature map stays at 1/16, the classifier head is dropped, and ImageNet normalisation
happens inside the encoder.
"""

from typing import List, NamedTuple

import torch
from torch import Tensor, nn

from ._frames import fold_time, unfold_time

# torchvision's convention for MobileNetV3; it changes the numbers, so it is part of the contract.
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


class BlockSpec(NamedTuple):
    in_ch: int
    kernel: int
    expanded: int
    out_ch: int
    squeeze_excite: bool
    hardswish: bool
    stride: int
    dilation: int


# MobileNetV3-Large with RVM's dilated last stage. The encoder taps features[1], [3], [6] and [16] (the head).
LARGE_BLOCKS = [
    BlockSpec(16, 3, 16, 16, False, False, 1, 1),
    BlockSpec(16, 3, 64, 24, False, False, 2, 1),
    BlockSpec(24, 3, 72, 24, False, False, 1, 1),
    BlockSpec(24, 5, 72, 40, True, False, 2, 1),
    BlockSpec(40, 5, 120, 40, True, False, 1, 1),
    BlockSpec(40, 5, 120, 40, True, False, 1, 1),
    BlockSpec(40, 3, 240, 80, False, True, 2, 1),
    BlockSpec(80, 3, 200, 80, False, True, 1, 1),
    BlockSpec(80, 3, 184, 80, False, True, 1, 1),
    BlockSpec(80, 3, 184, 80, False, True, 1, 1),
    BlockSpec(80, 3, 480, 112, True, True, 1, 1),
    BlockSpec(112, 3, 672, 112, True, True, 1, 1),
    BlockSpec(112, 5, 672, 160, True, True, 2, 2),
    BlockSpec(160, 5, 960, 160, True, True, 1, 2),
    BlockSpec(160, 5, 960, 160, True, True, 1, 2),
]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without losing more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNAct(nn.Sequential):
    """conv -> BN -> optional activation, indexed 0/1/2 like torchvision's Conv2dNormActivation."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        activation: nn.Module | None = None,
    ) -> None:
        padding = (kernel - 1) // 2 * dilation
        layers: List[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch, eps=BN_EPS, momentum=BN_MOMENTUM),
        ]
        if activation is not None:
            layers.append(activation)
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: global average -> fc1 -> ReLU -> fc2 -> hardsigmoid -> scale."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scale = nn.functional.adaptive_avg_pool2d(x, 1)
        scale = torch.relu(self.fc1(scale))
        scale = nn.functional.hardsigmoid(self.fc2(scale))
        return x * scale


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (kxk, maybe dilated) -> optional SE -> project (1x1), plus residual."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        act = nn.Hardswish if spec.hardswish else nn.ReLU
        # A dilated stage keeps its resolution: dilation replaces the stride.
        stride = 1 if spec.dilation > 1 else spec.stride
        layers: List[nn.Module] = []
        if spec.expanded != spec.in_ch:
            layers.append(ConvBNAct(spec.in_ch, spec.expanded, 1, activation=act()))
        layers.append(
            ConvBNAct(
                spec.expanded,
                spec.expanded,
                spec.kernel,
                stride=stride,
                groups=spec.expanded,
                dilation=spec.dilation,
                activation=act(),
            )
        )
        if spec.squeeze_excite:
            layers.append(SqueezeExcite(spec.expanded, make_divisible(spec.expanded // 4)))
        layers.append(ConvBNAct(spec.expanded, spec.out_ch, 1))
        self.block = nn.Sequential(*layers)
        self.use_residual = spec.stride == 1 and spec.in_ch == spec.out_ch

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        if self.use_residual:
            y = y + x
        return y


class MobileNetV3LargeEncoder(nn.Module):
    """Returns features at 1/2 (16 ch), 1/4 (24), 1/8 (40) and 1/16 (960) of the input."""

    def __init__(self) -> None:
        super().__init__()
        first = LARGE_BLOCKS[0].in_ch
        last = LARGE_BLOCKS[-1].out_ch
        layers: List[nn.Module] = [ConvBNAct(3, first, 3, stride=2, activation=nn.Hardswish())]
        layers += [InvertedResidual(spec) for spec in LARGE_BLOCKS]
        layers.append(ConvBNAct(last, 6 * last, 1, activation=nn.Hardswish()))
        self.features = nn.Sequential(*layers)
        # Not persistent: the official checkpoints have no such keys.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> List[Tensor]:
        x, t = fold_time(x)
        x = (x - self.mean) / self.std
        taps: List[Tensor] = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == 1 or i == 3 or i == 6 or i == 16:
                taps.append(unfold_time(x, t))
        return taps
