"""OpenVINO runner: the CPU plugin, at the inference precision the artifact was verified for.

OpenVINO's CPU plugin computes in bf16 by default on CPUs with AVX-512-BF16 or AMX, whatever
the IR's precision; with the fast guided filter that moves single alpha pixels by up to 1.0.
The runner therefore pins ``INFERENCE_PRECISION_HINT`` to the artifact's
``options.inference_precision`` (f32). ``inference_precision=`` or the environment variable
``RVM_OPENVINO_PRECISION`` (f32, bf16, f16) overrides it, to measure what another setting does.
"""

import os
from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np
import openvino as ov

from rvm_export.contract import METADATA_KEY, OUTPUT_NAMES, STATE_INPUTS, STATE_OUTPUTS, ArtifactMetadata

from .base import Outputs, Runner, RunnerError, load_error

PRECISION_ENV = "RVM_OPENVINO_PRECISION"
HINTS = ("f32", "bf16", "f16")


def read_model(path: Path) -> ov.Model:
    if not path.is_file():
        raise RunnerError(f"artifact not found: {path}")
    if not path.with_suffix(".bin").is_file():
        raise RunnerError(f"{path.with_suffix('.bin')} is missing; an OpenVINO IR needs its .bin beside the .xml")
    try:
        return ov.Core().read_model(str(path))
    except Exception as exc:  # OpenVINO raises RuntimeError with multi-line C++ context
        raise load_error(path, "a loadable OpenVINO IR", exc)


def model_metadata(model: ov.Model, path: Path) -> ArtifactMetadata:
    if not model.has_rt_info([METADATA_KEY]):
        raise RunnerError(f"{path} carries no {METADATA_KEY} in its rt_info; it was not written by rvm-export")
    try:
        return ArtifactMetadata.from_json(model.get_rt_info([METADATA_KEY]).astype(str))
    except (ValueError, TypeError, RecursionError) as exc:  # a damaged document: not JSON, fields missing
        raise load_error(path, f"an OpenVINO IR with a readable {METADATA_KEY}", exc)


class OpenVinoRunner(Runner):
    kind = "openvino"

    def __init__(self, path: str | Path, inference_precision: Optional[str] = None) -> None:
        self.path = Path(path)
        model = read_model(self.path)
        self.metadata = model_metadata(model, self.path)
        options = self.metadata.options if isinstance(self.metadata.options, dict) else {}
        hint = inference_precision or os.environ.get(PRECISION_ENV) or options.get("inference_precision")
        if hint not in HINTS:
            raise RunnerError(f"inference precision {hint!r} is not one of {', '.join(HINTS)} (set {PRECISION_ENV})")
        try:
            self.compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
        except Exception as exc:  # an IR that reads but does not compile (a forged shape, a broken edge)
            raise load_error(self.path, "an OpenVINO IR the CPU plugin compiles", exc)
        # What the plugin really uses (a CPU without bf16 support falls back to f32).
        self.inference_precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        self.request = self.compiled.create_infer_request()

    @classmethod
    def read_metadata(cls, path: Path) -> ArtifactMetadata:
        return model_metadata(read_model(Path(path)), Path(path))

    def initial_state(self, batch: int) -> List[np.ndarray]:
        return [np.zeros((1, 1, 1, 1), np.float32)] * 4

    def set_threads(self, threads: int) -> None:
        import openvino as ov

        config = {"INFERENCE_PRECISION_HINT": self.inference_precision, "INFERENCE_NUM_THREADS": threads}
        self.compiled = ov.Core().compile_model(read_model(self.path), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        feeds = {"src": np.ascontiguousarray(src, np.float32), **dict(zip(STATE_INPUTS, state, strict=True))}
        feeds["downsample_ratio"] = np.asarray([downsample_ratio], np.float32)
        result = self.request.infer(feeds)
        out = {name: np.array(result[self.compiled.output(name)], dtype=np.float32) for name in OUTPUT_NAMES}
        return out, [out[name] for name in STATE_OUTPUTS]
