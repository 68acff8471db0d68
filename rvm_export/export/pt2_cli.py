"""``rvm-export pt2``."""

from typing import Optional

import click

from .base import PRECISIONS, ModelSource, at_precision
from .cli import default_output, output_option, source_options, user_errors
from .pt2 import export_pt2


@click.command("pt2")
@source_options
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@output_option
def command(source: ModelSource, precision: str, output: Optional[str]) -> None:
    """torch.export program (.pt2) with a runtime downsample_ratio; loads with torch.export.load alone."""
    with user_errors():
        output = default_output(output, "pt2", source.model.variant, precision=precision)
        metadata = source.metadata("pt2", precision)
        model = at_precision(source.model, precision)
        path = export_pt2(model, output, metadata)
    click.echo(f"wrote {path}")
