"""The channels-last TensorFlow port of MattingNetwork, shared by the tensorflow, tfjs and tflite exporters.

Importing this package imports TensorFlow; the exporters that need it are loaded only for their subcommand."""

from .network import TFMattingNetwork
from .weights import WeightTransferError, from_torch, transfer_weights

__all__ = ["TFMattingNetwork", "WeightTransferError", "from_torch", "transfer_weights"]
