"""``rvm-export tensorflow``."""

import click

from .base import ModelSource
from .cli import source_options


@click.command("tensorflow")
@source_options
@click.option("--output", type=click.Path(), required=True, help="Output SavedModel folder (e.g. rvm_mobilenetv3_tf).")
def command(source: ModelSource, output: str) -> None:
    """Channels-last (NHWC) TensorFlow SavedModel with a runtime downsample_ratio."""
    from .tensorflow import export_saved_model, from_torch

    metadata = source.metadata("tensorflow", "fp32", "tensorflow", "keras")
    metadata.layout = "NHWC"
    path = export_saved_model(from_torch(source.model), output, metadata)
    click.echo(f"wrote {path}")
