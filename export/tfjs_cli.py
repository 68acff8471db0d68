"""``rvm-export tfjs``."""

import click

from .base import ModelSource
from .cli import source_options


@click.command("tfjs")
@source_options
@click.option(
    "--quantize",
    type=click.Choice(["none", "uint8"]),
    default="none",
    show_default=True,
    help="Weight quantization (the official web model is uint8: 4x smaller).",
)
@click.option("--output", type=click.Path(), required=True, help="Output folder for model.json + weight shards.")
def command(source: ModelSource, quantize: str, output: str) -> None:
    """TF.js graph model (NHWC) with a runtime downsample_ratio."""
    from .tensorflow import from_torch
    from .tfjs import export_tfjs

    precision = "uint8" if quantize == "uint8" else "fp32"
    metadata = source.metadata("tfjs", precision, "tensorflow", quantization=quantize)
    metadata.layout = "NHWC"
    path = export_tfjs(from_torch(source.model), output, metadata, quantize)
    click.echo(f"wrote {path}")
