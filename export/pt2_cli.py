"""``rvm-export pt2``."""

import click

from .base import PRECISIONS, ModelSource, at_precision
from .cli import source_options, user_errors
from .pt2 import SUFFIX, export_pt2


@click.command("pt2")
@source_options
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@click.option("--output", type=click.Path(), required=True, help=f"Output file (conventionally *{SUFFIX}).")
def command(source: ModelSource, precision: str, output: str) -> None:
    """torch.export program (.pt2) with a runtime downsample_ratio; loads with torch.export.load alone."""
    with user_errors():
        metadata = source.metadata("pt2", precision)
        model = at_precision(source.model, precision)
        path = export_pt2(model, output, metadata)
    click.echo(f"wrote {path}")
