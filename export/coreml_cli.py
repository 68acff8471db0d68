"""``rvm-export coreml``."""

import click

from .base import ModelSource
from .cli import source_options
from .coreml import COREML_PACKAGES, FORMATS, PRECISIONS, SUFFIXES, check_case, export_coreml


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
    default="mlprogram",
    show_default=True,
    help="mlprogram (.mlpackage, iOS 15+) or neuralnetwork (.mlmodel, iOS 14+).",
)
@click.option(
    "--output", type=click.Path(), required=True, help=f"Output ({', '.join(f'*{s}' for s in SUFFIXES.values())})."
)
def command(
    source: ModelSource, resolution: tuple, downsample_ratio: float, precision: str, fmt: str, output: str
) -> None:
    """Fixed-resolution CoreML model (image in, images and states out)."""
    case = check_case(resolution[0], resolution[1], downsample_ratio)
    metadata = source.metadata(
        "coreml",
        precision,
        *COREML_PACKAGES,
        format=fmt,
        width=case.width,
        height=case.height,
        downsample_ratio=case.ratio,
    )
    path = export_coreml(source.model, output, metadata, case, fmt, precision)
    click.echo(f"wrote {path}")
