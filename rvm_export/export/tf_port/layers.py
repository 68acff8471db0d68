"""Channels-last building blocks that reproduce PyTorch's numerics in TensorFlow.

Every weight is a ``tf.Variable`` registered under its PyTorch state_dict key, so weight
transfer (see ``weights.py``) is a name lookup plus a layout transpose, and a missing or
extra weight is caught by comparing key sets.

Padding is explicit (``tf.pad`` + VALID) wherever TensorFlow's SAME would differ from
PyTorch's symmetric padding (strided convolutions on even sizes).
"""

from typing import Dict, Optional

import tensorflow as tf


class Registry:
    """PyTorch key -> (variable, kind); kind tells weights.py how to re-lay the tensor out.

    A plain object on purpose: TensorFlow's object tracking does not descend into it. A dict
    shared by every block would make each block "own" every variable, and SavedModel saving
    walks that quadratically (minutes instead of seconds)."""

    def __init__(self) -> None:
        self.entries: Dict[str, tuple[Optional[tf.Variable], str]] = {}

    def __setitem__(self, key: str, value: "tuple[Optional[tf.Variable], str]") -> None:
        self.entries[key] = value


class Block(tf.Module):
    """A tf.Module that knows its PyTorch key prefix and shares one registry with its parent."""

    def __init__(self, registry: Registry, prefix: str) -> None:
        super().__init__()
        self._registry = registry
        self._prefix = prefix

    def key(self, name: str) -> str:
        return f"{self._prefix}.{name}" if self._prefix else name

    def variable(self, name: str, shape: "list[int]", kind: str) -> tf.Variable:
        key = self.key(name)
        var = tf.Variable(tf.zeros(shape), trainable=False, name=key.replace(".", "_"))
        self._registry[key] = (var, kind)
        return var


class Conv2d(Block):
    """PyTorch Conv2d (symmetric zero padding, dilation, groups 1 or depthwise) in NHWC.

    Kinds: ``conv`` (weight [O,I,kh,kw] -> [kh,kw,I,O]) and ``depthwise`` ([C,1,kh,kw] -> [kh,kw,C,1])."""

    def __init__(
        self,
        registry: Registry,
        prefix: str,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        depthwise: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__(registry, prefix)
        self.stride, self.padding, self.dilation, self.depthwise = stride, padding, dilation, depthwise
        if depthwise:
            self.weight = self.variable("weight", [kernel, kernel, in_ch, 1], "depthwise")
        else:
            self.weight = self.variable("weight", [kernel, kernel, in_ch, out_ch], "conv")
        self.bias: Optional[tf.Variable] = self.variable("bias", [out_ch], "vector") if bias else None
        # Stride 1 with "same" padding is symmetric in TF too; anything else is padded explicitly.
        self.same = stride == 1 and 2 * padding == dilation * (kernel - 1)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        if self.same:
            pad = "SAME"
        else:
            p = self.padding
            if p:
                x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
            pad = "VALID"
        strides = [1, self.stride, self.stride, 1]
        dilations = [self.dilation, self.dilation]
        if self.depthwise:
            y = tf.nn.depthwise_conv2d(x, self.weight, strides, pad, dilations=dilations)
        else:
            y = tf.nn.conv2d(x, self.weight, strides, pad, dilations=dilations)
        if self.bias is not None:
            y = tf.nn.bias_add(y, self.bias)
        return y


class BatchNorm(Block):
    """Eval-mode BatchNorm2d with PyTorch's eps (1e-3 in MobileNetV3, 1e-5 elsewhere)."""

    def __init__(self, registry: Registry, prefix: str, channels: int, eps: float = 1e-5) -> None:
        super().__init__(registry, prefix)
        self.eps = eps
        self.weight = self.variable("weight", [channels], "vector")
        self.bias = self.variable("bias", [channels], "vector")
        self.running_mean = self.variable("running_mean", [channels], "vector")
        self.running_var = self.variable("running_var", [channels], "vector")
        registry[self.key("num_batches_tracked")] = (None, "ignored")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.batch_normalization(x, self.running_mean, self.running_var, self.bias, self.weight, self.eps)


def hardswish(x: tf.Tensor) -> tf.Tensor:
    return x * tf.nn.relu6(x + 3.0) / 6.0


def hardsigmoid(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.relu6(x + 3.0) / 6.0


def avgpool_ceil(x: tf.Tensor) -> tf.Tensor:
    """2x2 stride-2 average pool, ceil mode, padding not counted: TF's SAME pads only at the end
    and excludes the padding from the average, which is exactly PyTorch's behaviour here."""
    return tf.nn.avg_pool2d(x, 2, 2, "SAME")


def upsample2x_to(x: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Bilinear 2x (align_corners=False), cropped to the skip connection's size.

    For an exact 2x, TF's half-pixel-centre scale (in/out = 0.5) equals PyTorch's 1/scale_factor."""
    shape = tf.shape(x)
    x = tf.image.resize(x, [shape[1] * 2, shape[2] * 2], method="bilinear")
    return x[:, :height, :width, :]


def resize_to(x: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Bilinear resize to a given size: PyTorch and TF both sample with scale = in/out."""
    return tf.image.resize(x, [height, width], method="bilinear")


def _axis_sampling(size: tf.Tensor, ratio: tf.Tensor) -> "tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]":
    """Source indices and weights along one axis, as PyTorch's upsample_bilinear2d computes
    them when given a scale factor (recompute_scale_factor=False): output floor(size * ratio),
    src = max((dst + 0.5) / ratio - 0.5, 0), neighbours floor(src) and floor(src) + 1 (clamped)."""
    out = tf.cast(tf.floor(tf.cast(size, tf.float32) * ratio), tf.int32)
    scale = 1.0 / ratio
    src = tf.maximum((tf.cast(tf.range(out), tf.float32) + 0.5) * scale - 0.5, 0.0)
    lo = tf.cast(tf.floor(src), tf.int32)
    hi = tf.minimum(lo + 1, size - 1)
    weight_hi = src - tf.cast(lo, tf.float32)
    return lo, hi, 1.0 - weight_hi, weight_hi


def resize_by_ratio(x: tf.Tensor, ratio: tf.Tensor) -> tf.Tensor:
    """RVM's downsample with a runtime ratio, matching PyTorch's ``recompute_scale_factor=False``.

    Written here (gathers + weights) because ``tf.image.resize`` derives its scale from the
    sizes (in/out), which differs from sampling with the ratio itself when size*ratio is not
    an integer. At ratio 1 this is an exact copy (all high weights are 0)."""
    shape = tf.shape(x)
    lo, hi, w_lo, w_hi = _axis_sampling(shape[1], ratio)
    x = tf.gather(x, lo, axis=1) * w_lo[None, :, None, None] + tf.gather(x, hi, axis=1) * w_hi[None, :, None, None]
    lo, hi, w_lo, w_hi = _axis_sampling(shape[2], ratio)
    return tf.gather(x, lo, axis=2) * w_lo[None, None, :, None] + tf.gather(x, hi, axis=2) * w_hi[None, None, :, None]
