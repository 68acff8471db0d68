"""``rvm-export tfjs``."""

import click

from .base import ModelSource
from .cli import source_options


@click.command("tfjs")
@source_options
@click.option(
    "--quantize",
    type=click.Choice(["none", "uint8", "uint16"]),
    default="none",
    show_default=True,
    help="Per-tensor weight quantization: uint8 is 4x smaller (the official web model) but measurably "
    "changes the matte of float-trained weights; uint16 is 2x smaller and close to fp32. See docs/tfjs.md.",
)
@click.option("--output", type=click.Path(), required=True, help="Output folder for model.json + weight shards.")
def command(source: ModelSource, quantize: str, output: str) -> None:
    """TF.js graph model (NHWC) with a runtime downsample_ratio."""
    from .tensorflow import from_torch
    from .tfjs import export_tfjs

    precision = "fp32" if quantize == "none" else quantize
    metadata = source.metadata("tfjs", precision, "tensorflow", quantization=quantize)
    metadata.layout = "NHWC"
    path = export_tfjs(from_torch(source.model), output, metadata, quantize)
    click.echo(f"wrote {path}")
