"""TorchScript target: scripted (not traced), so ``downsample_ratio`` stays a runtime argument
and both [B,C,H,W] and [B,T,C,H,W] inputs keep working. Optionally frozen."""

import io
from pathlib import Path
from typing import Optional

import click
import torch

from model import MattingNetwork
from rvm_export.contract import METADATA_KEY, ArtifactMetadata

from .base import ModelSource, at_precision, atomic_output
from .cli import export_with, output_option, source_options
from .reproducible import sorted_jit_constants

SUFFIX = ".torchscript"
# bf16: the network in bfloat16, the refiner in fp32. PyTorch computes bf16 natively where the CPU has
# AMX or AVX512-BF16 (and on GPUs); elsewhere it emulates it, slowly but with the same numbers.
PRECISIONS = ("fp32", "fp16", "bf16")


def export_torchscript(model: MattingNetwork, output: str | Path, metadata: ArtifactMetadata, freeze: bool) -> Path:
    """Script ``model`` (already at its target precision), optionally freeze it, save atomically.

    A frozen module has its weights inlined as constants (conv+BN folded): faster, but it has
    no parameters, so ``convert_video`` needs ``device=`` and ``dtype=`` passed explicitly."""
    with sorted_jit_constants():  # the constants' order must not follow the process's string hash seed
        scripted = torch.jit.script(model.eval())
    if freeze:
        scripted = torch.jit.freeze(scripted)
    buffer = io.BytesIO()  # serialised in memory: torch's file writer turns OS errors into RuntimeErrors
    torch.jit.save(scripted, buffer, _extra_files={METADATA_KEY: metadata.to_json()})
    with atomic_output(output, folder=False) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return Path(output)


@click.command("torchscript")
@source_options
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@click.option(
    "--freeze/--no-freeze", default=False, show_default=True, help="torch.jit.freeze: faster, weights inlined."
)
@output_option
def command(source: ModelSource, precision: str, freeze: bool, output: Optional[str]) -> None:
    """Scripted TorchScript module with a runtime downsample_ratio."""
    model = at_precision(source.model, precision, PRECISIONS)
    options = {"freeze": freeze}
    export_with(
        source,
        "torchscript",
        output,
        lambda out, meta: export_torchscript(model, out, meta, freeze),
        precision,
        {"precision": precision, **options},
        options,
    )
