"""The runner interface: one artifact kind, one ``infer`` call per frame.

Like Polygraphy's runners, a runner knows only its artifact file and the metadata inside it,
never the exporter. Unlike them, it is stateful-by-argument: ``infer`` takes the backend's
own recurrent state and returns the new one, so a closed-loop rollout feeds each backend its
own state outputs, exactly as a user's inference loop does.

Artifacts written by other tools carry no metadata: a runner then still reads what the file
itself says (:class:`ArtifactFacts`: the precision of its tensors, a frame size baked into its
inputs), and ``verify.api`` completes the rest from the checkpoint the user names.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Dict, Iterable, List, Optional, Tuple

import numpy as np

from rvm_export.contract import ArtifactMetadata
from rvm_export.contract.errors import RunnerError, first_line

Outputs = Dict[str, np.ndarray]  # fgr, pha, r1o..r4o as float32 NCHW numpy arrays

# Weight tensors smaller than this (biases, BN vectors, the box filter's 3-tap kernels) are often kept in
# float by quantizers, so they do not decide an artifact's precision.
LARGE_TENSOR = 64


@dataclass(frozen=True)
class ArtifactFacts:
    """What the artifact file itself says, whatever its metadata claims."""

    precision: Optional[str]  # fp32 | fp16 | int8 | uint8 | uint16, from its tensors; None: the format hides it
    evidence: str  # how that was read, for the report
    fixed_size: Optional[Tuple[int, int]] = None  # (width, height) baked into the inputs
    ratio_input: bool = True  # False: the downsample ratio is baked in too


def precision_of(dtypes: Iterable[str], evidence: str) -> ArtifactFacts:
    """The precision that most large weight tensors are stored in (names: 'float32', 'float16', 'int8'...)."""
    names = {
        "float32": "fp32",
        "float16": "fp16",
        "bfloat16": "bf16",
        "int8": "int8",
        "uint8": "uint8",
        "uint16": "uint16",
    }
    counts: Dict[str, int] = {}
    for dtype in dtypes:
        counts[dtype] = counts.get(dtype, 0) + 1
    if not counts:
        return ArtifactFacts(None, f"{evidence}: no weight tensors found")
    dominant = max(counts, key=lambda k: counts[k])
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return ArtifactFacts(names.get(dominant), f"{evidence}: {summary}")


class Probe:
    """An artifact with its intermediate tensors exposed, for ``rvm-verify --localize``. Stepped like a runner
    by the rollout, right after the PyTorch reference: each frame returns ``({module name: its tensor}, new
    state)``, read against ``recorder`` (the reference's per-module outputs, inputs and execution order)."""

    recorder: Any
    modules: Dict[str, Any]

    def bind(self, recorder: Any, modules: Dict[str, Any]) -> None:
        self.recorder, self.modules = recorder, modules


def load_error(path: Path, what: str, exc: BaseException) -> RunnerError:
    """The one-line error for an artifact its runtime refused to load: ``{path} is not {what}: {cause}``."""
    return RunnerError(f"{path} is not {what}: {first_line(exc)}")


class Runner(ABC):
    """One artifact opened in its runtime: ``infer`` steps one frame with the state the caller carries
    (``rollout.rollout`` / ``ClosedLoop``), ``close`` (or the ``with`` block) releases the runtime."""

    kind: ClassVar[str]
    metadata: Optional[ArtifactMetadata]  # None until verify.api infers it for an artifact without metadata

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metadata = self.read_metadata(self.path)

    @classmethod
    def on_device(cls, path: Path, device: Optional[str]) -> "Runner":
        """Open ``path`` to run on ``device`` ("cpu", "cuda"); None means the runner's default."""
        if device not in (None, "cpu"):
            raise RunnerError(f"the {cls.kind} runner runs on the CPU only, not on {device}", "device")
        return cls(path)

    @classmethod
    @abstractmethod
    def read_metadata(cls, path: Path) -> Optional[ArtifactMetadata]:
        """The metadata embedded in the artifact, or None when it carries none (another tool wrote it)."""

    def facts(self) -> ArtifactFacts:
        """What the artifact's own tensors and shapes say (precision, baked-in size). A runner that
        cannot read them says so: its artifacts then need metadata, and their claims go unchecked."""
        return ArtifactFacts(None, f"the {self.kind} runner does not read the artifact's tensors")

    def adopt_metadata(self, metadata: ArtifactMetadata) -> None:
        """Take the metadata inferred for an artifact that carries none."""
        self.metadata = metadata

    @classmethod
    def sandbox_needs(cls, policy: Any, path: Path, device: Optional[str], backend: Optional[str]) -> None:
        """Add to ``policy`` (a :class:`~rvm_export.runtimes.sandbox.Policy`) what this runtime needs in its
        confined child beyond reading its installs and the artifact's folder: an executable, device files."""
        if device == "cuda":
            import glob

            policy.devices += glob.glob("/dev/nvidia*") + glob.glob("/dev/dri/*")

    def initial_state(self, batch: int) -> Any:
        """The state passed with the first frame (the backend's own convention)."""
        return None

    def bind_reference(self, reference: Any) -> None:
        """Receive the fp32 reference MattingNetwork before the run. Runners whose format allows
        more than running it (CoreML: reading every weight back) check against it here."""
        return None

    @classmethod
    def pin_process_threads(cls, threads: int) -> None:
        """Set the runtime's process-wide thread count before any artifact of it is opened (rvm-bench); for
        runtimes whose threads are fixed when they start (TensorFlow). Most take them per artifact."""
        return None

    def set_threads(self, threads: int) -> None:
        """Run this artifact on ``threads`` intra-op threads from now on (rvm-bench gives every row the same)."""
        return None

    def probe(self) -> Optional[Probe]:
        """This artifact with its intermediate tensors exposed (``--localize``); None where the format hides them."""
        return None

    def contract_problems(self) -> List[str]:
        """What the static checks of :meth:`bind_reference` found wrong with the artifact (its declared
        inputs and outputs, its weights read back): reported as check failures, never raised by ``infer``."""
        return []

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

    def fixed_ratio(self) -> Optional[float]:
        """The downsample ratio baked into an artifact whose frame size is dynamic (ncnn), or None."""
        return None

    def size_problem(self, width: int, height: int) -> Optional[str]:
        """Why frames of this size would not be matted as PyTorch mattes them (a message naming the size to use
        instead), or None. convert_video refuses such a video before writing anything."""
        return None

    @abstractmethod
    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        """Run one frame. ``src`` is [B,3,H,W] float32 in 0..1; returns (outputs, new state)."""

    def close(self) -> None:
        """Release what the runtime holds outside this process's memory (a Node.js process, a Chromium
        page). Idempotent; ``with open_runner(path) as runner:`` calls it when the block ends."""
        return None

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def on_grid(size: int, ratio: float) -> int:
    """The first size from ``size`` up whose product with ``ratio`` is whole: where a runtime that resamples with
    the scale its sizes imply (ncnn) samples as PyTorch does (``1 / ratio``)."""
    return next((s for s in range(size, size + 1000) if abs(s * ratio - round(s * ratio)) < 1e-6), size)


def to_numpy_outputs(values: Any) -> Outputs:
    """Name a sequence of 6 outputs in contract order and convert them to float32 numpy."""
    from rvm_export.contract import OUTPUT_NAMES

    return {name: np.asarray(v, dtype=np.float32) for name, v in zip(OUTPUT_NAMES, values, strict=True)}
