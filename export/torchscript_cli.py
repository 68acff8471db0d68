"""``rvm-export torchscript``."""

import click

from .base import ModelSource, at_precision
from .cli import source_options
from .torchscript import SUFFIX, export_torchscript


@click.command("torchscript")
@source_options
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True)
@click.option(
    "--freeze/--no-freeze", default=False, show_default=True, help="torch.jit.freeze: faster, weights inlined."
)
@click.option("--output", type=click.Path(), required=True, help=f"Output file (conventionally *{SUFFIX}).")
def command(source: ModelSource, precision: str, freeze: bool, output: str) -> None:
    """Scripted TorchScript module with a runtime downsample_ratio."""
    metadata = source.metadata("torchscript", precision, freeze=freeze)
    model = at_precision(source.model, precision)
    path = export_torchscript(model, output, metadata, freeze)
    click.echo(f"wrote {path}")
