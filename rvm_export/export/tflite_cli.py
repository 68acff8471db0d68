"""``rvm-export tflite``."""

from typing import Optional

import click

from .base import ModelSource
from .cli import default_output, output_option, source_options, user_errors


@click.command("tflite")
@source_options
@click.option(
    "--precision",
    type=click.Choice(["fp32"]),
    default="fp32",
    show_default=True,
    help="fp32 only: TFLite's fp16 and dynamic-range int8 conversions fail parity (measured: docs/tflite.md).",
)
@output_option
def command(source: ModelSource, precision: str, output: Optional[str]) -> None:
    """LiteRT (TFLite) flatbuffer (NHWC) with dynamic shapes and a runtime downsample_ratio."""
    from .tensorflow import from_torch
    from .tflite import export_tflite

    with user_errors():
        output = default_output(output, "tflite", source.model.variant, precision=precision)
        metadata = source.metadata("tflite", precision, "tensorflow", "ai-edge-litert")
        metadata.layout = "NHWC"
        path = export_tflite(from_torch(source.model), output, metadata, precision)
    click.echo(f"wrote {path}")
