"""TensorFlow SavedModel runner: the ``serving_default`` signature, channels-last.

State is carried as TensorFlow tensors in NHWC; only the outputs handed to the comparator are
transposed to NCHW numpy."""

from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from rvm_export.contract import METADATA_KEY, OUTPUT_NAMES, STATE_INPUTS, STATE_OUTPUTS, ArtifactMetadata

from .base import LARGE_TENSOR, ArtifactFacts, Outputs, Runner, RunnerError, load_error, precision_of


def nchw(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).transpose(0, 3, 1, 2)


class TensorFlowRunner(Runner):
    kind = "tensorflow"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        try:
            loaded = tf.saved_model.load(str(self.path))
        except Exception as exc:  # TF raises many kinds for a damaged SavedModel
            raise load_error(self.path, "a loadable SavedModel", exc)
        if "serving_default" not in loaded.signatures:
            raise RunnerError(f"{self.path} has no serving_default signature; re-export it with rvm-export tensorflow")
        self._loaded = loaded  # keeps the variables alive
        self.fn = loaded.signatures["serving_default"]

    @classmethod
    def pin_process_threads(cls, threads: int) -> None:
        """TensorFlow takes its thread counts only before its runtime starts (the first SavedModel load)."""
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:  # already started in this process (a test session): it keeps its own counts
            pass

    @classmethod
    def read_metadata(cls, path: Path) -> Optional[ArtifactMetadata]:
        asset = Path(path) / "assets" / METADATA_KEY
        if not asset.is_file():
            return None
        try:
            return ArtifactMetadata.from_json(asset.read_text())
        except (OSError, ValueError, TypeError, RecursionError) as exc:  # not UTF-8, not JSON, fields missing
            raise load_error(asset, f"a readable {METADATA_KEY}", exc)

    def facts(self) -> ArtifactFacts:
        """Precision from the variables, or from the graph's constants when the weights are frozen in."""
        dtypes = [v.dtype.name for v in self.fn.variables if (v.shape.num_elements() or 0) >= LARGE_TENSOR]
        if dtypes:
            return precision_of(dtypes, "variables")
        for op in self.fn.graph.get_operations():
            if op.type == "Const" and (op.outputs[0].shape.num_elements() or 0) >= LARGE_TENSOR:
                dtypes.append(op.outputs[0].dtype.name)
        return precision_of([d for d in dtypes if d.startswith("float")], "graph constants")

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
