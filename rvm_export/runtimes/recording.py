"""A PyTorch reference whose every module's output (and, for a TorchScript probe, inputs) is recorded each frame:
what ``rvm-verify --localize`` compares an artifact's intermediate tensors with, in the parent and, beside a
runtime's probe, in the runtime's child process (:mod:`.child_probe`)."""

from typing import Any, Dict, List, Tuple

import numpy as np
import torch
from torch import nn

from model import MattingNetwork

from .torch_runner import TorchReference, first_tensor


class Recorder:
    """Forward hooks on every named module: outputs (and inputs) in execution order."""

    def __init__(self, model: nn.Module, keep_inputs: bool = False) -> None:
        self.order: List[str] = []
        self.outputs: Dict[str, np.ndarray] = {}
        self.inputs: Dict[str, Tuple[tuple, dict]] = {}
        self.handles = []
        for name, module in model.named_modules():
            if name:
                self.handles.append(module.register_forward_hook(self._hook(name, keep_inputs), with_kwargs=True))

    def _hook(self, name: str, keep_inputs: bool) -> Any:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            tensor = first_tensor(output)
            if tensor is None or name in self.outputs:  # a module called twice per frame keeps its first call
                return
            self.order.append(name)
            self.outputs[name] = tensor.detach().double().cpu().numpy()
            if keep_inputs:
                self.inputs[name] = (args, kwargs)

        return hook

    def reset(self) -> None:
        self.order, self.outputs, self.inputs = [], {}, {}

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


class RecordedReference(TorchReference):
    """A PyTorch reference whose every module's output (and inputs) is recorded afresh each frame."""

    def __init__(self, model: MattingNetwork, dtype: torch.dtype, keep_inputs: bool = False) -> None:
        super().__init__(model, dtype)
        self.recorder = Recorder(self.model, keep_inputs)

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Any, Any]:
        self.recorder.reset()
        return super().infer(src, state, downsample_ratio)


def reference_message(model: MattingNetwork) -> Tuple[dict, List[np.ndarray]]:
    """The reference as a child process receives it: its architecture in the message, its weights as arrays."""
    weights = model.state_dict()
    arrays = [weights[name].detach().float().cpu().numpy() for name in weights]
    return {"names": list(weights), "variant": model.variant, "refiner": model.refiner_name}, arrays


def rebuilt_reference(message: dict, arrays: List[np.ndarray]) -> MattingNetwork:
    """The child's side of :func:`reference_message`: the same model, in eval mode."""
    model = MattingNetwork(message["variant"], message["refiner"]).eval()
    model.load_state_dict({n: torch.from_numpy(a) for n, a in zip(message["names"], arrays, strict=True)})
    return model


__all__ = ["RecordedReference", "Recorder", "rebuilt_reference", "reference_message"]
