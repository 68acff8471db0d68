"""ResNet-50 encoder as RVM uses it.

Key layout follows torchvision's ResNet (``conv1``, ``bn1``, ``layerN.M.convK``, ``downsample``)
so the official checkpoint loads strictly; no torchvision import. RVM dilates ``layer4``
(stride 1, dilation 2), keeping the deepest features at 1/16, and drops the classifier.
"""

from typing import List

from torch import Tensor, nn

from ._frames import fold_time, unfold_time


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride/dilation) -> 1x1 expand (x4), with a projected shortcut when shapes change."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.downsample is not None:
            shortcut = self.downsample(x)
        return self.relu(y + shortcut)


def make_stage(in_ch: int, width: int, blocks: int, stride: int, dilate: bool) -> nn.Sequential:
    """A ResNet stage. When dilated, its stride becomes dilation for every block but the first
    (torchvision's ``replace_stride_with_dilation``)."""
    if dilate:
        first = Bottleneck(in_ch, width, 1, 1)
        rest_dilation = stride
    else:
        first = Bottleneck(in_ch, width, stride, 1)
        rest_dilation = 1
    out_ch = width * Bottleneck.expansion
    rest = [Bottleneck(out_ch, width, 1, rest_dilation) for _ in range(blocks - 1)]
    return nn.Sequential(first, *rest)


class ResNet50Encoder(nn.Module):
    """Returns features at 1/2 (64 ch), 1/4 (256), 1/8 (512) and 1/16 (2048) of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = make_stage(64, 64, 3, 1, False)
        self.layer2 = make_stage(256, 128, 4, 2, False)
        self.layer3 = make_stage(512, 256, 6, 2, False)
        self.layer4 = make_stage(1024, 512, 3, 2, True)

    def forward(self, x: Tensor) -> List[Tensor]:
        x, t = fold_time(x)
        # Unlike the MobileNetV3 encoder, the official ResNet50 encoder takes RGB 0..1 as it is: no
        # ImageNet normalisation (checked against the official implementation).
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer4(self.layer3(f3))
        return [unfold_time(f1, t), unfold_time(f2, t), unfold_time(f3, t), unfold_time(f4, t)]
