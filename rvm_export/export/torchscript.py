"""TorchScript target: scripted (not traced), so ``downsample_ratio`` stays a runtime argument
and both [B,C,H,W] and [B,T,C,H,W] inputs keep working. Optionally frozen."""

import io
from pathlib import Path

import torch

from model import MattingNetwork
from rvm_export.contract import METADATA_KEY, ArtifactMetadata

from .base import atomic_output

SUFFIX = ".torchscript"


def export_torchscript(model: MattingNetwork, output: str | Path, metadata: ArtifactMetadata, freeze: bool) -> Path:
    """Script ``model`` (already at its target precision), optionally freeze it, save atomically.

    A frozen module has its weights inlined as constants (conv+BN folded): faster, but it has
    no parameters, so ``convert_video`` needs ``device=`` and ``dtype=`` passed explicitly."""
    scripted = torch.jit.script(model.eval())
    if freeze:
        scripted = torch.jit.freeze(scripted)
    buffer = io.BytesIO()  # serialised in memory: torch's file writer turns OS errors into RuntimeErrors
    torch.jit.save(scripted, buffer, _extra_files={METADATA_KEY: metadata.to_json()})
    with atomic_output(output, folder=False) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return Path(output)
