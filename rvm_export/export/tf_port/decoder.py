"""LR-ASPP, the recurrent decoder and the projection heads, channels-last (``model/decoder.py``).

Recurrent states are broadcast to the frame's shape, so the first frame may pass a scalar 0
(the documented ``tf.constant(0.)``) or a [1,1,1,1] zero tensor."""

from typing import List, Tuple

import tensorflow as tf

from .layers import BatchNorm, Block, Conv2d, Registry, avgpool_ceil, upsample2x_to


class LRASPP(Block):
    def __init__(self, registry: Registry, in_ch: int, out_ch: int, prefix: str = "aspp") -> None:
        super().__init__(registry, prefix)
        self.conv1 = Conv2d(registry, self.key("aspp1.0"), in_ch, out_ch, 1, bias=False)
        self.bn1 = BatchNorm(registry, self.key("aspp1.1"), out_ch)
        self.conv2 = Conv2d(registry, self.key("aspp2.1"), in_ch, out_ch, 1, bias=False)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        gate = tf.sigmoid(self.conv2(tf.reduce_mean(x, axis=[1, 2], keepdims=True)))
        return tf.nn.relu(self.bn1(self.conv1(x))) * gate


class ConvGRU(Block):
    """Gate order in ``ih``: reset first, then update."""

    def __init__(self, registry: Registry, prefix: str, channels: int) -> None:
        super().__init__(registry, prefix)
        self.channels = channels
        self.ih = Conv2d(registry, self.key("ih.0"), 2 * channels, 2 * channels, 3, padding=1)
        self.hh = Conv2d(registry, self.key("hh.0"), 2 * channels, channels, 3, padding=1)

    def __call__(self, x: tf.Tensor, h: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(x)
        h = tf.broadcast_to(h, [shape[0], shape[1], shape[2], self.channels])
        reset, update = tf.split(tf.sigmoid(self.ih(tf.concat([x, h], -1))), 2, axis=-1)
        candidate = tf.tanh(self.hh(tf.concat([x, reset * h], -1)))
        return (1.0 - update) * h + update * candidate

    def on_second_half(self, x: tf.Tensor, h: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        a, b = tf.split(x, 2, axis=-1)
        h = self(b, h)
        return tf.concat([a, h], -1), h


class UpsamplingBlock(Block):
    def __init__(self, registry: Registry, prefix: str, in_ch: int, skip_ch: int, src_ch: int, out_ch: int) -> None:
        super().__init__(registry, prefix)
        self.conv = Conv2d(registry, self.key("conv.0"), in_ch + skip_ch + src_ch, out_ch, 3, padding=1, bias=False)
        self.bn = BatchNorm(registry, self.key("conv.1"), out_ch)
        self.gru = ConvGRU(registry, self.key("gru"), out_ch // 2)

    def __call__(self, x: tf.Tensor, f: tf.Tensor, s: tf.Tensor, r: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        size = tf.shape(s)
        x = upsample2x_to(x, size[1], size[2])
        x = tf.nn.relu(self.bn(self.conv(tf.concat([x, f, s], -1))))
        return self.gru.on_second_half(x, r)


class OutputBlock(Block):
    def __init__(self, registry: Registry, prefix: str, in_ch: int, src_ch: int, out_ch: int) -> None:
        super().__init__(registry, prefix)
        self.conv1 = Conv2d(registry, self.key("conv.0"), in_ch + src_ch, out_ch, 3, padding=1, bias=False)
        self.bn1 = BatchNorm(registry, self.key("conv.1"), out_ch)
        self.conv2 = Conv2d(registry, self.key("conv.3"), out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = BatchNorm(registry, self.key("conv.4"), out_ch)

    def __call__(self, x: tf.Tensor, s: tf.Tensor) -> tf.Tensor:
        size = tf.shape(s)
        x = upsample2x_to(x, size[1], size[2])
        x = tf.nn.relu(self.bn1(self.conv1(tf.concat([x, s], -1))))
        return tf.nn.relu(self.bn2(self.conv2(x)))


class RecurrentDecoder(Block):
    def __init__(
        self, registry: Registry, feature_ch: List[int], decoder_ch: List[int], prefix: str = "decoder"
    ) -> None:
        super().__init__(registry, prefix)
        self.decode4 = ConvGRU(registry, self.key("decode4.gru"), feature_ch[3] // 2)
        self.decode3 = UpsamplingBlock(registry, self.key("decode3"), feature_ch[3], feature_ch[2], 3, decoder_ch[0])
        self.decode2 = UpsamplingBlock(registry, self.key("decode2"), decoder_ch[0], feature_ch[1], 3, decoder_ch[1])
        self.decode1 = UpsamplingBlock(registry, self.key("decode1"), decoder_ch[1], feature_ch[0], 3, decoder_ch[2])
        self.decode0 = OutputBlock(registry, self.key("decode0"), decoder_ch[2], 3, decoder_ch[3])

    def __call__(
        self, s0: tf.Tensor, features: List[tf.Tensor], states: List[tf.Tensor]
    ) -> Tuple[tf.Tensor, List[tf.Tensor]]:
        f1, f2, f3, f4 = features
        r1, r2, r3, r4 = states
        s1 = avgpool_ceil(s0)
        s2 = avgpool_ceil(s1)
        s3 = avgpool_ceil(s2)
        x4, r4 = self.decode4.on_second_half(f4, r4)
        x3, r3 = self.decode3(x4, f3, s3, r3)
        x2, r2 = self.decode2(x3, f2, s2, r2)
        x1, r1 = self.decode1(x2, f1, s1, r1)
        return self.decode0(x1, s0), [r1, r2, r3, r4]
