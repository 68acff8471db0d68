"""``rvm-export coreml``."""

from typing import Optional

import click

from .base import ModelSource
from .cli import default_output, output_option, source_options
from .coreml import COREML_PACKAGES, FORMATS, PRECISIONS, check_case, export_coreml, format_for


@click.command("coreml")
@source_options
@click.option(
    "--resolution", nargs=2, type=int, required=True, metavar="WIDTH HEIGHT", help="Frame size baked into the model."
)
@click.option("--downsample-ratio", type=float, required=True, help="Baked in too; size x ratio must be an integer.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp16", show_default=True, help="Weight precision.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="mlprogram (.mlpackage, iOS 15+) or neuralnetwork (.mlmodel, iOS 14+) [default: from the --output "
    "suffix, else mlprogram].",
)
@output_option
def command(
    source: ModelSource,
    resolution: tuple,
    downsample_ratio: float,
    precision: str,
    fmt: Optional[str],
    output: Optional[str],
) -> None:
    """Fixed-resolution CoreML model (image in, images and states out)."""
    case = check_case(resolution[0], resolution[1], downsample_ratio)
    fmt, path = format_for(output, fmt)
    output = default_output(
        str(path) if path else None,
        "coreml",
        source.model.variant,
        width=case.width,
        height=case.height,
        downsample_ratio=case.ratio,
        precision=precision,
        fmt=fmt,
    )
    metadata = source.metadata(
        "coreml",
        precision,
        *COREML_PACKAGES,
        format=fmt,
        width=case.width,
        height=case.height,
        downsample_ratio=case.ratio,
    )
    written = export_coreml(source.model, output, metadata, case, fmt, precision)
    click.echo(f"wrote {written}")
