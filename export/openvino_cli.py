"""``rvm-export openvino``."""

import click

from .base import PRECISIONS, ModelSource
from .cli import source_options, user_errors
from .openvino import INFERENCE_PRECISION, PACKAGES, SUFFIX, export_openvino


@click.command("openvino")
@source_options
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="fp32",
    show_default=True,
    help="fp16: weights compressed to fp16 in the .bin (computation as set at run time; f32 verified).",
)
@click.option(
    "--output", type=click.Path(), required=True, help=f"Output IR (*{SUFFIX}; the .bin is written beside it)."
)
def command(source: ModelSource, precision: str, output: str) -> None:
    """OpenVINO IR (.xml + .bin) with dynamic shapes and a runtime downsample_ratio."""
    with user_errors():
        metadata = source.metadata("openvino", precision, *PACKAGES, inference_precision=INFERENCE_PRECISION)
        path = export_openvino(source.model, output, metadata, compress_to_fp16=precision == "fp16")
    click.echo(f"wrote {path} and {path.with_suffix('.bin').name}")
