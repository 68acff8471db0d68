"""TensorFlow target: a channels-last port of MattingNetwork and its SavedModel writer.

Importing this package imports TensorFlow; ``export/cli.py`` loads it only for ``rvm-export tensorflow``."""

from .network import TFMattingNetwork
from .savedmodel import export_saved_model, read_saved_model_metadata
from .weights import WeightTransferError, from_torch, transfer_weights

__all__ = [
    "TFMattingNetwork",
    "WeightTransferError",
    "export_saved_model",
    "from_torch",
    "read_saved_model_metadata",
    "transfer_weights",
]
