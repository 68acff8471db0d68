"""torch.export runner: ``torch.export.load`` and the program's module, as a user without this project runs it."""

from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np
import torch

from rvm_export.contract import METADATA_KEY, ArtifactMetadata

from .base import Outputs, Runner, RunnerError, load_error, to_numpy_outputs
from .torch_runner import metadata_from, torch_device


def load_program(path: Path) -> Tuple[Any, ArtifactMetadata]:
    extra = {METADATA_KEY: ""}
    if not Path(path).is_file():
        raise RunnerError(f"artifact not found: {path}")
    try:
        program = torch.export.load(str(path), extra_files=extra)
    except Exception as exc:  # torch raises many kinds for a foreign or truncated archive
        raise load_error(path, "a loadable torch.export program", exc)
    if not extra[METADATA_KEY]:
        raise RunnerError(f"{path} carries no {METADATA_KEY}; it was not written by rvm-export")
    return program, metadata_from(extra[METADATA_KEY], path)


class TorchExportRunner(Runner):
    kind = "pt2"

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        self.path = Path(path)
        self.device = device
        program, self.metadata = load_program(self.path)
        self.module = program.module().to(device)
        self.dtype = torch.float16 if self.metadata.precision == "fp16" else torch.float32

    @classmethod
    def on_device(cls, path: Path, device: Optional[str]) -> "TorchExportRunner":
        return cls(path, torch_device(device))

    @classmethod
    def read_metadata(cls, path: Path) -> ArtifactMetadata:
        return load_program(path)[1]

    def initial_state(self, batch: int) -> List[torch.Tensor]:
        return [torch.zeros(1, 1, 1, 1, dtype=self.dtype, device=self.device)] * 4

    def set_threads(self, threads: int) -> None:
        torch.set_num_threads(threads)

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        ratio = torch.tensor([downsample_ratio], dtype=torch.float32, device=self.device)
        # fp32 artifacts are checked with TF32 off (see torch_runner._run_module).
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            out = self.module(torch.from_numpy(src).to(self.device, self.dtype), *state, ratio)
        return to_numpy_outputs([t.float().cpu().numpy() for t in out]), list(out[2:])
