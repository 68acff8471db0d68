"""The runner interface: one artifact kind, one ``infer`` call per frame.

Like Polygraphy's runners, a runner knows only its artifact file and the metadata inside it,
never the exporter. Unlike them, it is stateful-by-argument: ``infer`` takes the backend's
own recurrent state and returns the new one, so a closed-loop rollout feeds each backend its
own state outputs, exactly as a user's inference loop does.
"""

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Dict, Optional, Tuple

import numpy as np

from contract import ArtifactMetadata

Outputs = Dict[str, np.ndarray]  # fgr, pha, r1o..r4o as float32 NCHW numpy arrays


class RunnerError(RuntimeError):
    """The artifact cannot be loaded or run; the message says why."""


class Runner(ABC):
    kind: ClassVar[str]

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metadata: ArtifactMetadata = self.read_metadata(self.path)

    @classmethod
    def on_device(cls, path: Path, device: Optional[str]) -> "Runner":
        """Open ``path`` to run on ``device`` ("cpu", "cuda"); None means the runner's default."""
        if device not in (None, "cpu"):
            raise RunnerError(f"the {cls.kind} runner runs on the CPU only; drop --device {device}")
        return cls(path)

    @classmethod
    @abstractmethod
    def read_metadata(cls, path: Path) -> ArtifactMetadata:
        """The metadata embedded in the artifact."""

    def initial_state(self, batch: int) -> Any:
        """The state passed with the first frame (the backend's own convention)."""
        return None

    def bind_reference(self, reference: Any) -> None:
        """Receive the fp32 reference MattingNetwork before the run. Runners whose format allows
        more than running it (CoreML: reading every weight back) check against it here."""
        return None

    def judged_precision(self) -> str:
        """The precision whose tolerance applies: the artifact's, unless the runtime computes
        coarser than it stores (TF.js WebGL on float16 textures runs an fp32 artifact in fp16)."""
        return self.metadata.precision

    def describe(self) -> str:
        """One line on where the artifact ran (runtime, backend, device), printed in the report; may be empty."""
        return ""

    def fixed_case(self) -> Optional[Tuple[int, int, float]]:
        """(width, height, ratio) baked into a fixed-shape artifact, or None when dynamic."""
        return None

    @abstractmethod
    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        """Run one frame. ``src`` is [B,3,H,W] float32 in 0..1; returns (outputs, new state)."""


def to_numpy_outputs(values: Any) -> Outputs:
    """Name a sequence of 6 outputs in contract order and convert them to float32 numpy."""
    from contract import OUTPUT_NAMES

    return {name: np.asarray(v, dtype=np.float32) for name, v in zip(OUTPUT_NAMES, values, strict=True)}
