"""``rvm-export torchscript``."""

from typing import Optional

import click

from .base import ModelSource, at_precision
from .cli import default_output, output_option, source_options
from .torchscript import export_torchscript


@click.command("torchscript")
@source_options
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True)
@click.option(
    "--freeze/--no-freeze", default=False, show_default=True, help="torch.jit.freeze: faster, weights inlined."
)
@output_option
def command(source: ModelSource, precision: str, freeze: bool, output: Optional[str]) -> None:
    """Scripted TorchScript module with a runtime downsample_ratio."""
    output = default_output(output, "torchscript", source.model.variant, precision=precision, freeze=freeze)
    metadata = source.metadata("torchscript", precision, freeze=freeze)
    model = at_precision(source.model, precision)
    path = export_torchscript(model, output, metadata, freeze)
    click.echo(f"wrote {path}")
