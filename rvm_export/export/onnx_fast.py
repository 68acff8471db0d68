"""The parts of the network that the ONNX export re-states for speed on ONNX Runtime's CPU provider.

Same math as ``model/`` (the verifier checks every artifact against the canonical model); only the
order of operations changes, for the two places where ONNX Runtime spends the time (measured with
its profiler, 1920x1080 at ratio 0.25, see docs/onnx.md):

* **Full resolution** (the guided filter's ``resize(A) * [src, grey] + resize(b)``, then ``+ src``
  and the clamps): the canonical form builds a 4-channel full-size guide (ReduceMean + Concat),
  multiplies, adds, splits it into fgr/pha and adds ``src`` again: eight passes over full-size
  tensors. Here the residual's ``+ src`` is folded into the low-resolution coefficient
  (``(A + 1) * src + b``), fgr and pha are computed separately (no full-size Concat/Split), and
  the grey channel is a channel sum (ONNX Runtime's ReduceMean over channels is twice as slow).
* **The decoder's 3x3 convolutions over concatenations** (``[upsampled, features, source]``, e.g.
  35, 59, 107, 171 channels) fall outside ONNX Runtime's blocked (NCHWc) convolution kernels,
  which want channel counts that are multiples of the SIMD block (8 with AVX2, 16 with AVX-512):
  they ran 3-10x slower per FLOP than the blocked ones. The pooled source is padded with zero
  channels and the weights with zero input channels so each concatenation is a multiple of 16.
  Zero weights times zero inputs add exact zeros: the sums are the same numbers. The last block
  (the largest, 35 channels at the low-resolution size) instead runs as two convolutions, over
  the upsampled features and over the source, summed: no concatenation at all.
* **Crops** after the 2x upsamplings are one ``Slice`` over both axes (the exporter writes one
  per axis, and ONNX Runtime copies the tensor in each).

The guided filter's four low-resolution box filters also run as one batched depthwise filter
over a 16-channel stack instead of four separate ones (same kernel, same order per channel).
"""

from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from model import MattingNetwork
from model.decoder import ConvGRU, OutputBlock, UpsamplingBlock
from model.guided_filter import DeepGuidedFilterRefiner, FastGuidedFilterRefiner, box_filter, resize_to, with_grey

CHANNEL_BLOCK = 16  # AVX-512's NCHWc block; a multiple of AVX2's 8 as well


class CropTo(torch.autograd.Function):
    """``x[:, :, :H, :W]`` with ``like``'s H, W; ONNX: one ``Slice`` over both axes.

    The exporter writes one Slice per indexed axis, and ONNX Runtime copies the tensor in each."""

    @staticmethod
    def forward(ctx: object, x: Tensor, like: Tensor) -> Tensor:
        return x[:, :, : like.size(2), : like.size(3)]

    @staticmethod
    def symbolic(g, x, like):
        def const(values):
            return g.op("Constant", value_t=torch.tensor(values, dtype=torch.int64))

        ends = g.op("Slice", g.op("Shape", like), const([2]), const([4]), const([0]))
        return g.op("Slice", x, const([0, 0]), ends, const([2, 3]))


def upsample2x_like(x: Tensor, like: Tensor) -> Tensor:
    """``model.decoder.upsample2x_to`` with the crop as one Slice."""
    return CropTo.apply(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False), like)


def padded_conv(block: nn.Sequential, extra_in: int) -> nn.Sequential:
    """A copy of ``conv -> BN -> ReLU`` whose conv takes ``extra_in`` more (zero-weighted) input channels."""
    conv = block[0]
    wide = nn.Conv2d(
        conv.in_channels + extra_in,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
    ).to(conv.weight.dtype)
    with torch.no_grad():
        wide.weight.zero_()
        wide.weight[:, : conv.in_channels] = conv.weight
        if conv.bias is not None:
            wide.bias.copy_(conv.bias)
    return nn.Sequential(wide, *block[1:]).eval()


def zero_channels(x: Tensor, extra: int) -> Tensor:
    """``x`` with ``extra`` zero channels appended (ONNX ``Pad``)."""
    return F.pad(x, [0, 0, 0, 0, 0, extra]) if extra else x


class FastDecoder(nn.Module):
    """``RecurrentDecoder.forward`` for 4-D frames, with block-aligned concatenations."""

    def __init__(self, net: MattingNetwork) -> None:
        super().__init__()
        dec = net.decoder
        self.dec = dec
        self.extra: List[int] = []
        convs = []
        for block in (dec.decode3, dec.decode2, dec.decode1):
            extra = -block.conv[0].in_channels % CHANNEL_BLOCK
            self.extra.append(extra)
            convs.append(padded_conv(block.conv, extra))
        self.convs = nn.ModuleList(convs)
        # decode0: conv(cat([x, s])) -> BN becomes conv(x) + conv(s) with the BN folded in (computed in
        # float32, stored in the model's dtype, as the exporter folds BNs): no 35-channel concatenation
        # at the largest low-resolution size, and both convolutions are block-aligned or tiny.
        conv, bn = dec.decode0.conv[0], dec.decode0.conv[1]
        dtype = conv.weight.dtype
        scale = bn.weight.float() / torch.sqrt(bn.running_var.float() + bn.eps)
        weight = (conv.weight.float() * scale.view(-1, 1, 1, 1)).detach()
        x_ch = conv.in_channels - 3
        self.register_buffer("out_w_x", weight[:, :x_ch].to(dtype).contiguous())
        self.register_buffer("out_w_s", weight[:, x_ch:].to(dtype).contiguous())
        self.register_buffer("out_bias", (bn.bias.float() - bn.running_mean.float() * scale).to(dtype).detach())

    def forward(
        self, s0: Tensor, f1: Tensor, f2: Tensor, f3: Tensor, f4: Tensor, r1: Tensor, r2: Tensor, r3: Tensor, r4: Tensor
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        dec = self.dec
        s1, s2, s3 = dec.avgpool(s0)
        x4, r4 = dec.decode4(f4, r4)
        x3, r3 = self._up(dec.decode3, 0, x4, f3, s3, r3)
        x2, r2 = self._up(dec.decode2, 1, x3, f2, s2, r2)
        x1, r1 = self._up(dec.decode1, 2, x2, f1, s1, r1)
        return self._out(dec.decode0, x1, s0), r1, r2, r3, r4

    def _up(self, block: UpsamplingBlock, i: int, x: Tensor, f: Tensor, s: Tensor, r: Tensor) -> Tuple[Tensor, Tensor]:
        x = upsample2x_like(x, s)
        x = self.convs[i](torch.cat([x, f, zero_channels(s, self.extra[i])], dim=1))
        return gru_on_second_half(block.gru, x, r)

    def _out(self, block: OutputBlock, x: Tensor, s: Tensor) -> Tensor:
        x = upsample2x_like(x, s)
        # conv(cat([x, s])) + BN as conv(x) + conv(s) with the BN folded in: no 35-channel concatenation.
        y = F.conv2d(x, self.out_w_x, self.out_bias, padding=1) + F.conv2d(s, self.out_w_s, None, padding=1)
        return block.conv[3:](torch.relu(y))


def gru_on_second_half(gru: ConvGRU, x: Tensor, h: Tensor) -> Tuple[Tensor, Tensor]:
    a, b = x.split(gru.channels, dim=1)
    h = gru.step(b, h.expand_as(b))
    return torch.cat([a, h], dim=1), h


def fast_gf_coefficients(refiner: FastGuidedFilterRefiner, src_sm: Tensor, mat: Tensor) -> Tuple[Tensor, Tensor]:
    """(A, b) of the fast guided filter at low resolution, float32: its four box filters as one."""
    x = with_grey(src_sm.float())
    y = mat.float()
    stats = box_filter(torch.cat([x, y, x * y, x * x], dim=1), refiner.radius)
    mean_x, mean_y, mean_xy, mean_xx = stats.split(4, dim=1)
    cov_xy = mean_xy - mean_x * mean_y
    var_x = mean_xx - mean_x * mean_x
    a = cov_xy / (var_x + refiner.eps)
    return a, mean_y - a * mean_x


def deep_gf_coefficients(refiner: DeepGuidedFilterRefiner, src_sm: Tensor, mat: Tensor, hid: Tensor):
    """(A, b) of the deep guided filter at low resolution, in the refiner's dtype (as the canonical one)."""
    work = refiner.box_filter.weight.dtype
    x = with_grey(src_sm.to(work))
    y = mat.to(work)
    mean_x = refiner.box_filter(x)
    mean_y = refiner.box_filter(y)
    cov_xy = refiner.box_filter(x * y) - mean_x * mean_y
    var_x = refiner.box_filter(x * x) - mean_x * mean_x
    a = refiner.conv(torch.cat([cov_xy, var_x, hid.to(work)], dim=1))
    return a, mean_y - a * mean_x


def channel_sum(x: Tensor) -> Tensor:
    """``x.sum(1, keepdim=True)`` as ``[1, 1, 1] @ x`` over the flattened pixels: the same three additions, in
    ONNX Runtime's multi-threaded GEMM instead of its ReduceSum (9.0 -> 4.9 ms at 1920x1080, 2 threads; a 1x1
    convolution took 28.6 ms, reordered to NCHWc and back)."""
    ones = torch.ones(1, int(x.shape[1]), dtype=x.dtype, device=x.device)
    return torch.matmul(ones, x.flatten(2)).reshape(x.shape[0], 1, x.shape[2], x.shape[3])


def refine_full_resolution(
    src: Tensor, a: Tensor, b: Tensor, dtype: torch.dtype, upsample: Optional[Callable[[Tensor, Tensor], Tensor]] = None
) -> Tuple[Tensor, Tensor]:
    """Final (fgr, pha), clamped: ``resize(A) * [src, grey] + resize(b)``, plus ``src`` for fgr.

    The canonical model adds ``src`` to the refined residual; ``(A + 1)`` adds it through the
    coefficient instead (bilinear weights sum to one, so ``resize(A + 1) == resize(A) + 1``).
    Full-size passes are what this stage costs (ONNX Runtime profile, docs/onnx.md): no cast where the
    dtype is already the right one (the exporter writes a full-size Cast for every ``.to``), and the
    channel sum as a MatMul (:func:`channel_sum`). ``upsample``: another form of ``resize_to`` (the
    experiments in benchmarks/experiments/full_res_stage.py)."""
    up = upsample or resize_to
    fine = src if src.dtype == a.dtype else src.to(a.dtype)
    a_rgb, a_grey = a.split([3, 1], dim=1)
    b_rgb, b_grey = b.split([3, 1], dim=1)
    fgr = up(a_rgb + 1, fine) * fine + up(b_rgb, fine)
    # mean(src) * A == sum(src) * (A / 3): the division moves to low resolution.
    grey_sum = channel_sum(fine)
    pha = up(a_grey / 3, fine) * grey_sum + up(b_grey, fine)
    fgr, pha = fgr.clamp(0.0, 1.0), pha.clamp(0.0, 1.0)
    return (fgr, pha) if fgr.dtype == dtype else (fgr.to(dtype), pha.to(dtype))


class FastRefiner(nn.Module):
    def __init__(self, net: MattingNetwork) -> None:
        super().__init__()
        self.refiner = net.refiner

    def forward(self, src: Tensor, src_sm: Tensor, mat: Tensor, hid: Tensor) -> Tuple[Tensor, Tensor]:
        if isinstance(self.refiner, FastGuidedFilterRefiner):
            a, b = fast_gf_coefficients(self.refiner, src_sm, mat)
        else:
            a, b = deep_gf_coefficients(self.refiner, src_sm, mat, hid)
        return refine_full_resolution(src, a, b, src.dtype)


def coarse_output(src: Tensor, mat: Tensor) -> Tuple[Tensor, Tensor]:
    """(fgr, pha) without the refiner (ratio 1), exactly as ``MattingNetwork.forward``."""
    fgr_residual, pha = mat.split([3, 1], dim=1)
    return (fgr_residual + src).clamp(0.0, 1.0), pha.clamp(0.0, 1.0)
