"""ExecuTorch runner: the ``.pte`` program run by ExecuTorch's own runtime (``executorch.runtime``), the library an
Android or iOS app links, here its x86 build with the XNNPACK backend and the portable/optimized kernels.

The program is fixed-size (frame size, ratio, batch 1): :meth:`fixed_case` reads them from the metadata and checks
them against the program's own ``src`` input, and the first frame's states are zeros of the shapes the program's
``r1i``..``r4i`` inputs declare. Each runner carries its own state through ``infer``.
"""

from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
import torch

from rvm_export.contract import ArtifactMetadata
from rvm_export.contract.errors import first_line
from rvm_export.contract.metadata import METADATA_METHOD

from .base import ArtifactFacts, Outputs, Runner, RunnerError, load_error, to_numpy_outputs
from .pte_format import PteError, PteProgram, read_pte
from .torch_runner import metadata_from

MAX_SIDE = 8192
MAX_PTE_BYTES = 2 << 30


def read_program(path: Path) -> PteProgram:
    """The ``.pte`` file parsed as data (nothing of it runs); one RunnerError line when it is not one."""
    try:
        if Path(path).stat().st_size > MAX_PTE_BYTES:
            raise RunnerError(f"{path} is larger than {MAX_PTE_BYTES >> 30} GiB, more than any RVM program")
        return read_pte(Path(path).read_bytes())
    except OSError as exc:
        raise RunnerError(f"cannot read {path} ({exc.strerror})")
    except PteError as exc:
        raise RunnerError(f"{path} is not a readable ExecuTorch program: {exc}")


class ExecuTorchRunner(Runner):
    kind = "executorch"

    def __init__(self, path: str | Path) -> None:
        from executorch.runtime import Runtime, Verification

        self.path = Path(path)
        self.pte = read_program(self.path)
        self.metadata = self._metadata(self.pte, self.path)
        self.inputs = self._forward_inputs()
        try:
            self.program = Runtime.get().load_program(self.path, verification=Verification.InternalConsistency)
            self.method = self.program.load_method("forward")
        except Exception as exc:  # the runtime raises RuntimeError/ValueError with its error code
            raise load_error(self.path, "a loadable ExecuTorch program", exc)

    @staticmethod
    def _metadata(pte: PteProgram, path: Path) -> ArtifactMetadata:
        text = pte.metadata_text()
        if text is None:
            raise RunnerError(f"{path} has no {METADATA_METHOD} method returning one string; it was not written by "
                              "rvm-export")  # fmt: skip
        return metadata_from(text, path)

    @classmethod
    def read_metadata(cls, path: Path) -> ArtifactMetadata:
        return cls._metadata(read_program(path), path)

    def _forward_inputs(self) -> List[Tuple[int, ...]]:
        """The shapes of forward's five float32 tensor inputs (src, r1i..r4i), checked."""
        forward = self.pte.methods.get("forward")
        if forward is None:
            raise RunnerError(f"{self.path} has no forward method")
        if len(forward.inputs) != 5 or len(forward.outputs) != 6:
            raise RunnerError(f"{self.path}: its forward takes {len(forward.inputs)} inputs and returns "
                              f"{len(forward.outputs)} outputs, not src, r1i..r4i -> fgr, pha, r1o..r4o")  # fmt: skip
        shapes = []
        for i, value in enumerate(forward.inputs):
            if value is None or value[0] != "float32" or len(value[1]) != 4:
                raise RunnerError(f"{self.path}: forward's input {i} is {value}, not a float32 NCHW tensor")
            if not all(0 < s <= MAX_SIDE for s in value[1]):
                raise RunnerError(f"{self.path}: forward's input {i} has shape {list(value[1])}, out of range")
            shapes.append(tuple(value[1]))
        if shapes[0][:2] != (1, 3):
            raise RunnerError(f"{self.path}: its src input is {list(shapes[0])}, not [1, 3, height, width]")
        return shapes

    def facts(self) -> ArtifactFacts:
        height, width = self.inputs[0][2:]
        return ArtifactFacts(None, "the .pte's delegate payloads hide the weights' dtypes", (width, height), False)

    def fixed_case(self) -> Tuple[int, int, float]:
        """(width, height, ratio) from the metadata, checked against the program's src input before anything is
        allocated at that size."""
        o = self.metadata.options if isinstance(self.metadata.options, dict) else {}
        try:
            width, height, ratio = o["width"], o["height"], float(o["downsample_ratio"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunnerError(f"{self.path}: its metadata records no usable frame size and ratio ({first_line(exc)})")
        if (1, 3, height, width) != self.inputs[0]:
            raise RunnerError(f"{self.path}: its metadata records {str(width)[:20]}x{str(height)[:20]} but its src "
                              f"input is {list(self.inputs[0])}")  # fmt: skip
        if not 0 < ratio <= 1:
            raise RunnerError(f"{self.path}: its metadata's downsample_ratio {ratio:g} is not in (0, 1]")
        return width, height, ratio

    def initial_state(self, batch: int) -> List[torch.Tensor]:
        if batch != 1:
            raise RunnerError("ExecuTorch programs from rvm-export take batch 1")
        return [torch.zeros(shape) for shape in self.inputs[1:]]

    def set_threads(self, threads: int) -> None:
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

        _unsafe_reset_threadpool(threads)  # the process-wide pool XNNPACK runs on

    def describe(self) -> str:
        import importlib.metadata

        delegates = sorted(set(self.pte.methods["forward"].delegates))
        return f"ExecuTorch {importlib.metadata.version('executorch')} runtime, delegates {', '.join(delegates)}"

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        width, height, ratio = self.fixed_case()
        if abs(downsample_ratio - ratio) > 1e-9:
            raise RunnerError(f"this program has ratio {ratio:g} baked in, not {downsample_ratio:g}")
        if tuple(src.shape) != self.inputs[0]:
            raise RunnerError(f"this program takes frames of {list(self.inputs[0])}, not {list(src.shape)}")
        try:
            out = self.method.execute([torch.from_numpy(np.ascontiguousarray(src, np.float32)), *state])
        except Exception as exc:  # the runtime's error code as a RuntimeError
            raise RunnerError(f"{self.path}: ExecuTorch failed to run forward: {first_line(exc)}")
        if len(out) != 6 or not all(isinstance(t, torch.Tensor) for t in out):
            raise RunnerError(f"{self.path}: forward returned {len(out)} values, not six tensors")
        out = [t.clone() for t in out]  # the runtime may reuse its output buffers on the next call
        return to_numpy_outputs([t.numpy() for t in out]), out[2:]


__all__ = ["ExecuTorchRunner", "read_program"]
