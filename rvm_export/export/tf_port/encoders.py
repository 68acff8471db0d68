"""MobileNetV3-Large and ResNet-50 encoders, channels-last, mirroring ``model/mobilenetv3.py``
and ``model/resnet.py`` (same block specs, same state_dict keys)."""

from typing import List

import tensorflow as tf

from model.mobilenetv3 import BN_EPS, IMAGENET_MEAN, IMAGENET_STD, LARGE_BLOCKS, BlockSpec, make_divisible

from .layers import BatchNorm, Block, Conv2d, Registry, hardsigmoid, hardswish


def _normalize(x: tf.Tensor) -> tf.Tensor:
    return (x - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


class ConvBNAct(Block):
    """conv -> BN (eps 1e-3) -> optional activation; keys ``.0`` (conv) and ``.1`` (BN)."""

    def __init__(
        self,
        registry: Registry,
        prefix: str,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        depthwise: bool = False,
        dilation: int = 1,
        act: str = "none",
    ) -> None:
        super().__init__(registry, prefix)
        padding = (kernel - 1) // 2 * dilation
        self.conv = Conv2d(
            registry, self.key("0"), in_ch, out_ch, kernel, stride, padding, dilation, depthwise, bias=False
        )
        self.bn = BatchNorm(registry, self.key("1"), out_ch, BN_EPS)
        self.act = act

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        x = self.bn(self.conv(x))
        if self.act == "relu":
            return tf.nn.relu(x)
        if self.act == "hardswish":
            return hardswish(x)
        return x


class SqueezeExcite(Block):
    def __init__(self, registry: Registry, prefix: str, channels: int, squeezed: int) -> None:
        super().__init__(registry, prefix)
        self.fc1 = Conv2d(registry, self.key("fc1"), channels, squeezed, 1)
        self.fc2 = Conv2d(registry, self.key("fc2"), squeezed, channels, 1)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        scale = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        return x * hardsigmoid(self.fc2(tf.nn.relu(self.fc1(scale))))


class InvertedResidual(Block):
    def __init__(self, registry: Registry, prefix: str, spec: BlockSpec) -> None:
        super().__init__(registry, prefix)
        act = "hardswish" if spec.hardswish else "relu"
        stride = 1 if spec.dilation > 1 else spec.stride
        self.layers: List[tf.Module] = []
        i = 0
        if spec.expanded != spec.in_ch:
            self.layers.append(ConvBNAct(registry, self.key(f"block.{i}"), spec.in_ch, spec.expanded, 1, act=act))
            i += 1
        self.layers.append(
            ConvBNAct(
                registry,
                self.key(f"block.{i}"),
                spec.expanded,
                spec.expanded,
                spec.kernel,
                stride,
                depthwise=True,
                dilation=spec.dilation,
                act=act,
            )
        )
        i += 1
        if spec.squeeze_excite:
            self.layers.append(
                SqueezeExcite(registry, self.key(f"block.{i}"), spec.expanded, make_divisible(spec.expanded // 4))
            )
            i += 1
        self.layers.append(ConvBNAct(registry, self.key(f"block.{i}"), spec.expanded, spec.out_ch, 1))
        self.use_residual = spec.stride == 1 and spec.in_ch == spec.out_ch

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        y = x
        for layer in self.layers:
            y = layer(y)
        return y + x if self.use_residual else y


class MobileNetV3LargeEncoder(Block):
    """Features at 1/2 (16), 1/4 (24), 1/8 (40), 1/16 (960)."""

    def __init__(self, registry: Registry, prefix: str = "backbone") -> None:
        super().__init__(registry, prefix)
        first, last = LARGE_BLOCKS[0].in_ch, LARGE_BLOCKS[-1].out_ch
        self.features: List[tf.Module] = [
            ConvBNAct(registry, self.key("features.0"), 3, first, 3, stride=2, act="hardswish")
        ]
        for i, spec in enumerate(LARGE_BLOCKS, start=1):
            self.features.append(InvertedResidual(registry, self.key(f"features.{i}"), spec))
        n = len(self.features)
        self.features.append(ConvBNAct(registry, self.key(f"features.{n}"), last, 6 * last, 1, act="hardswish"))

    def __call__(self, x: tf.Tensor) -> List[tf.Tensor]:
        x = _normalize(x)
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in (1, 3, 6, 16):
                taps.append(x)
        return taps


class Bottleneck(Block):
    expansion = 4

    def __init__(
        self, registry: Registry, prefix: str, in_ch: int, width: int, stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__(registry, prefix)
        out_ch = width * self.expansion
        self.conv1 = Conv2d(registry, self.key("conv1"), in_ch, width, 1, bias=False)
        self.bn1 = BatchNorm(registry, self.key("bn1"), width)
        self.conv2 = Conv2d(registry, self.key("conv2"), width, width, 3, stride, dilation, dilation, bias=False)
        self.bn2 = BatchNorm(registry, self.key("bn2"), width)
        self.conv3 = Conv2d(registry, self.key("conv3"), width, out_ch, 1, bias=False)
        self.bn3 = BatchNorm(registry, self.key("bn3"), out_ch)
        self.down_conv = self.down_bn = None
        if stride != 1 or in_ch != out_ch:
            self.down_conv = Conv2d(registry, self.key("downsample.0"), in_ch, out_ch, 1, stride, bias=False)
            self.down_bn = BatchNorm(registry, self.key("downsample.1"), out_ch)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        y = tf.nn.relu(self.bn1(self.conv1(x)))
        y = tf.nn.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = self.down_bn(self.down_conv(x)) if self.down_conv is not None else x
        return tf.nn.relu(y + shortcut)


class ResNet50Encoder(Block):
    """Features at 1/2 (64), 1/4 (256), 1/8 (512), 1/16 (2048); layer4 dilated."""

    def __init__(self, registry: Registry, prefix: str = "backbone") -> None:
        super().__init__(registry, prefix)
        self.conv1 = Conv2d(registry, self.key("conv1"), 3, 64, 7, 2, 3, bias=False)
        self.bn1 = BatchNorm(registry, self.key("bn1"), 64)
        self.layer1 = self._stage(registry, "layer1", 64, 64, 3, 1, False)
        self.layer2 = self._stage(registry, "layer2", 256, 128, 4, 2, False)
        self.layer3 = self._stage(registry, "layer3", 512, 256, 6, 2, False)
        self.layer4 = self._stage(registry, "layer4", 1024, 512, 3, 2, True)

    def _stage(
        self, registry: Registry, name: str, in_ch: int, width: int, blocks: int, stride: int, dilate: bool
    ) -> List[Bottleneck]:
        first_stride, rest_dilation = (1, stride) if dilate else (stride, 1)
        out_ch = width * Bottleneck.expansion
        stage = [Bottleneck(registry, self.key(f"{name}.0"), in_ch, width, first_stride, 1)]
        stage += [
            Bottleneck(registry, self.key(f"{name}.{i}"), out_ch, width, 1, rest_dilation) for i in range(1, blocks)
        ]
        return stage

    def __call__(self, x: tf.Tensor) -> List[tf.Tensor]:
        # No ImageNet normalisation here, as in the official ResNet50 encoder (MobileNetV3's has one).
        f1 = tf.nn.relu(self.bn1(self.conv1(x)))
        # Max pool 3x3/2 with padding 1: the input is >= 0 (after ReLU), so zero padding equals -inf padding.
        x = tf.nn.max_pool2d(tf.pad(f1, [[0, 0], [1, 1], [1, 1], [0, 0]]), 3, 2, "VALID")
        for block in self.layer1:
            x = block(x)
        f2 = x
        for block in self.layer2:
            x = block(x)
        f3 = x
        for block in self.layer3 + self.layer4:
            x = block(x)
        return [f1, f2, f3, x]
