"""ExecuTorch target (``.pte``): the torch.export program lowered to ExecuTorch with the XNNPACK delegate.

``torch.export`` -> ``executorch.exir.to_edge_transform_and_lower`` with ``XnnpackPartitioner`` -> ``.pte``, the
file an Android or iOS app loads with ExecuTorch's runtime (docs/executorch.md). What is fixed at export:

* the frame size and the ``downsample_ratio`` (``--resolution W H --downsample-ratio R``): ExecuTorch plans every
  intermediate buffer ahead of time, and the runtime-ratio program of the ``.pt2`` target has sizes that depend on
  the ratio's value (``.item()``), which neither the memory planner nor XNNPACK can take. A phone's camera stream
  has one size, so the app exports the size it runs;
* batch 1, and the four recurrent states at their full shapes for that size: on the first frame the app feeds
  zeros of those shapes (no ``[1,1,1,1]`` placeholder: every input shape is static).

Inputs and outputs have no names in a ``.pte``: the order is ``src, r1i, r2i, r3i, r4i`` -> ``fgr, pha, r1o, r2o,
r3o, r4o``. The metadata document is the program's constant method ``rvm_metadata`` (ExecuTorch's documented
place for config values: ``constant_methods``), a string the runner reads from the flatbuffer as data.
"""

from pathlib import Path
from typing import Any, List, Optional, Tuple

import click
import torch
from torch import Tensor, nn

from model import MattingNetwork
from rvm_export.contract import ArtifactMetadata
from rvm_export.contract.metadata import METADATA_METHOD

from .base import ExportError, ModelSource, atomic_output
from .cli import export_with, output_option, source_options, user_errors

PRECISIONS = ("fp32",)
SUFFIX = ".pte"
MIN_SIDE = 16  # frames smaller than this (after the ratio) leave no pixels at the 1/16 level
MAX_SIDE = 8192


class ExecuTorchWrapper(nn.Module):
    """MattingNetwork with the ratio baked in and the states always given (full shapes)."""

    def __init__(self, model: MattingNetwork, ratio: float) -> None:
        super().__init__()
        self.m = model
        self.ratio = ratio

    def forward(self, src: Tensor, r1i: Tensor, r2i: Tensor, r3i: Tensor, r4i: Tensor) -> Tuple[Tensor, ...]:
        return tuple(self.m(src, r1i, r2i, r3i, r4i, downsample_ratio=self.ratio))


def check_case(width: int, height: int, ratio: float) -> Tuple[int, int, float]:
    """The frame size and ratio, refused with one line when the program could not be built for them."""
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ExportError(f"resolution {width}x{height} is outside 1..{MAX_SIDE}; pass WIDTH HEIGHT, e.g. 1280 720",
                          "resolution")  # fmt: skip
    if not 0 < ratio <= 1:
        raise ExportError(f"downsample ratio {ratio:g} is outside (0, 1]; pass e.g. 0.375", "downsample_ratio")
    if min(int(width * ratio), int(height * ratio)) < MIN_SIDE:
        raise ExportError(
            f"{width}x{height} at ratio {ratio:g} leaves fewer than {MIN_SIDE} pixels on a side; raise the ratio",
            "downsample_ratio",
        )
    return width, height, float(ratio)


def state_shapes(model: MattingNetwork, width: int, height: int, ratio: float) -> List[Tuple[int, ...]]:
    """Shapes of r1..r4 for one frame of ``width`` x ``height`` at ``ratio`` (what the first frame feeds as zeros)."""
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, height, width), downsample_ratio=ratio)
    return [tuple(t.shape) for t in out[2:]]


def exported_program(wrapper: nn.Module, width: int, height: int, ratio: float) -> Any:
    """``torch.export`` of ``wrapper`` at the fixed size (static shapes throughout)."""
    shapes = state_shapes(wrapper.m if hasattr(wrapper, "m") else wrapper, width, height, ratio)
    example = (torch.rand(1, 3, height, width), *[torch.zeros(s) for s in shapes])
    with torch.no_grad():
        return torch.export.export(wrapper.eval(), example)


def lower(program: Any, metadata: ArtifactMetadata) -> bytes:
    """The ExecuTorch program (XNNPACK delegate, portable kernels for the rest) as ``.pte`` bytes."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(
        program, partitioner=[XnnpackPartitioner()], constant_methods={METADATA_METHOD: metadata.to_json()}
    )
    return edge.to_executorch().buffer


def export_executorch(
    model: nn.Module, output: str | Path, metadata: ArtifactMetadata, width: int, height: int, ratio: float
) -> Path:
    """Export ``model`` (a MattingNetwork, or a module with the wrapper's signature) to ``output`` atomically."""
    output = Path(output)
    if output.suffix != SUFFIX:
        raise ExportError(f"an ExecuTorch program is saved as *{SUFFIX}, not {output.name}; fix the output path",
                          "output")  # fmt: skip
    wrapper = ExecuTorchWrapper(model.float().eval(), ratio) if isinstance(model, MattingNetwork) else model
    data = lower(exported_program(wrapper, width, height, ratio), metadata)
    with atomic_output(output) as tmp:
        Path(tmp).write_bytes(data)
    return output


@click.command("executorch")
@source_options
@click.option(
    "--resolution", nargs=2, type=int, required=True, metavar="WIDTH HEIGHT", help="Frame size baked into the program."
)
@click.option("--downsample-ratio", type=float, required=True, help="Baked in too (e.g. 0.375 for 1280x720).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@output_option
def command(
    source: ModelSource, resolution: tuple, downsample_ratio: float, precision: str, output: Optional[str]
) -> None:
    """ExecuTorch program (.pte, XNNPACK delegate) at a fixed frame size and ratio, for Android and iOS apps."""
    with user_errors():
        width, height, ratio = check_case(resolution[0], resolution[1], downsample_ratio)
    size = {"width": width, "height": height, "downsample_ratio": ratio}
    export_with(
        source,
        "executorch",
        output,
        lambda out, meta: export_executorch(source.model, out, meta, width, height, ratio),
        precision,
        {**size, "precision": precision},
        {**size, "state_shapes": [list(s) for s in state_shapes(source.model.float(), width, height, ratio)]},
    )


__all__ = ["PRECISIONS", "SUFFIX", "ExecuTorchWrapper", "check_case", "export_executorch", "state_shapes"]
