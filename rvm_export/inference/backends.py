"""What ``convert_video`` runs: a PyTorch / TorchScript module, or any exported artifact via its runtime runner.

Every backend takes a chunk of uint8 RGB frames [T,H,W,3] on the CPU and returns (fgr [T,3,H,W],
pha [T,1,H,W]) float tensors, carrying its own recurrent state from chunk to chunk in its own form.
Artifacts (ONNX, TorchScript, SavedModel, ...) are opened with ``rvm_export.runtimes.open_runner``, so
a runner registered there is usable here without changes; inference never imports the verifier.
"""

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np
import torch

from rvm_export.inference.io import InferenceError
from rvm_export.runtimes.rollout import ClosedLoop

Matte = Tuple[torch.Tensor, torch.Tensor]  # fgr [T,3,H,W], pha [T,1,H,W]


class Backend(ABC):
    """One model, run chunk by chunk over one video."""

    device: torch.device = torch.device("cpu")

    def fixed_case(self) -> Optional[Tuple[int, int, float]]:
        """(width, height, ratio) a fixed-shape artifact was exported for, or None."""
        return None

    def fixed_ratio(self) -> Optional[float]:
        """The ratio baked into an artifact whose frame size is dynamic (ncnn), or None."""
        return None

    def size_problem(self, width: int, height: int) -> Optional[str]:
        """Why this model would not matte frames of this size as PyTorch does, or None (Runner.size_problem)."""
        return None

    @abstractmethod
    def __call__(self, frames: torch.Tensor, downsample_ratio: float) -> Matte:
        """Matte the uint8 frames [T,H,W,3] that follow the previous call's frames."""

    def close(self) -> None:
        """Release a runtime this backend opened (an artifact given by path); a caller's runner stays open."""
        return None


class TorchBackend(Backend):
    """An nn.Module or TorchScript module with RVM's ``forward(src, r1..r4, downsample_ratio)``."""

    def __init__(
        self, model: torch.nn.Module, device: Optional[str | torch.device], dtype: Optional[torch.dtype]
    ) -> None:
        self.model = model.eval()
        params = [p for p in model.parameters() if p.is_floating_point()]
        if (device is None or dtype is None) and not params:
            raise InferenceError(
                "the model has no parameters (a frozen TorchScript module?); pass device= and dtype=, "
                "e.g. convert_video(model, ..., device='cpu', dtype=torch.float32)"
            )
        self.device = torch.device(device) if device is not None else params[0].device
        self.dtype = dtype if dtype is not None else params[0].dtype
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise InferenceError("CUDA is not available here; pass device='cpu'", "device")
        if params and params[0].device.type != self.device.type:
            raise InferenceError(
                f"the model is on {params[0].device} but device={str(self.device)!r}; move it with model.to(device)"
            )
        self.rec: List[Any] = [None] * 4

    @torch.inference_mode()
    def __call__(self, frames: torch.Tensor, downsample_ratio: float) -> Matte:
        # uint8 crosses to the device (4x less than float), then becomes float there, once.
        src = frames.to(self.device, non_blocking=True).permute(0, 3, 1, 2).to(self.dtype).div_(255)
        fgr, pha, *self.rec = self.model(src.unsqueeze(0), *self.rec, downsample_ratio)
        return fgr[0], pha[0]


class RunnerBackend(Backend):
    """A runtime runner (ONNX Runtime, TorchScript, TensorFlow, ...): frame by frame, numpy in and out."""

    def __init__(self, runner: Any, owned: bool = False) -> None:
        self.runner = runner
        self.owned = owned  # opened here from a path: closed when the conversion ends
        self.loop = ClosedLoop(runner)  # the video's frames in order, the runner's own state carried

    def fixed_case(self) -> Optional[Tuple[int, int, float]]:
        return self.runner.fixed_case() if hasattr(self.runner, "fixed_case") else None

    def fixed_ratio(self) -> Optional[float]:
        return self.runner.fixed_ratio() if hasattr(self.runner, "fixed_ratio") else None

    def size_problem(self, width: int, height: int) -> Optional[str]:
        return self.runner.size_problem(width, height) if hasattr(self.runner, "size_problem") else None

    def close(self) -> None:
        if self.owned:
            self.runner.close()

    def __call__(self, frames: torch.Tensor, downsample_ratio: float) -> Matte:
        src = frames.numpy().transpose(0, 3, 1, 2).astype(np.float32) * np.float32(1 / 255)
        fgr, pha = [], []
        for t in range(src.shape[0]):  # runners take [B,3,H,W]: one frame per call
            outputs = self.loop.step(src[t : t + 1], downsample_ratio)
            fgr.append(outputs["fgr"])
            pha.append(outputs["pha"])
        return torch.from_numpy(np.concatenate(fgr)), torch.from_numpy(np.concatenate(pha))


def is_runner(model: Any) -> bool:
    return (
        not isinstance(model, torch.nn.Module)
        and callable(getattr(model, "infer", None))
        and hasattr(model, "initial_state")
    )


def make_backend(
    model: Any, device: Optional[str | torch.device] = None, dtype: Optional[torch.dtype] = None
) -> Backend:
    """The backend for ``model``: a module, an artifact path, or a runtime runner."""
    if isinstance(model, (str, os.PathLike)):
        from rvm_export.runtimes import RunnerError, open_runner

        path = Path(model)
        if path.suffix == ".pth":
            raise InferenceError(f"{path} is a checkpoint, not an artifact; load it with model.load_checkpoint first")
        try:
            runner = open_runner(path)
        except RunnerError as exc:
            raise InferenceError(str(exc))
        try:
            if getattr(runner, "wants_reference", False):  # CoreML off macOS runs the weights read back against it
                from rvm_export.runtimes.torch_runner import reference_model

                runner.bind_reference(reference_model(runner.metadata, artifact=path))
        except RunnerError as exc:
            runner.close()
            raise InferenceError(str(exc))
        return RunnerBackend(runner, owned=True)
    if is_runner(model):
        return RunnerBackend(model)
    if isinstance(model, torch.nn.Module):
        return TorchBackend(model, device, dtype)
    raise InferenceError(
        f"cannot run a {type(model).__name__}; pass a MattingNetwork, a TorchScript module, an artifact path or a runner (rvm_export.runtimes)"
    )


__all__ = ["Backend", "RunnerBackend", "TorchBackend", "is_runner", "make_backend"]
