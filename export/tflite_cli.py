"""``rvm-export tflite``."""

import click

from .base import ModelSource
from .cli import source_options, user_errors


@click.command("tflite")
@source_options
@click.option(
    "--precision",
    type=click.Choice(["fp32"]),
    default="fp32",
    show_default=True,
    help="fp32 only: TFLite's fp16 and dynamic-range int8 conversions fail parity (measured: docs/tflite.md).",
)
@click.option("--output", type=click.Path(), required=True, help="Output file (conventionally *.tflite).")
def command(source: ModelSource, precision: str, output: str) -> None:
    """LiteRT (TFLite) flatbuffer (NHWC) with dynamic shapes and a runtime downsample_ratio."""
    from .tensorflow import from_torch
    from .tflite import export_tflite

    with user_errors():
        metadata = source.metadata("tflite", precision, "tensorflow", "ai-edge-litert")
        metadata.layout = "NHWC"
        path = export_tflite(from_torch(source.model), output, metadata, precision)
    click.echo(f"wrote {path}")
