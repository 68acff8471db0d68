"""``rvm-export onnx``."""

from typing import Optional, Tuple

import click

from .base import PRECISIONS, ExportError, ModelSource, at_precision
from .cli import default_output, output_option, source_options, user_errors
from .onnx import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, PACKAGES, check_opset, export_onnx


def parse_static(value: Optional[str]) -> Optional[Tuple[int, int]]:
    """'WIDTHxHEIGHT' -> (width, height)."""
    if value is None:
        return None
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise ExportError(f"--static {value!r} is not WIDTHxHEIGHT; pass e.g. --static 1920x1080")
    if width < 16 or height < 16:
        raise ExportError(f"--static {value}: width and height must be at least 16 pixels")
    return width, height


@click.command("onnx")
@source_options
@click.option("--precision", default="fp32", show_default=True, help=f"One of {', '.join(PRECISIONS)}.")
@click.option(
    "--opset", type=int, default=DEFAULT_OPSET, show_default=True, help=f"ONNX opset, {MIN_OPSET} to {MAX_OPSET}."
)
@click.option(
    "--static", "static", default=None, metavar="WxH", help="Fixed frame size (batch 1); needs --downsample-ratio."
)
@click.option("--downsample-ratio", type=float, default=None, help="The ratio baked into a --static artifact.")
@output_option
def command(
    source: ModelSource,
    precision: str,
    opset: int,
    static: Optional[str],
    downsample_ratio: Optional[float],
    output: Optional[str],
) -> None:
    """ONNX model for ONNX Runtime (and TensorRT/OpenVINO with --static)."""
    with user_errors():
        check_opset(opset)
        size = parse_static(static)
        model = at_precision(source.model, precision)
        options = {"opset": opset, "static": list(size) if size else None, "downsample_ratio": downsample_ratio}
        output = default_output(output, "onnx", source.model.variant, precision=precision, **options)
        metadata = source.metadata("onnx", precision, *PACKAGES, **options)
        path = export_onnx(model, output, metadata, opset, size, downsample_ratio)
    click.echo(f"wrote {path}")
