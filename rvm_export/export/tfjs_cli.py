"""``rvm-export tfjs``."""

from typing import Optional

import click

from .base import ModelSource
from .cli import default_output, output_option, source_options


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
@output_option
def command(source: ModelSource, quantize: str, output: Optional[str]) -> None:
    """TF.js graph model (NHWC) with a runtime downsample_ratio."""
    from .tensorflow import from_torch
    from .tfjs import export_tfjs

    output = default_output(output, "tfjs", source.model.variant, quantize=quantize)
    precision = "fp32" if quantize == "none" else quantize
    metadata = source.metadata("tfjs", precision, "tensorflow", quantization=quantize)
    metadata.layout = "NHWC"
    path = export_tfjs(from_torch(source.model), output, metadata, quantize)
    click.echo(f"wrote {path}")
