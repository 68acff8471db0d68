"""ONNX Runtime runner: the documented io-binding loop, states kept on the device.

Uses the CUDA execution provider when this ONNX Runtime has it (onnxruntime-gpu), else the CPU.
The recurrent state is the list of ``OrtValue`` outputs of the previous frame, bound straight
back as the next frame's inputs, so on CUDA it never leaves the GPU (only fgr/pha and a copy of
the states for comparison come back). This is the RVM documentation's ``io_binding`` loop.
"""

from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import onnxruntime as ort

from contract import METADATA_KEY, OUTPUT_NAMES, STATE_INPUTS, ArtifactMetadata

from .base import Outputs, Runner, RunnerError, to_numpy_outputs

ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def default_providers() -> List[str]:
    """CUDA first when available, always with the CPU as fallback."""
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def open_session(path: Path, providers: Optional[Sequence[str]] = None) -> ort.InferenceSession:
    if not path.is_file():
        raise RunnerError(f"artifact not found: {path}")
    try:
        return ort.InferenceSession(str(path), providers=list(providers or default_providers()))
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types for foreign or broken files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunnerError(f"{path} is not a loadable ONNX model: {first[:300]}")


def session_metadata(session: ort.InferenceSession, path: Path) -> ArtifactMetadata:
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if not text:
        raise RunnerError(f"{path} carries no {METADATA_KEY} in its metadata_props; it was not written by rvm-export")
    return ArtifactMetadata.from_json(text)


class OnnxRuntimeRunner(Runner):
    kind = "onnx"

    def __init__(self, path: str | Path, providers: Optional[Sequence[str]] = None) -> None:
        self.path = Path(path)
        self.session = open_session(self.path, providers)
        self.metadata = session_metadata(self.session, self.path)
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        missing = [n for n in ("src", *STATE_INPUTS) if n not in self.inputs]
        if missing:
            raise RunnerError(f"{self.path} lacks the inputs {', '.join(missing)}; it is not an RVM artifact")
        src_type = self.inputs["src"].type
        if src_type not in ORT_DTYPES:
            raise RunnerError(f"{self.path}: src is {src_type}; expected float or float16")
        self.dtype = ORT_DTYPES[src_type]
        self.device = "cuda" if "CUDAExecutionProvider" in self.session.get_providers() else "cpu"

    @classmethod
    def on_device(cls, path: Path, device: Optional[str]) -> "OnnxRuntimeRunner":
        """None: CUDA when this onnxruntime has it, else the CPU; "cuda" insists on CUDA."""
        if device is None:
            return cls(path)
        if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RunnerError("this onnxruntime has no CUDA provider; install onnxruntime-gpu or drop --device cuda")
        return cls(path, ["CUDAExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"])

    @classmethod
    def read_metadata(cls, path: Path) -> ArtifactMetadata:
        return session_metadata(open_session(Path(path), ["CPUExecutionProvider"]), Path(path))

    def fixed_case(self) -> Optional[Tuple[int, int, float]]:
        static = self.metadata.options.get("static")
        if not static:
            return None
        width, height = static
        return int(width), int(height), float(self.metadata.options["downsample_ratio"])

    def initial_state(self, batch: int) -> List[ort.OrtValue]:
        """[1,1,1,1] zeros (dynamic artifacts), or zeros of the fixed state shapes (static ones)."""
        states = []
        for name in STATE_INPUTS:
            shape = [1, 1, 1, 1] if self.fixed_case() is None else list(self.inputs[name].shape)
            states.append(ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, self.dtype), self.device))
        return states

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        fixed = self.fixed_case()
        if fixed is not None and not np.isclose(fixed[2], downsample_ratio):
            raise RunnerError(f"{self.path} has the ratio {fixed[2]} baked in; it cannot run at {downsample_ratio}")
        io = self.session.io_binding()
        io.bind_cpu_input("src", np.ascontiguousarray(src, dtype=self.dtype))
        for name, value in zip(STATE_INPUTS, state, strict=True):
            io.bind_ortvalue_input(name, value)
        if "downsample_ratio" in self.inputs:
            io.bind_cpu_input("downsample_ratio", np.asarray([downsample_ratio], dtype=np.float32))
        for name in OUTPUT_NAMES:
            io.bind_output(name, self.device)
        self.session.run_with_iobinding(io)
        values = io.get_outputs()
        return to_numpy_outputs([v.numpy() for v in values]), list(values[2:])
