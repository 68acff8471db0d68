"""Weight transfer from a PyTorch MattingNetwork state_dict to :class:`TFMattingNetwork`."""

from collections.abc import Mapping

import numpy as np
import torch

from .network import TFMattingNetwork

# kind -> permutation from the PyTorch layout to the TensorFlow one
LAYOUTS = {
    "conv": (2, 3, 1, 0),  # [O,I,kh,kw] -> [kh,kw,I,O]
    "depthwise": (2, 3, 0, 1),  # [C,1,kh,kw] -> [kh,kw,C,1]
    "vector": (0,),
}


class WeightTransferError(ValueError):
    """The state_dict does not fit the TensorFlow network; the message lists the keys."""


def transfer_weights(tf_model: TFMattingNetwork, state: Mapping[str, torch.Tensor]) -> None:
    """Copy every tensor of ``state`` into ``tf_model``, strictly: no key missing, none left over,
    every shape checked after the layout transpose."""
    expected = set(tf_model.registry.entries)
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise WeightTransferError(f"state_dict mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for key, (var, kind) in tf_model.registry.entries.items():
        if var is None:
            continue
        value = state[key].detach().float().cpu().numpy().transpose(LAYOUTS[kind])
        if tuple(value.shape) != tuple(var.shape):
            raise WeightTransferError(f"{key}: shape {value.shape} does not fit {tuple(var.shape)}")
        var.assign(np.ascontiguousarray(value))


def from_torch(model: torch.nn.Module) -> TFMattingNetwork:
    """A TFMattingNetwork with the weights of a PyTorch MattingNetwork (fp32)."""
    tf_model = TFMattingNetwork(model.variant, model.refiner_name)
    transfer_weights(tf_model, model.state_dict())
    return tf_model
