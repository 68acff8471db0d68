"""The canonical PyTorch Robust Video Matting network (``from model import MattingNetwork``)."""

from .checkpoint import (
    CheckpointError,
    build_model,
    infer_architecture,
    load_checkpoint,
    read_state_dict,
    seeded_random_model,
    sha256_file,
)
from .network import REFINERS, VARIANTS, MattingNetwork, half_precision, param_dtype

__all__ = [
    "REFINERS",
    "VARIANTS",
    "CheckpointError",
    "MattingNetwork",
    "build_model",
    "half_precision",
    "infer_architecture",
    "load_checkpoint",
    "param_dtype",
    "read_state_dict",
    "seeded_random_model",
    "sha256_file",
]
