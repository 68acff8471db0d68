"""``rvm-export tensorflow``."""

from typing import Optional

import click

from .base import ModelSource
from .cli import default_output, output_option, source_options


@click.command("tensorflow")
@source_options
@output_option
def command(source: ModelSource, output: Optional[str]) -> None:
    """Channels-last (NHWC) TensorFlow SavedModel with a runtime downsample_ratio."""
    from .tensorflow import export_saved_model, from_torch

    output = default_output(output, "tensorflow", source.model.variant)
    metadata = source.metadata("tensorflow", "fp32", "tensorflow", "keras")
    metadata.layout = "NHWC"
    path = export_saved_model(from_torch(source.model), output, metadata)
    click.echo(f"wrote {path}")
