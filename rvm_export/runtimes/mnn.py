"""MNN runner: the ``MNN`` Python package's Module API (``MNN.nn.load_module_from_file``) on the CPU backend.

The module is loaded with ``shape_mutable=True``, so a frame of another size or batch, the first full-size state
after the ``[1,1,1,1]`` zeros, or another ratio re-plans its shapes; the runtime ``downsample_ratio`` input and
the ``If`` that skips the refiner at ratio 1 come from the ONNX export. Inputs and outputs carry the contract's
names (MNN keeps the ONNX names). The metadata is read from the ``bizCode`` of the flatbuffer as data
(:mod:`rvm_export.runtimes.mnn_format`), before MNN sees the file.

Precision: ``precision_mode`` High (fp32) by default. ``RVM_MNN_PRECISION`` (Low, Normal, High) sets another to
measure it; on x86 MNN 3.6.1 has no fp16 arithmetic (it prints ``fp16:0`` when it starts), so every mode computes
fp32 here, and what Low does on an ARMv8.2 phone (fp16, the guided filter included) cannot be run here
(docs/mnn.md). Winograd tiles are kept small (``WINOGRAD_MEMORY_LEVEL`` 0, below): MNN's default fails the fp32
gate. Only ``import MNN`` is used, never ``MNN.tools`` (see rvm_export/export/mnn.py).

Like every runner it runs in the confined child process (:mod:`rvm_export.runtimes.child`): MNN trusts each op's
parameter table, so a forged one that passed the inspection ends in one line, not a signal.
"""

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np

from rvm_export.contract import INPUT_NAMES, METADATA_KEY, OUTPUT_NAMES, ArtifactMetadata

from .base import ArtifactFacts, Outputs, Runner, RunnerError, load_error
from .mnn_format import MnnError, read_mnn

PRECISION_ENV = "RVM_MNN_PRECISION"
# Interpreter::HintMode::WINOGRAD_MEMORY_LEVEL (MNN 3.x Interpreter.hpp) set to 0: MNN's default (3) picks large
# Winograd tiles for 3x3 convolutions, which move a conv's output by ~5e-5 of its range in fp32 (measured: the
# ConvGRU's ih conv at 320x192 off by 5.3e-4 from ONNX Runtime, r1o by 3.4e-3, failing the fp32 gate); at 0 MNN
# keeps the small tiles (1.7e-5). Hint 1 (STRICT_CHECK_MODEL) is left at its default: MNN verifies the file.
WINOGRAD_MEMORY_LEVEL = 3
MAX_BYTES = 2 << 30


class _Captured:
    text = ""

    def first(self) -> str:
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        return lines[0][:300] if lines else ""


@contextlib.contextmanager
def mnn_output() -> Iterator[_Captured]:
    """What MNN's C++ prints (its CPU features on import, its load errors) captured at file descriptors 1 and 2,
    so that a report or a refusal stays the runner's own lines."""
    captured = _Captured()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            captured.text = sink.read(1 << 16).decode("utf-8", "replace")


with mnn_output():
    import MNN  # never MNN.tools: see the module docstring

F = MNN.expr
MODES = {"Low": F.PrecisionMode.Low, "Normal": F.PrecisionMode.Normal, "High": F.PrecisionMode.High}


def read_biz_code(path: Path) -> str:
    if not path.is_file():
        raise RunnerError(f"artifact not found: {path}")
    if path.stat().st_size > MAX_BYTES:
        raise RunnerError(f"{path} is larger than {MAX_BYTES >> 30} GiB, more than any RVM model")
    try:
        return read_mnn(path.read_bytes()).biz_code
    except MnnError as exc:
        raise load_error(path, "a readable MNN model", exc)


def metadata_of(path: Path) -> Optional[ArtifactMetadata]:
    text = read_biz_code(path)
    if not text.lstrip().startswith("{"):
        return None  # another converter's bizCode ("MNNTest", a name): no metadata
    try:
        return ArtifactMetadata.from_json(text)
    except (ValueError, TypeError, RecursionError) as exc:
        raise load_error(path, f"an MNN model whose bizCode holds a readable {METADATA_KEY}", exc)


def load_module(path: Path, threads: int, precision: str) -> Any:
    if precision not in MODES:
        raise RunnerError(f"{PRECISION_ENV}={precision!r} is not one of {', '.join(MODES)}")
    with mnn_output() as log:
        try:
            runtime = MNN.nn.create_runtime_manager(({"precision": precision.lower(), "numThread": threads},))
            runtime.set_hint(WINOGRAD_MEMORY_LEVEL, 0)
            module = MNN.nn.load_module_from_file(
                str(path), list(INPUT_NAMES), list(OUTPUT_NAMES), runtime_manager=runtime, shape_mutable=True,
                rearrange=False, precision_mode=MODES[precision], thread_num=threads,
            )  # fmt: skip
        except Exception as exc:  # MNN raises SystemError/RuntimeError with its own message
            module, error = None, exc
        else:
            error = None
    if module is None:
        cause = log.first() or (str(error).splitlines()[0] if error else "load_module_from_file returned None")
        raise RunnerError(f"{path} is not an MNN model that MNN loads: {cause[:300]}")
    return module


def run_forward(module: Any, arrays: tuple) -> List[np.ndarray]:
    """One frame: ``src``, the four states and the ratio in, the six outputs out ."""
    inputs = [F.const(a, list(a.shape), F.NCHW, F.float) for a in arrays]
    with mnn_output() as log:
        try:
            results = module.onForward(inputs)
        except Exception as exc:
            results, error = None, exc
        else:
            error = None
    if error is not None or not results or len(results) != len(OUTPUT_NAMES):
        cause = log.first() or (str(error).splitlines()[0] if error else f"{len(results or [])} outputs")
        raise RunnerError(f"MNN failed to run the model: {cause[:300]}")
    out = []
    for value in results:
        if value.data_format == F.NC4HW4:
            value = F.convert(value, F.NCHW)
        out.append(np.array(value.read(), dtype=np.float32, copy=True))
    return out


class MnnRunner(Runner):
    kind = "mnn"

    def __init__(self, path: str | Path, threads: Optional[int] = None) -> None:
        self.path = Path(path)
        self.metadata = metadata_of(self.path)
        self.threads = threads or os.cpu_count() or 1
        self.precision = os.environ.get(PRECISION_ENV, "High")
        self.module = self._load()

    def _load(self) -> Any:
        if self.precision not in MODES:
            raise RunnerError(f"{PRECISION_ENV}={self.precision!r} is not one of {', '.join(MODES)}")
        return load_module(self.path, self.threads, self.precision)

    @classmethod
    def read_metadata(cls, path: Path) -> Optional[ArtifactMetadata]:
        return metadata_of(Path(path))

    def facts(self) -> ArtifactFacts:
        return ArtifactFacts(None, "the runner does not decode MNN's weight encodings (fp32 or --fp16 storage)")

    def describe(self) -> str:
        return f"MNN {MNN.version()} CPU, precision_mode {self.precision}, winograd level 0, {self.threads} thread(s)"

    def set_threads(self, threads: int) -> None:
        self.threads = threads
        self.module = self._load()

    def initial_state(self, batch: int) -> List[np.ndarray]:
        return [np.zeros((1, 1, 1, 1), np.float32)] * 4  # the ONNX graph broadcasts them, as the model does

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        arrays = [np.ascontiguousarray(src, np.float32), *(np.ascontiguousarray(s, np.float32) for s in state)]
        arrays.append(np.asarray([downsample_ratio], np.float32))
        out = dict(zip(OUTPUT_NAMES, run_forward(self.module, tuple(arrays)), strict=True))
        return out, [out[name] for name in ("r1o", "r2o", "r3o", "r4o")]


__all__ = ["MnnRunner"]
