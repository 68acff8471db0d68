"""The single-video engine: ``convert_video`` and what a conversion is asked (:class:`Settings`).

Decoding, inference and encoding run concurrently: a reader thread decodes and groups frames into chunks, the
calling thread runs the model, and one thread per output encodes, all joined by small bounded queues so memory
stays flat. The jobs of a video library (:mod:`rvm_export.inference.jobs`) run through the same pieces:
:func:`convert` for a whole input, :func:`fit_fixed_case`, :class:`Sink` and :func:`run_frames` for a chunk.
"""

import contextlib
import math
import os
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, NoReturn, Optional, Tuple

import numpy as np
import torch

from rvm_export.contract.files import os_reason
from rvm_export.inference.backends import Backend, make_backend
from rvm_export.inference.io import (
    ImageSequenceReader,
    ImageSequenceWriter,
    InferenceError,
    VideoWriter,
    open_reader,
)

GREEN = (120, 255, 155)  # composition background, RGB
OUTPUT_TYPES = ("video", "png_sequence")
AUTO_RATIO_SIDE = 512  # automatic downsample: the largest side of the downsampled frame ~512 px
QUEUE_DEPTH = 3  # chunks in flight between each pair of stages
# x264 preset of video outputs: "medium" (x264's default) costs ~45 ms per 720p frame and output, as much as
# the model on 2 CPU cores for three outputs; see benchmarks/convert_speed.py and the README for the choice.
DEFAULT_PRESET = "veryfast"
# Thread plan when the model runs on a CPU (on a GPU the cores are the encoders': FFmpeg picks), where the model's OpenMP threads already use every core: each output gets one encoding
# thread (x264 single-threaded inside it: several outputs already encode in parallel), and those threads run at
# a lower priority (nice +ENCODER_NICE, Linux), so they fill the cores' idle moments instead of preempting a
# PyTorch worker, which stalls the whole parallel op. Their queues absorb the delay.
ENCODER_THREADS = 1  # FFmpeg threads per encoder (0: FFmpeg's automatic count)
ENCODER_NICE = 10


@dataclass
class ConversionResult:
    """What was converted: frames written per output, their rate and size, and how long it took."""

    frames: int
    frame_rate: Fraction
    width: int
    height: int
    downsample_ratio: float
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else math.inf


def auto_downsample_ratio(height: int, width: int) -> float:
    """The ratio that brings the largest side to about 512 px, never above 1."""
    return min(AUTO_RATIO_SIDE / max(height, width), 1.0)


@dataclass(frozen=True)
class Settings:
    """What a conversion is asked, the model and the input aside: ``convert_video``'s options in one object.

    ``outputs`` maps "composition", "alpha", "foreground" to a path (None: not written); a video library's are
    relative to each input's folder (:meth:`within`). The library records it in its done-markers (:meth:`record`).
    """

    outputs: Dict[str, Any]
    output_type: str = "video"
    input_resize: Optional[Tuple[int, int]] = None
    downsample_ratio: Optional[float] = None
    output_video_mbps: Optional[float] = None
    output_video_preset: Optional[str] = DEFAULT_PRESET
    output_video_crf: Optional[float] = None
    seq_chunk: int = 1
    num_workers: int = 0

    def requested(self) -> Dict[str, Any]:
        return {name: path for name, path in self.outputs.items() if path}

    def within(self, folder: Path) -> "Settings":
        """The same, with the output paths under ``folder``."""
        return replace(self, outputs={name: (str(folder / rel) if rel else None) for name, rel in self.outputs.items()})

    def record(self) -> Dict[str, Any]:
        """JSON-able, compared with a marker's."""
        data = asdict(self)
        data["input_resize"] = list(self.input_resize) if self.input_resize else None
        return data

    def check(self) -> None:
        """Raise :class:`InferenceError` for an option out of range or a combination that cannot be written."""
        if self.output_type not in OUTPUT_TYPES:
            raise InferenceError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, not {self.output_type!r}")
        if not any(self.outputs.values()):
            raise InferenceError("no output requested; pass output_composition, output_alpha and/or output_foreground")
        ratio = self.downsample_ratio
        if ratio is not None and not (isinstance(ratio, (int, float)) and 0 < ratio <= 1):
            raise InferenceError(f"downsample_ratio must be in (0, 1] (or None for automatic), got {ratio}")
        if not isinstance(self.seq_chunk, int) or self.seq_chunk < 1:
            raise InferenceError(f"seq_chunk must be an integer >= 1, got {self.seq_chunk}")
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise InferenceError(f"num_workers must be an integer >= 0, got {self.num_workers}")
        if self.output_video_mbps is not None and not self.output_video_mbps > 0:
            raise InferenceError(f"output_video_mbps must be positive, got {self.output_video_mbps}")
        paths = [Path(p).resolve() for p in self.outputs.values() if p]
        if len(set(paths)) != len(paths):
            raise InferenceError("two outputs have the same path; give each output its own path")
        for name, value in (("output_video_mbps", self.output_video_mbps), ("output_video_crf", self.output_video_crf)):
            if value is not None and self.output_type != "video":
                raise InferenceError(f"{name} only applies to output_type='video'")
        if self.output_video_mbps is not None and self.output_video_crf is not None:
            raise InferenceError("pass output_video_mbps (a bit rate) or output_video_crf (a quality), not both")


def output_paths(composition: Any = None, alpha: Any = None, foreground: Any = None) -> Dict[str, Any]:
    """:attr:`Settings.outputs` from convert_video's ``output_composition``, ``output_alpha``, ``output_foreground``."""
    return {"composition": composition, "alpha": alpha, "foreground": foreground}


# ----------------------------------------------------------------------------- pipeline stages

_END = object()


def _put(q: "queue.Queue[Any]", item: Any, stop: threading.Event) -> bool:
    """Put unless ``stop`` is set meanwhile; True if the item went in."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _in_background(items: Iterable[Any], depth: int = QUEUE_DEPTH) -> Iterator[Any]:
    """Iterate ``items`` in a thread, ``depth`` ahead; its exceptions re-raise here."""
    q: queue.Queue[Any] = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(q, (item, None), stop):
                    return
            _put(q, (_END, None), stop)
        except BaseException as exc:  # handed to the consumer, raised there
            _put(q, (_END, exc), stop)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="rvm-decode", daemon=True)
    thread.start()
    try:
        while True:
            item, error = q.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()


class Sink:
    """One output written by its own thread from a bounded queue; errors surface in put()/finish()."""

    def __init__(self, writer: VideoWriter | ImageSequenceWriter, depth: int = QUEUE_DEPTH, nice: int = 0) -> None:
        self.writer = writer
        self.nice = nice
        self._queue: queue.Queue[Any] = queue.Queue(depth)
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name=f"rvm-write-{writer.path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        lower_priority(self.nice)
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is None:  # after an error keep draining, so put() never blocks forever
                try:
                    self.writer.write_array(item)
                except BaseException as exc:
                    self._error = exc

    def _raise(self, exc: BaseException) -> NoReturn:
        if isinstance(exc, OSError):  # disk full, file system gone read-only, ...: the user's to fix
            raise InferenceError(
                f"writing {self.writer.path} failed ({os_reason(exc)}); free some space or choose another output path"
            ) from exc
        raise exc

    def put(self, frames: np.ndarray) -> None:
        if self._error is not None:
            self._raise(self._error)
        self._queue.put(frames)

    def finish(self) -> None:
        """Wait for the queue to drain and close the writer (renaming its output into place)."""
        self._queue.put(_END)
        self._thread.join()
        if self._error is not None:
            self._raise(self._error)
        try:
            self.writer.close()
        except OSError as exc:
            self._raise(exc)

    def abort(self) -> None:
        self._queue.put(_END)
        self._thread.join()
        self.writer.abort()


def lower_priority(nice: int) -> None:
    """Lower the calling thread's scheduling priority by ``nice`` (Linux: priorities are per thread, and threads it
    starts, such as FFmpeg's, inherit it). Elsewhere, or when refused, nothing changes."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:
        pass


def _chunks(frames: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Group HxWx3 frames into [T,H,W,3] arrays of up to ``size`` frames."""
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def to_uint8(x: torch.Tensor, pha: Optional[torch.Tensor] = None, background: Tuple[int, ...] = ()) -> np.ndarray:
    """[T,C,H,W] floats in 0..1 -> [T,H,W,C] uint8 on the CPU, rounded; with ``pha`` ([T,1,H,W]), composed over
    the ``background`` colour (C values, 0..255) first: ``x * pha + background * (1 - pha)``."""
    if x.device.type != "cpu":  # on an accelerator: compute there, copy a quarter of the bytes
        x = x.float()
        if pha is not None:
            bg = torch.tensor(background, dtype=torch.float32, device=x.device).div(255).view(1, -1, 1, 1)
            x = x * pha.float() + bg * (1 - pha.float())
        x = x.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
        return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    # On a CPU this runs on the model's thread, so it must be cheap: NumPy one frame at a time keeps the float
    # temporaries in cache and converts while changing the layout. A 720p composition costs ~5 ms of CPU time per
    # frame this way against ~18 ms for the same arithmetic as whole-chunk torch ops (benchmarks/convert_speed.py).
    frames = x.float().numpy()
    alphas = pha.float().numpy() if pha is not None else None
    bg = np.asarray(background, np.float32).reshape(-1, 1, 1)
    out = np.empty((frames.shape[0], *frames.shape[2:], frames.shape[1]), np.uint8)
    for t, frame in enumerate(frames):
        y = frame * 255
        if alphas is not None:
            y -= bg
            y *= alphas[t]
            y += bg
        y += 0.5
        np.clip(y, 0, 255, out=y)
        out[t] = y.transpose(1, 2, 0)  # the cast truncates: with the +0.5 above, rounding
    return out


def _renderers(output_type: str) -> Dict[str, Callable[[torch.Tensor, torch.Tensor], np.ndarray]]:
    def composition(fgr: torch.Tensor, pha: torch.Tensor) -> np.ndarray:
        if output_type == "video":
            return to_uint8(fgr, pha, GREEN)
        rgba = to_uint8(torch.cat([fgr.float(), pha.float()], dim=1))
        rgba[..., :3] *= rgba[..., 3:] > 0  # RGBA; no colour where fully transparent (after rounding)
        return rgba

    return {
        "composition": composition,
        "alpha": lambda fgr, pha: to_uint8(pha)[..., 0],
        "foreground": lambda fgr, pha: to_uint8(fgr),
    }


def _open_writers(
    settings: Settings, frame_rate: Fraction, threads: int = 0
) -> Dict[str, VideoWriter | ImageSequenceWriter]:
    writers: Dict[str, VideoWriter | ImageSequenceWriter] = {}
    try:
        for name, path in settings.requested().items():
            if settings.output_type == "video":
                bit_rate = int((settings.output_video_mbps or 1.0) * 1_000_000)
                preset, crf = settings.output_video_preset, settings.output_video_crf
                writers[name] = VideoWriter(path, frame_rate, bit_rate, preset=preset, crf=crf, threads=threads)
            else:
                writers[name] = ImageSequenceWriter(path, "png")
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    return writers


def fit_fixed_case(
    backend: Backend, input_resize: Optional[Tuple[int, int]], downsample_ratio: Optional[float]
) -> Tuple[Optional[Tuple[int, int]], Optional[float]]:
    """Fixed-shape artifacts (e.g. CoreML): default to their size and ratio; refuse any other. An artifact with
    only its ratio baked in (ncnn): default to that ratio; refuse another."""
    fixed = backend.fixed_case()
    if fixed is None:
        baked = backend.fixed_ratio()
        if baked is not None and downsample_ratio is not None and not math.isclose(downsample_ratio, baked):
            raise InferenceError(f"this artifact was exported for downsample_ratio {baked:g}; pass that or None")
        return input_resize, downsample_ratio if baked is None else baked
    width, height, ratio = fixed
    if input_resize is not None and tuple(input_resize) != (width, height):
        raise InferenceError(f"this artifact only takes {width}x{height} frames; pass input_resize=({width}, {height})")
    if downsample_ratio is not None and not math.isclose(downsample_ratio, ratio):
        raise InferenceError(f"this artifact was exported for downsample_ratio {ratio}; pass that or None")
    return (width, height), ratio


@contextlib.contextmanager
def finishing(sinks: Dict[str, "Sink"]) -> Iterator[None]:
    """Finish every sink when the block ends well (its outputs complete); abort them all when it, or a finish,
    raises (no half-written output left looking complete)."""
    try:
        yield
        for sink in sinks.values():
            sink.finish()
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise


def run_frames(
    backend: Backend,
    source: Any,
    sinks: Dict[str, Any],
    settings: Settings,
    progress: bool = False,
    on_frames: Optional[Callable[[int], None]] = None,
) -> Tuple[int, float]:
    """Put ``source``'s frames (a reader, or anything with ``len()`` and ``iter_arrays()``) through the model in
    ``settings.seq_chunk`` chunks and each rendered output into its sink (anything with ``put``); returns (frames,
    the ratio used: ``settings.downsample_ratio``, or the automatic one)."""
    from tqdm.auto import tqdm

    render = _renderers(settings.output_type)
    if isinstance(source, ImageSequenceReader):
        arrays = source.iter_arrays(settings.num_workers)
    else:
        arrays = source.iter_arrays()
    downsample_ratio = settings.downsample_ratio
    frames = 0
    with tqdm(total=len(source), disable=not progress, dynamic_ncols=True, unit="frame") as bar:
        for chunk in _in_background(_chunks(arrays, settings.seq_chunk)):
            if downsample_ratio is None:
                downsample_ratio = auto_downsample_ratio(*chunk.shape[1:3])
            with torch.inference_mode():
                fgr, pha = backend(torch.from_numpy(chunk), downsample_ratio)
                for name, sink in sinks.items():
                    sink.put(render[name](fgr, pha))
            frames += len(chunk)
            bar.update(len(chunk))
            if on_frames is not None:
                on_frames(len(chunk))
    return frames, downsample_ratio or 1.0


def convert_video(
    model: Any,
    input_source: str | os.PathLike,
    input_resize: Optional[Tuple[int, int]] = None,
    downsample_ratio: Optional[float] = None,
    output_type: str = "video",
    output_composition: Optional[str | os.PathLike] = None,
    output_alpha: Optional[str | os.PathLike] = None,
    output_foreground: Optional[str | os.PathLike] = None,
    output_video_mbps: Optional[float] = None,
    seq_chunk: int = 1,
    num_workers: int = 0,
    progress: bool = True,
    device: Optional[str | torch.device] = None,
    dtype: Optional[torch.dtype] = None,
    *,
    output_video_preset: Optional[str] = DEFAULT_PRESET,
    output_video_crf: Optional[float] = None,
    on_frames: Optional[Callable[[int], None]] = None,
) -> ConversionResult:
    """Matte ``input_source`` (a video file or a folder of images) and write the requested outputs.

    ``model`` is a MattingNetwork, a TorchScript module (a frozen one needs ``device`` and
    ``dtype``), an exported artifact's path, or a runner from rvm_export.runtimes. ``output_type='video'`` writes
    H.264 files (composition over green RGB 120,255,155; alpha as monochrome video) at the input's
    frame rate (30 fps for images); ``'png_sequence'`` writes folders of numbered PNGs (composition
    as RGBA). ``downsample_ratio=None`` picks one so the downsampled frame's largest side is ~512 px.
    Outputs appear only when the whole conversion succeeded; errors are :class:`InferenceError`.

    Video outputs are H.264 at ``output_video_mbps`` (default 1) with x264's ``output_video_preset``
    (default ``DEFAULT_PRESET``, chosen so that encoding keeps up with the model on a CPU: see the
    README for its speed and quality cost; None: x264's own default, medium), or at constant quality
    ``output_video_crf`` (0 lossless .. 51) instead of a bit rate. ``on_frames(n)`` is called after each
    chunk of ``n`` frames has gone through the model (an outer progress bar: ``convert_videos``).
    """
    settings = Settings(
        output_paths(output_composition, output_alpha, output_foreground),
        output_type,
        input_resize,
        downsample_ratio,
        output_video_mbps,
        output_video_preset,
        output_video_crf,
        seq_chunk,
        num_workers,
    )
    return convert(model, input_source, settings, progress=progress, device=device, dtype=dtype, on_frames=on_frames)


def convert(
    model: Any,
    input_source: str | os.PathLike,
    settings: Settings,
    *,
    progress: bool = True,
    device: Optional[str | torch.device] = None,
    dtype: Optional[torch.dtype] = None,
    on_frames: Optional[Callable[[int], None]] = None,
) -> ConversionResult:
    """:func:`convert_video` with its options in one :class:`Settings`."""
    settings.check()
    source = open_reader(input_source, resize=settings.input_resize)  # bad input fails before a model is loaded
    backend = make_backend(model, device, dtype)
    try:
        return _convert(backend, input_source, source, settings, progress, on_frames)
    finally:
        backend.close()  # a runtime opened from a path here (a Node.js process, Chromium) ends with the run


def _convert(
    backend: Backend,
    input_source: str | os.PathLike,
    source: Any,
    settings: Settings,
    progress: bool,
    on_frames: Optional[Callable[[int], None]],
) -> ConversionResult:
    fitted_resize, ratio = fit_fixed_case(backend, settings.input_resize, settings.downsample_ratio)
    if fitted_resize != settings.input_resize:
        source = open_reader(input_source, resize=fitted_resize)
    problem = backend.size_problem(*source.size)
    if problem is not None:
        raise InferenceError(problem, "input_resize")
    inputs = Path(input_source).resolve()
    if any(Path(p).resolve() == inputs for p in settings.outputs.values() if p):
        raise InferenceError(f"an output path is the input {input_source}; write the outputs elsewhere")
    on_cpu = backend.device.type == "cpu"
    writers = _open_writers(settings, source.frame_rate, threads=ENCODER_THREADS if on_cpu else 0)
    sinks = {name: Sink(writer, nice=ENCODER_NICE if on_cpu else 0) for name, writer in writers.items()}
    start = time.perf_counter()
    with finishing(sinks):
        frames, ratio = run_frames(
            backend, source, sinks, replace(settings, input_resize=fitted_resize, downsample_ratio=ratio), progress,
            on_frames,
        )  # fmt: skip
        if frames == 0:
            raise InferenceError(f"{input_source} has no frames to convert")
    width, height = source.size
    return ConversionResult(frames, source.frame_rate, width, height, ratio, time.perf_counter() - start)


__all__ = [
    "DEFAULT_PRESET",
    "GREEN",
    "OUTPUT_TYPES",
    "ConversionResult",
    "Settings",
    "Sink",
    "auto_downsample_ratio",
    "convert",
    "convert_video",
    "fit_fixed_case",
    "output_paths",
    "run_frames",
]
