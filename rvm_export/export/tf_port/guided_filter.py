"""Guided-filter refiners, channels-last (``model/guided_filter.py``).

Local moments are taken about the local mean, not as E[x²] - E[x]²: in real arithmetic the two
are equal (below), but the naive form cancels catastrophically wherever the image is flat. In
float32 that costs ~1e-7, harmless; on runtimes that store intermediate tensors in float16 (TF.js
WebGL with half-float textures, which many phones give) the naive variance of a flat patch is
rounding noise of ~1e-4, ten times the filter's eps = 1e-5, and single alpha pixels come out
wrong by up to 1.0 (docs/tfjs.md). Centred moments keep a relative error of a few fp16 ulps.

For box weights w_k over a window with weighted mean m = Σ w_k x_k and W = Σ w_k:

    Σ w_k x_k y_k - m_x m_y = Σ w_k (x_k - m_x)(y_k - m_y) + (1 - W) m_x m_y

an identity for any weights (W = 1 for the fast filter's mean; the deep filter's learned box
need not sum to 1, so the second term keeps the port exact there too). The window values x_k
are gathered with a one-hot depthwise convolution (exact copies, zero padded like the box
filter) and the weighted sum over taps is a 1x1 convolution: plain NHWC ops every runtime has.
"""

import numpy as np
import tensorflow as tf

from .layers import BatchNorm, Block, Conv2d, Registry, resize_to

CHANNELS = 4  # RGB + grey (guide) and fgr + alpha (target)


def with_grey(x: tf.Tensor) -> tf.Tensor:
    return tf.concat([x, tf.reduce_mean(x, axis=-1, keepdims=True)], -1)


def box_filter(x: tf.Tensor, radius: int) -> tf.Tensor:
    """Zero-padded (2r+1)^2 mean as two separable depthwise convolutions (4 channels)."""
    size = 2 * radius + 1
    kx = tf.fill([1, size, CHANNELS, 1], 1.0 / size)
    ky = tf.fill([size, 1, CHANNELS, 1], 1.0 / size)
    x = tf.nn.depthwise_conv2d(x, kx, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(x, ky, [1, 1, 1, 1], "SAME")


class LocalMoments:
    """Covariance and variance over each pixel's size x size window, weighted per channel and
    tap by ``weights`` ([size, size, C, 1], a depthwise kernel), computed about the window's mean."""

    def __init__(self, weights: tf.Tensor, size: int) -> None:
        taps = size * size
        self.size, self.taps = size, taps
        one_hot = np.eye(taps, dtype=np.float32).reshape(size, size, 1, taps)
        self.gather = tf.constant(np.tile(one_hot, [1, 1, CHANNELS, 1]))  # channel c*taps + k = tap k of c
        self.repeat = tf.ones([1, 1, CHANNELS, taps])  # channel c*taps + k = channel c
        # [C*taps, C] block-diagonal: sums channel c's taps with weight w[c, k]
        per_tap = tf.reshape(tf.transpose(weights[..., 0], [2, 0, 1]), [CHANNELS * taps, 1])
        blocks = np.kron(np.eye(CHANNELS, dtype=np.float32), np.ones([taps, 1], np.float32))
        self.reduce = tf.reshape(per_tap * blocks, [1, 1, CHANNELS * taps, CHANNELS])
        self.deficit = 1.0 - tf.reduce_sum(weights, axis=[0, 1, 3])  # 1 - W per channel

    def deviations(self, x: tf.Tensor, mean: tf.Tensor) -> tf.Tensor:
        """x_k - m(p) for every tap k of every pixel p: [B, H, W, C*taps]."""
        taps = tf.nn.depthwise_conv2d(x, self.gather, [1, 1, 1, 1], "SAME")
        return taps - tf.nn.depthwise_conv2d(mean, self.repeat, [1, 1, 1, 1], "SAME")

    def weighted_sum(self, taps: tf.Tensor) -> tf.Tensor:
        return tf.nn.conv2d(taps, self.reduce, [1, 1, 1, 1], "VALID")

    def __call__(
        self, x: tf.Tensor, y: tf.Tensor, mean_x: tf.Tensor, mean_y: tf.Tensor
    ) -> "tuple[tf.Tensor, tf.Tensor]":
        dx, dy = self.deviations(x, mean_x), self.deviations(y, mean_y)
        cov_xy = self.weighted_sum(dx * dy) + self.deficit * mean_x * mean_y
        var_x = self.weighted_sum(dx * dx) + self.deficit * mean_x * mean_x
        return cov_xy, var_x


def naive_moments(
    box: "callable", x: tf.Tensor, y: tf.Tensor, mean_x: tf.Tensor, mean_y: tf.Tensor
) -> "tuple[tf.Tensor, tf.Tensor]":
    """E[xy] - E[x]E[y] and E[x²] - E[x]², as the PyTorch model writes them (fine in float32)."""
    return box(x * y) - mean_x * mean_y, box(x * x) - mean_x * mean_x


def _apply(a: tf.Tensor, b: tf.Tensor, fine_src: tf.Tensor) -> "tuple[tf.Tensor, tf.Tensor]":
    size = tf.shape(fine_src)
    out = resize_to(a, size[1], size[2]) * with_grey(fine_src) + resize_to(b, size[1], size[2])
    return out[..., :3], out[..., 3:]


class FastGuidedFilterRefiner(Block):
    """``naive_moments=True`` builds the PyTorch formulation, which fails on float16 textures
    (kept to show that the verifier catches it)."""

    def __init__(self, registry: Registry, radius: int = 1, eps: float = 1e-5, naive_moments: bool = False) -> None:
        super().__init__(registry, "refiner")
        self.radius, self.eps, self.naive_moments = radius, eps, naive_moments

    def __call__(
        self, fine_src: tf.Tensor, base_src: tf.Tensor, base_fgr: tf.Tensor, base_pha: tf.Tensor, base_hid: tf.Tensor
    ) -> "tuple[tf.Tensor, tf.Tensor]":
        x = with_grey(base_src)
        y = tf.concat([base_fgr, base_pha], -1)
        mean_x = box_filter(x, self.radius)
        mean_y = box_filter(y, self.radius)
        if self.naive_moments:
            cov_xy, var_x = naive_moments(lambda v: box_filter(v, self.radius), x, y, mean_x, mean_y)
        else:
            size = 2 * self.radius + 1
            weights = tf.fill([size, size, CHANNELS, 1], (1.0 / size) ** 2)
            cov_xy, var_x = LocalMoments(weights, size)(x, y, mean_x, mean_y)
        a = cov_xy / (var_x + self.eps)
        return _apply(a, mean_y - a * mean_x, fine_src)


class DeepGuidedFilterRefiner(Block):
    def __init__(self, registry: Registry, hid_ch: int = 16, naive_moments: bool = False) -> None:
        super().__init__(registry, "refiner")
        self.naive_moments = naive_moments
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
        if self.naive_moments:
            cov_xy, var_x = naive_moments(self.box, x, y, mean_x, mean_y)
        else:
            # Built per call: the box weights are variables, filled in after construction.
            cov_xy, var_x = LocalMoments(self.box.weight, 3)(x, y, mean_x, mean_y)
        h = tf.nn.relu(self.bn1(self.conv1(tf.concat([cov_xy, var_x, base_hid], -1))))
        h = tf.nn.relu(self.bn2(self.conv2(h)))
        a = self.conv3(h)
        return _apply(a, mean_y - a * mean_x, fine_src)
