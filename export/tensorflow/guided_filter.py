"""Guided-filter refiners, channels-last (``model/guided_filter.py``); float32 throughout."""

import tensorflow as tf

from .layers import BatchNorm, Block, Conv2d, Registry, resize_to


def with_grey(x: tf.Tensor) -> tf.Tensor:
    return tf.concat([x, tf.reduce_mean(x, axis=-1, keepdims=True)], -1)


def box_filter(x: tf.Tensor, radius: int) -> tf.Tensor:
    """Zero-padded (2r+1)^2 mean as two separable depthwise convolutions (4 channels)."""
    size = 2 * radius + 1
    kx = tf.fill([1, size, 4, 1], 1.0 / size)
    ky = tf.fill([size, 1, 4, 1], 1.0 / size)
    x = tf.nn.depthwise_conv2d(x, kx, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(x, ky, [1, 1, 1, 1], "SAME")


def _apply(a: tf.Tensor, b: tf.Tensor, fine_src: tf.Tensor) -> "tuple[tf.Tensor, tf.Tensor]":
    size = tf.shape(fine_src)
    out = resize_to(a, size[1], size[2]) * with_grey(fine_src) + resize_to(b, size[1], size[2])
    return out[..., :3], out[..., 3:]


class FastGuidedFilterRefiner(Block):
    def __init__(self, registry: Registry, radius: int = 1, eps: float = 1e-5) -> None:
        super().__init__(registry, "refiner")
        self.radius, self.eps = radius, eps

    def __call__(
        self, fine_src: tf.Tensor, base_src: tf.Tensor, base_fgr: tf.Tensor, base_pha: tf.Tensor, base_hid: tf.Tensor
    ) -> "tuple[tf.Tensor, tf.Tensor]":
        x = with_grey(base_src)
        y = tf.concat([base_fgr, base_pha], -1)
        mean_x = box_filter(x, self.radius)
        mean_y = box_filter(y, self.radius)
        cov_xy = box_filter(x * y, self.radius) - mean_x * mean_y
        var_x = box_filter(x * x, self.radius) - mean_x * mean_x
        a = cov_xy / (var_x + self.eps)
        return _apply(a, mean_y - a * mean_x, fine_src)


class DeepGuidedFilterRefiner(Block):
    def __init__(self, registry: Registry, hid_ch: int = 16) -> None:
        super().__init__(registry, "refiner")
        self.box = Conv2d(registry, self.key("box_filter"), 4, 4, 3, padding=1, depthwise=True, bias=False)
        self.conv1 = Conv2d(registry, self.key("conv.0"), 8 + hid_ch, hid_ch, 1, bias=False)
        self.bn1 = BatchNorm(registry, self.key("conv.1"), hid_ch)
        self.conv2 = Conv2d(registry, self.key("conv.3"), hid_ch, hid_ch, 1, bias=False)
        self.bn2 = BatchNorm(registry, self.key("conv.4"), hid_ch)
        self.conv3 = Conv2d(registry, self.key("conv.6"), hid_ch, 4, 1)

    def __call__(
        self, fine_src: tf.Tensor, base_src: tf.Tensor, base_fgr: tf.Tensor, base_pha: tf.Tensor, base_hid: tf.Tensor
    ) -> "tuple[tf.Tensor, tf.Tensor]":
        x = with_grey(base_src)
        y = tf.concat([base_fgr, base_pha], -1)
        mean_x = self.box(x)
        mean_y = self.box(y)
        cov_xy = self.box(x * y) - mean_x * mean_y
        var_x = self.box(x * x) - mean_x * mean_x
        h = tf.nn.relu(self.bn1(self.conv1(tf.concat([cov_xy, var_x, base_hid], -1))))
        h = tf.nn.relu(self.bn2(self.conv2(h)))
        a = self.conv3(h)
        return _apply(a, mean_y - a * mean_x, fine_src)
