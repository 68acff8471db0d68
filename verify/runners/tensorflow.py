"""TensorFlow SavedModel runner: the ``serving_default`` signature, channels-last.

State is carried as TensorFlow tensors in NHWC; only the outputs handed to the comparator are
transposed to NCHW numpy."""

from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
import tensorflow as tf

from contract import METADATA_KEY, OUTPUT_NAMES, STATE_INPUTS, STATE_OUTPUTS, ArtifactMetadata

from .base import Outputs, Runner, RunnerError


def nchw(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).transpose(0, 3, 1, 2)


class TensorFlowRunner(Runner):
    kind = "tensorflow"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        try:
            loaded = tf.saved_model.load(str(self.path))
        except Exception as exc:  # TF raises many kinds for a damaged SavedModel
            raise RunnerError(f"{self.path} is not a loadable SavedModel: {str(exc).strip().splitlines()[0]}")
        if "serving_default" not in loaded.signatures:
            raise RunnerError(f"{self.path} has no serving_default signature; re-export it with rvm-export tensorflow")
        self._loaded = loaded  # keeps the variables alive
        self.fn = loaded.signatures["serving_default"]

    @classmethod
    def read_metadata(cls, path: Path) -> ArtifactMetadata:
        asset = Path(path) / "assets" / METADATA_KEY
        if not asset.is_file():
            raise RunnerError(f"{path} carries no assets/{METADATA_KEY}; it was not written by rvm-export")
        return ArtifactMetadata.from_json(asset.read_text())

    def initial_state(self, batch: int) -> List[tf.Tensor]:
        return [tf.constant(0.0)] * 4  # the documented first-frame state

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        feeds = dict(zip(STATE_INPUTS, state, strict=True))
        out = self.fn(
            src=tf.constant(src.transpose(0, 2, 3, 1)),
            downsample_ratio=tf.constant(downsample_ratio, tf.float32),
            **feeds,
        )
        missing = [n for n in OUTPUT_NAMES if n not in out]
        if missing:
            raise RunnerError(f"the SavedModel's serving_default lacks outputs {missing}")
        return {n: nchw(out[n]) for n in OUTPUT_NAMES}, [out[n] for n in STATE_OUTPUTS]
