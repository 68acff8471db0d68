"""torch.export target (``.pt2``): an ExportedProgram that ``torch.export.load`` runs without this project.

The program keeps what TorchScript users rely on: dynamic batch, height and width, and the
``downsample_ratio`` as a runtime input (a float32 tensor of shape ``[1]``). ``torch.export``
traces shapes symbolically, so the parts of ``MattingNetwork`` whose Python control flow or
output sizes depend on the ratio's *value* are restated here (model/ stays export-agnostic):

* The downsample (:func:`resize_by_ratio_tensor`): its output size ``floor(size * r)`` is data
  dependent, and ``F.interpolate`` takes the scale only as a Python float. It is written as the
  bilinear kernel PyTorch uses with ``recompute_scale_factor=False`` (source index
  ``max((d + 0.5) / r - 0.5, 0)``), in tensor ops: measured against ``F.interpolate``, at most
  2e-7 apart, and exactly the input at ratio 1.
* The ceil-mode average pooling of the source pyramid (:class:`CeilAvgPool`): with a
  data-dependent size, PyTorch's ceil-mode shape rule guards on the size's parity, which an
  exported program cannot. Written as zero-padding plus a floor-mode pool divided by the pooled
  count of valid pixels (count_include_pad=False): the same numbers.
* The recurrent state broadcast (:class:`ExportConvGRU`): ``expand`` of a ``[1,1,1,1]`` first-frame
  state would specialise the state's shape at export time. Nearest-neighbour resampling to the
  frame's state shape is an exact broadcast of a ``[1,1,1,1]`` zero and an exact identity for a
  full state, so both work with one graph.
* The refiner skip at ratio exactly 1.0: ``torch.cond`` cannot carry the data-dependent sizes
  here (its branches must agree on shapes), so both results are computed and
  ``torch.where(ratio == 1, unrefined, refined)`` selects one: exact (a select, no arithmetic);
  the cost is running the refiner at ratio 1 too, where PyTorch skips it.
"""

import copy
import io
from pathlib import Path
from typing import List, Optional, Tuple

import click
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from model import MattingNetwork, param_dtype
from model.decoder import ConvGRU
from rvm_export.contract import METADATA_KEY, ArtifactMetadata

from .base import PRECISIONS, ModelSource, at_precision, atomic_output
from .cli import export_with, output_option, source_options

SUFFIX = ".pt2"
MIN_SIZE = 16  # frames smaller than this (after the ratio) leave no pixels at the 1/16 level


def _axis(size_in: int, size_out: int, ratio: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Source indices and weights of PyTorch's bilinear resize (align_corners=False) along one axis,
    with the scale given (``recompute_scale_factor=False``): source = max((d + 0.5) / r - 0.5, 0)."""
    scale = 1.0 / ratio.float()
    dst = torch.arange(size_out, dtype=torch.float32, device=ratio.device)
    src = ((dst + 0.5) * scale - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=size_in - 1)
    i1 = (i0 + 1).clamp(max=size_in - 1)
    w1 = src - i0
    return i0, i1, 1 - w1, w1


def resize_by_ratio_tensor(x: Tensor, ratio: Tensor) -> Tensor:
    """``model.network.resize_by_ratio`` with the ratio a tensor: output size floor(size * r)."""
    height, width = x.shape[2], x.shape[3]
    out_h = torch.floor(height * ratio.float()).long().item()
    out_w = torch.floor(width * ratio.float()).long().item()
    torch._check(out_h >= MIN_SIZE)
    torch._check(out_w >= MIN_SIZE)
    y0, y1, wy0, wy1 = _axis(height, out_h, ratio)
    x0, x1, wx0, wx1 = _axis(width, out_w, ratio)
    dtype = x.dtype
    rows = x.index_select(2, y0) * wy0.to(dtype).view(-1, 1) + x.index_select(2, y1) * wy1.to(dtype).view(-1, 1)
    return rows.index_select(3, x0) * wx0.to(dtype) + rows.index_select(3, x1) * wx1.to(dtype)


class CeilAvgPool(nn.Module):
    """``AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)`` without a parity-dependent shape rule."""

    def forward(self, x: Tensor) -> Tensor:
        summed = F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 2, 2)
        valid = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), (0, 1, 0, 1)), 2, 2)
        return summed / valid


def broadcast_state(h: Tensor, shape: List[int]) -> Tensor:
    """``h`` ([1,1,1,1] or exactly ``shape``) as a tensor of ``shape``, by nearest resampling: an exact
    broadcast of a single value, an exact identity for a full state, and no shape specialisation."""
    b, c, height, width = shape
    h = F.interpolate(h, size=[height, width], mode="nearest")
    flat = h.reshape(1, 1, h.shape[0], h.shape[1], height * width)
    return F.interpolate(flat, size=[b, c, height * width], mode="nearest").reshape(b, c, height, width)


class ExportConvGRU(nn.Module):
    """``model.decoder.ConvGRU`` (same weights) with :func:`broadcast_state` instead of ``expand``."""

    def __init__(self, gru: ConvGRU) -> None:
        super().__init__()
        self.channels = gru.channels
        self.ih = gru.ih
        self.hh = gru.hh

    step = ConvGRU.step
    on_second_half = ConvGRU.on_second_half

    def forward(self, x: Tensor, h: Tensor) -> Tuple[Tensor, Tensor]:
        h = broadcast_state(h, [x.size(0), x.size(1), x.size(2), x.size(3)])
        h = self.step(x, h)
        return h, h


def upsample2x_narrow(x: Tensor, height: int, width: int) -> Tensor:
    """``model.decoder.upsample2x_to`` cropping with ``narrow``: the same values, but the result's size is
    exactly (height, width) instead of ``min(2 * size, height)``. With slicing, the program carries nested
    min() size expressions through every level, and ``torch.export.load`` took 85 s to parse them."""
    x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    return x.narrow(2, 0, height).narrow(3, 0, width)


class NarrowUpsamplingBlock(nn.Module):
    """``model.decoder.UpsamplingBlock`` (same modules, 4-D frames) cropping with :func:`upsample2x_narrow`."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.conv, self.gru = block.conv, block.gru

    def forward(self, x: Tensor, f: Tensor, s: Tensor, r: Tensor) -> Tuple[Tensor, Tensor]:
        x = upsample2x_narrow(x, s.size(2), s.size(3))
        return self.gru.on_second_half(self.conv(torch.cat([x, f, s], dim=1)), r)


class NarrowOutputBlock(nn.Module):
    """``model.decoder.OutputBlock`` (same modules, 4-D frames) cropping with :func:`upsample2x_narrow`."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.conv = block.conv

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        return self.conv(torch.cat([upsample2x_narrow(x, s.size(2), s.size(3)), s], dim=1))


class Pt2MattingNetwork(nn.Module):
    """``MattingNetwork.forward`` (matting pass, 4-D frames) with a tensor ``downsample_ratio``."""

    def __init__(self, net: MattingNetwork) -> None:
        super().__init__()
        net = copy.deepcopy(net)  # re-stated by module substitution on a copy: model/ stays as it is
        decoder = net.decoder
        decoder.avgpool.avgpool = CeilAvgPool()
        for block in (decoder.decode4, decoder.decode3, decoder.decode2, decoder.decode1):
            block.gru = ExportConvGRU(block.gru)
        for name in ("decode3", "decode2", "decode1"):
            setattr(decoder, name, NarrowUpsamplingBlock(getattr(decoder, name)))
        decoder.decode0 = NarrowOutputBlock(decoder.decode0)
        self.net = net

    def forward(
        self, src: Tensor, r1i: Tensor, r2i: Tensor, r3i: Tensor, r4i: Tensor, downsample_ratio: Tensor
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        net = self.net
        src_sm = resize_by_ratio_tensor(src, downsample_ratio)  # exactly src at ratio 1
        f1, f2, f3, f4 = net.backbone(src_sm)
        f4 = net.aspp(f4)
        hid, r1, r2, r3, r4 = net.decoder(src_sm, f1, f2, f3, f4, r1i, r2i, r3i, r4i)
        fgr_residual, pha = net.project_mat(hid).split([3, 1], dim=-3)
        refined = torch.cat(net.refiner(src, src_sm, fgr_residual, pha, hid), dim=1)
        # At ratio 1, src_sm is src and this resize is the identity; otherwise its value is not selected.
        unrefined = F.interpolate(torch.cat([fgr_residual, pha], dim=1), size=[src.size(2), src.size(3)])
        is_one = (downsample_ratio.reshape(1, 1, 1, 1) == 1.0).to(src.device)
        fgr_residual, pha = torch.where(is_one, unrefined, refined).split([3, 1], dim=1)
        fgr = (fgr_residual + src).clamp(0.0, 1.0)
        return fgr, pha.clamp(0.0, 1.0), r1, r2, r3, r4


def export_program(wrapper: Pt2MattingNetwork) -> torch.export.ExportedProgram:
    """``torch.export`` of ``wrapper`` (its model already at the target precision), dynamic batch/height/width."""
    wrapper = wrapper.eval()
    model = wrapper.net
    dtype = param_dtype(model)
    batch = torch.export.Dim("batch", min=1, max=1024)
    height = torch.export.Dim("height", min=MIN_SIZE, max=16384)
    width = torch.export.Dim("width", min=MIN_SIZE, max=16384)
    # Example states of full shape and batch 2: sizes 1 would be specialised (0/1 specialisation).
    src = torch.rand(2, 3, 144, 256, generator=torch.Generator().manual_seed(0)).to(dtype)  # stored: seeded
    ratio = torch.tensor([0.5], dtype=torch.float32)
    with torch.inference_mode():
        states = [torch.zeros_like(r) for r in wrapper(src, *[torch.zeros(1, 1, 1, 1, dtype=dtype)] * 4, ratio)[2:]]
    state_dims = []
    for i in range(1, 5):
        dims = ("batch", "channels", "height", "width")
        state_dims.append({d: torch.export.Dim(f"r{i}_{name}", min=1, max=16384) for d, name in enumerate(dims)})
    dynamic_shapes = ({0: batch, 2: height, 3: width}, *state_dims, None)
    args = (src, *states, ratio)
    with torch.no_grad():
        return torch.export.export(wrapper, args, dynamic_shapes=dynamic_shapes, strict=False)


def export_pt2(model: MattingNetwork, output: str | Path, metadata: ArtifactMetadata) -> Path:
    """Export ``model`` to an ExportedProgram file (``torch.export.save``) with the metadata inside."""
    program = export_program(Pt2MattingNetwork(model))
    buffer = io.BytesIO()  # to a path, torch names the archive's top folder after the (temporary) file
    torch.export.save(program, buffer, extra_files={METADATA_KEY: metadata.to_json()})
    with atomic_output(output) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return Path(output)


@click.command("pt2")
@source_options
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@output_option
def command(source: ModelSource, precision: str, output: Optional[str]) -> None:
    """torch.export program (.pt2) with a runtime downsample_ratio; loads with torch.export.load alone."""
    model = at_precision(source.model, precision)
    export_with(
        source, "pt2", output, lambda out, meta: export_pt2(model, out, meta), precision, {"precision": precision}
    )


__all__ = ["SUFFIX", "Pt2MattingNetwork", "export_program", "export_pt2"]
