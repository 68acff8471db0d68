"""``rvm-export openvino``."""

from typing import Optional

import click

from .base import PRECISIONS, ModelSource
from .cli import default_output, output_option, source_options, user_errors
from .openvino import INFERENCE_PRECISION, PACKAGES, export_openvino


@click.command("openvino")
@source_options
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="fp32",
    show_default=True,
    help="fp16: weights compressed to fp16 in the .bin (computation as set at run time; f32 verified).",
)
@output_option
def command(source: ModelSource, precision: str, output: Optional[str]) -> None:
    """OpenVINO IR (.xml + .bin) with dynamic shapes and a runtime downsample_ratio."""
    with user_errors():
        output = default_output(output, "openvino", source.model.variant, precision=precision)
        metadata = source.metadata("openvino", precision, *PACKAGES, inference_precision=INFERENCE_PRECISION)
        path = export_openvino(source.model, output, metadata, compress_to_fp16=precision == "fp16")
    click.echo(f"wrote {path} and {path.with_suffix('.bin').name}")
