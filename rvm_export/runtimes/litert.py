"""LiteRT runner: ``ai_edge_litert``'s interpreter and its ``serving_default`` signature runner.

The signature runner resizes its input tensors whenever a frame of another size (or the first
full-size state after the ``[1,1,1,1]`` zeros) arrives, so one interpreter runs every case. The
state is carried in NHWC numpy arrays; outputs are transposed to NCHW for comparison."""

from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from rvm_export.contract import METADATA_KEY, OUTPUT_NAMES, STATE_INPUTS, STATE_OUTPUTS, ArtifactMetadata

from .base import Outputs, Runner, RunnerError, load_error
from .tflite_inspect import check_flatbuffer


def read_tflite_metadata(path: Path) -> ArtifactMetadata:
    if not Path(path).is_file():
        raise RunnerError(f"artifact not found: {path}")
    data = Path(path).read_bytes()
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() is not None and entry.Name().decode() == METADATA_KEY:
                return ArtifactMetadata.from_json(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    except Exception as exc:  # a foreign or truncated file: flatbuffers raises what it meets
        raise RunnerError(f"{path} is not a readable .tflite flatbuffer: {type(exc).__name__}: {exc}")
    raise RunnerError(f"{path} carries no {METADATA_KEY} metadata; it was not written by rvm-export")


class LiteRtRunner(Runner):
    kind = "tflite"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        check_flatbuffer(self.path)
        try:
            self.interpreter = Interpreter(model_path=str(self.path))
            self.run = self.interpreter.get_signature_runner("serving_default")
        except Exception as exc:  # the interpreter raises ValueError/RuntimeError for broken files
            raise load_error(self.path, "loadable by LiteRT", exc)

    @classmethod
    def read_metadata(cls, path: Path) -> ArtifactMetadata:
        return read_tflite_metadata(path)

    def initial_state(self, batch: int) -> List[np.ndarray]:
        return [np.zeros((1, 1, 1, 1), np.float32)] * 4

    def set_threads(self, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
        self.run = self.interpreter.get_signature_runner("serving_default")

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        feeds = dict(zip(STATE_INPUTS, state, strict=True))
        out = self.run(
            src=np.ascontiguousarray(src.transpose(0, 2, 3, 1), np.float32),
            downsample_ratio=np.float32(downsample_ratio),
            **feeds,
        )
        missing = [n for n in OUTPUT_NAMES if n not in out]
        if missing:
            raise RunnerError(f"the serving_default signature lacks outputs {missing}")
        nchw = {n: np.asarray(out[n], np.float32).transpose(0, 3, 1, 2) for n in OUTPUT_NAMES}
        return nchw, [np.array(out[n]) for n in STATE_OUTPUTS]
