"""ncnn runner: the ``ncnn`` Python package (the library a phone app links), one extractor per frame.

The graph takes one frame (batch 1: ncnn's ``Mat`` is C x H x W); a batch is run item by item, each item with
its own recurrent state. States are full-shape blobs: zeros of the first frame's shapes, then the previous
frame's ``r1o..r4o``. The downsample ratio is fixed in the graph and read from the metadata
(``options.downsample_ratio``); another ratio is refused.

Precision: the runner keeps ncnn's defaults (``use_fp16_storage``, ``use_fp16_packed``, ``use_fp16_arithmetic``
on), as a phone app does. ncnn 1.0.20261020 stores blobs in fp16 on x86 too (F16C; its fp16 arithmetic is ARM's),
and the refiner's layers stay fp32 by their feature mask, so the verifier judges the artifact at
``options.phone_precision`` (fp16: PyTorch's fp16 recipe with the refiner fp32). ``RVM_NCNN_JUDGE=fp32`` turns
the fp16 options off and judges at fp32 instead (the conversion's own exactness).

Like every runner it runs in the confined child process (:mod:`rvm_export.runtimes.child`): ncnn trusts each
layer's parameters, so a forged one that passed the inspection ends in one line instead of a signal. Frame
sizes off the ratio's grid are refused by convert_video (:meth:`NcnnRunner.size_problem`) and shown failing by the
verifier.
"""

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

import ncnn
import numpy as np

from rvm_export.contract import METADATA_KEY, OUTPUT_NAMES, STATE_INPUTS, ArtifactMetadata, ncnn_param

from .base import Outputs, Runner, RunnerError, load_error, on_grid

JUDGE_ENV = "RVM_NCNN_JUDGE"


def read_param(path: Path) -> ncnn_param.Param:
    if not path.is_file():
        raise RunnerError(f"artifact not found: {path}")
    try:
        return ncnn_param.parse(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise load_error(path, "a readable ncnn .param", exc)


def param_metadata(param: ncnn_param.Param, path: Path) -> Optional[ArtifactMetadata]:
    text = param.metadata_text()
    if text is None:
        return None
    try:
        return ArtifactMetadata.from_json(text)
    except (ValueError, TypeError, RecursionError) as exc:
        raise load_error(path, f"an ncnn .param with a readable {METADATA_KEY} line", exc)


class _Log:
    def __init__(self) -> None:
        self.text = ""

    def first(self) -> str:
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        return lines[0][:300] if lines else ""


@contextlib.contextmanager
def ncnn_log() -> Iterator[_Log]:
    """ncnn's own error lines (NCNN_LOGE writes them to stderr from C++), captured at the file descriptor so that
    a refused file is one line, the runner's, that quotes ncnn's first."""
    log = _Log()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield log
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            log.text = capture.read(1 << 16).decode("utf-8", "replace")


def state_sizes(height: int, width: int, ratio: float) -> List[Tuple[int, int]]:
    """(height, width) of r1..r4 for a frame: the low-resolution frame (ncnn truncates size x ratio) halved
    with rounding up, once per level (stride-2 convolutions and ceil-mode pooling)."""
    h, w = int(height * np.float32(ratio)), int(width * np.float32(ratio))
    sizes = []
    for _ in range(4):
        h, w = (h + 1) // 2, (w + 1) // 2
        sizes.append((h, w))
    return sizes


def load_net(path: Path, threads: int, fp16: bool) -> "ncnn.Net":
    """The ncnn Net of ``path`` and its ``.bin``."""
    weights = path.with_suffix(".bin")
    net = ncnn.Net()
    net.opt.num_threads = threads
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = fp16
    with ncnn_log() as log:
        loaded = net.load_param(str(path))
    if loaded != 0:
        raise RunnerError(f"{path} is not an ncnn .param that ncnn loads: {log.first() or 'load_param failed'}")
    with ncnn_log() as log:
        loaded = net.load_model(str(weights))
    if loaded != 0:
        raise RunnerError(
            f"{weights} does not hold the weights {path.name} declares: {log.first() or 'load_model failed'}"
        )
    names = set(net.input_names()) | set(net.output_names())
    missing = [n for n in (*("src", *STATE_INPUTS), *OUTPUT_NAMES) if n not in names]
    if missing:
        raise RunnerError(f"{path} lacks the contract's blobs {', '.join(missing)}")
    return net


def run_frame(net: "ncnn.Net", arrays: tuple) -> List[np.ndarray]:
    """One frame: ``src`` [3,H,W] and the four states in, the six outputs out."""
    extractor = net.create_extractor()
    mats = [ncnn.Mat(np.ascontiguousarray(a, np.float32)) for a in arrays]  # referenced until copied out
    for name, mat in zip(("src", *STATE_INPUTS), mats, strict=True):
        extractor.input(name, mat)
    out = []
    for name in OUTPUT_NAMES:
        code, mat = extractor.extract(name)
        if code != 0:
            height, width = arrays[0].shape[1:]
            raise RunnerError(f"ncnn failed to compute {name} (code {code}) on a {width}x{height} frame")
        out.append(np.array(mat, dtype=np.float32, copy=True))
    del mats
    return out


class NcnnRunner(Runner):
    kind = "ncnn"

    def __init__(self, path: str | Path, threads: Optional[int] = None) -> None:
        self.path = Path(path)
        self.param = read_param(self.path)
        self.metadata = param_metadata(self.param, self.path)
        self.threads = threads or os.cpu_count() or 1
        self.net = self._load()

    def _load(self) -> "ncnn.Net":
        weights = self.path.with_suffix(".bin")
        if not weights.is_file():
            raise RunnerError(f"{weights} is missing; an ncnn model needs its .bin beside the .param")
        self.fp16 = self.metadata is None or self.judged_precision() == "fp16"  # ncnn's defaults, as on a phone
        return load_net(self.path, self.threads, self.fp16)

    @classmethod
    def read_metadata(cls, path: Path) -> Optional[ArtifactMetadata]:
        return param_metadata(read_param(Path(path)), Path(path))

    @property
    def ratio(self) -> float:
        options = self.metadata.options if self.metadata else {}
        ratio = options.get("downsample_ratio")
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0 < ratio <= 1:
            raise RunnerError(f"{self.path}'s metadata records no downsample_ratio in (0, 1]; re-export it")
        return float(ratio)

    def fixed_ratio(self) -> Optional[float]:
        return self.ratio

    def size_problem(self, width: int, height: int) -> Optional[str]:
        ratio = self.ratio
        if (on_grid(width, ratio), on_grid(height, ratio)) == (width, height):
            return None
        return (
            f"{width}x{height} frames are off the grid of downsample_ratio {ratio:g} that {self.path.name} was exported "
            f"for (ncnn resamples with the scale its sizes imply: width and height x ratio must be whole, docs/ncnn.md); "
            f"resize them, e.g. input_resize=({on_grid(width, ratio)}, {on_grid(height, ratio)})"
        )

    def judged_precision(self) -> str:
        assert self.metadata is not None
        judge = os.environ.get(JUDGE_ENV) or self.metadata.options.get("phone_precision") or self.metadata.precision
        if judge not in ("fp32", "fp16"):
            raise RunnerError(f"{JUDGE_ENV}={judge!r}: judge an ncnn artifact at fp32 or fp16")
        return judge

    def contract_problems(self) -> List[str]:
        """fp16 on the phone is judged with the refiner in fp32: every refiner layer must say so."""
        if self.judged_precision() != "fp16":
            return []
        head = ncnn_param.projection_split(self.param)
        if head is None:
            return ["no 3+1 channel Slice (project_mat's split) found: the refiner's layers cannot be told apart"]
        loose = [
            layer.name
            for layer in ncnn_param.refiner_layers(self.param, head)
            if layer.featmask & 3 != 3  # fp16 arithmetic and storage off
        ]
        if not loose:
            return []
        return [
            f"{len(loose)} refiner layer(s) ({', '.join(loose[:3])}...) lack the feature mask 31=7: a phone computing "
            "in fp16 would run the guided filter in fp16 (docs/ncnn.md: alpha off by up to 0.2 and more)"
        ]

    def describe(self) -> str:
        storage = "fp16 storage (ncnn's defaults, refiner fp32 by its feature mask)" if self.fp16 else "fp32"
        return f"ncnn {getattr(ncnn, '__version__', '?')} CPU, {self.threads} thread(s), {storage}"

    def set_threads(self, threads: int) -> None:
        self.threads = threads
        self.net = self._load()

    def initial_state(self, batch: int) -> List[Optional[List[np.ndarray]]]:
        return [None] * batch

    def _zeros(self, height: int, width: int) -> List[np.ndarray]:
        channels = self.metadata.options.get("state_channels") if self.metadata else None
        if not isinstance(channels, list) or len(channels) != 4:
            raise RunnerError(f"{self.path}'s metadata records no state_channels; re-export it")
        sizes = state_sizes(height, width, self.ratio)
        return [np.zeros((int(c), h, w), np.float32) for c, (h, w) in zip(channels, sizes, strict=True)]

    def _frame(self, src: np.ndarray, states: List[np.ndarray]) -> List[np.ndarray]:
        return run_frame(self.net, (src, *states))

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        if abs(downsample_ratio - self.ratio) > 1e-9:
            raise RunnerError(
                f"{self.path} was exported for downsample_ratio {self.ratio:g}; it cannot run at {downsample_ratio:g} "
                "(export another with rvm-export ncnn --downsample-ratio)",
                "ratio",
            )
        items, states = [], []
        for b in range(src.shape[0]):
            previous = state[b] if state[b] is not None else self._zeros(src.shape[2], src.shape[3])
            out = self._frame(src[b], previous)
            items.append(out)
            states.append(out[2:])
        outputs = {name: np.stack([item[i] for item in items]) for i, name in enumerate(OUTPUT_NAMES)}
        return outputs, states
