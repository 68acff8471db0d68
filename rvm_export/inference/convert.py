"""``convert_video``: matte a whole video or image folder with RVM, as the RVM documentation shows.

    python inference.py --variant mobilenetv3 --checkpoint rvm_mobilenetv3.pth --device cpu \\
        --input-source input.mp4 --output-type video --output-composition com.mp4 \\
        --output-alpha pha.mp4 --output-foreground fgr.mp4 --output-video-mbps 4 --seq-chunk 12

(also installed as ``rvm-convert``). Decoding, inference and encoding run concurrently: a reader
thread decodes and groups frames into chunks, the calling thread runs the model, and one thread
per output encodes, all joined by small bounded queues so memory stays flat.
"""

import math
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, NoReturn, Optional, Tuple

import click
import numpy as np
import torch

from rvm_export import extras
from rvm_export.contract.errors import USER_ERRORS, cli_message
from rvm_export.contract.files import os_reason
from rvm_export.inference.backends import Backend, make_backend
from rvm_export.inference.io import (
    X264_PRESETS,
    ImageSequenceReader,
    ImageSequenceWriter,
    InferenceError,
    VideoReader,
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


def _check_arguments(
    downsample_ratio: Optional[float],
    output_type: str,
    outputs: Dict[str, Optional[str]],
    output_video_mbps: Optional[float],
    seq_chunk: int,
    num_workers: int,
) -> None:
    if output_type not in OUTPUT_TYPES:
        raise InferenceError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, not {output_type!r}")
    if not any(outputs.values()):
        raise InferenceError("no output requested; pass output_composition, output_alpha and/or output_foreground")
    if downsample_ratio is not None and not (isinstance(downsample_ratio, (int, float)) and 0 < downsample_ratio <= 1):
        raise InferenceError(f"downsample_ratio must be in (0, 1] (or None for automatic), got {downsample_ratio}")
    if not isinstance(seq_chunk, int) or seq_chunk < 1:
        raise InferenceError(f"seq_chunk must be an integer >= 1, got {seq_chunk}")
    if not isinstance(num_workers, int) or num_workers < 0:
        raise InferenceError(f"num_workers must be an integer >= 0, got {num_workers}")
    if output_video_mbps is not None and not output_video_mbps > 0:
        raise InferenceError(f"output_video_mbps must be positive, got {output_video_mbps}")
    paths = [Path(p).resolve() for p in outputs.values() if p]
    if len(set(paths)) != len(paths):
        raise InferenceError("two outputs have the same path; give each output its own path")


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


class _Sink:
    """One output written by its own thread from a bounded queue; errors surface in put()/finish()."""

    def __init__(self, writer: VideoWriter | ImageSequenceWriter, depth: int = QUEUE_DEPTH, nice: int = 0) -> None:
        self.writer = writer
        self.nice = nice
        self._queue: queue.Queue[Any] = queue.Queue(depth)
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name=f"rvm-write-{writer.path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        _lower_priority(self.nice)
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


def _lower_priority(nice: int) -> None:
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


def _to_uint8(x: torch.Tensor, pha: Optional[torch.Tensor] = None, background: Tuple[int, ...] = ()) -> np.ndarray:
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
            return _to_uint8(fgr, pha, GREEN)
        rgba = _to_uint8(torch.cat([fgr.float(), pha.float()], dim=1))
        rgba[..., :3] *= rgba[..., 3:] > 0  # RGBA; no colour where fully transparent (after rounding)
        return rgba

    return {
        "composition": composition,
        "alpha": lambda fgr, pha: _to_uint8(pha)[..., 0],
        "foreground": lambda fgr, pha: _to_uint8(fgr),
    }


def _open_writers(
    outputs: Dict[str, Optional[str]],
    output_type: str,
    frame_rate: Fraction,
    mbps: float,
    preset: Optional[str] = None,
    crf: Optional[float] = None,
    threads: int = 0,
) -> Dict[str, VideoWriter | ImageSequenceWriter]:
    writers: Dict[str, VideoWriter | ImageSequenceWriter] = {}
    try:
        for name, path in outputs.items():
            if not path:
                continue
            if output_type == "video":
                bit_rate = int(mbps * 1_000_000)
                writers[name] = VideoWriter(path, frame_rate, bit_rate, preset=preset, crf=crf, threads=threads)
            else:
                writers[name] = ImageSequenceWriter(path, "png")
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    return writers


def _fit_fixed_case(
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


def _run(
    backend: Backend,
    source: VideoReader | ImageSequenceReader,
    sinks: Dict[str, _Sink],
    output_type: str,
    downsample_ratio: Optional[float],
    seq_chunk: int,
    num_workers: int,
    progress: bool,
    on_frames: Optional[Callable[[int], None]] = None,
) -> Tuple[int, float]:
    from tqdm.auto import tqdm

    render = _renderers(output_type)
    arrays = source.iter_arrays(num_workers) if isinstance(source, ImageSequenceReader) else source.iter_arrays()
    frames = 0
    with tqdm(total=len(source), disable=not progress, dynamic_ncols=True, unit="frame") as bar:
        for chunk in _in_background(_chunks(arrays, seq_chunk)):
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
    outputs = {"composition": output_composition, "alpha": output_alpha, "foreground": output_foreground}
    _check_arguments(downsample_ratio, output_type, outputs, output_video_mbps, seq_chunk, num_workers)
    for name, value in (
        ("output_video_mbps", output_video_mbps),
        ("output_video_crf", output_video_crf),
    ):
        if value is not None and output_type != "video":
            raise InferenceError(f"{name} only applies to output_type='video'")
    if output_video_mbps is not None and output_video_crf is not None:
        raise InferenceError("pass output_video_mbps (a bit rate) or output_video_crf (a quality), not both")
    source = open_reader(input_source, resize=input_resize)  # bad input fails before a model is loaded
    backend = make_backend(model, device, dtype)
    try:
        return _convert(
            backend,
            input_source,
            source,
            input_resize,
            downsample_ratio,
            output_type,
            outputs,
            output_video_mbps,
            output_video_preset,
            output_video_crf,
            seq_chunk,
            num_workers,
            progress,
            on_frames,
        )
    finally:
        backend.close()  # a runtime opened from a path here (a Node.js process, Chromium) ends with the run


def _convert(
    backend: Backend,
    input_source: str | os.PathLike,
    source: Any,
    input_resize: Optional[Tuple[int, int]],
    downsample_ratio: Optional[float],
    output_type: str,
    outputs: Dict[str, Any],
    output_video_mbps: Optional[float],
    output_video_preset: Optional[str],
    output_video_crf: Optional[float],
    seq_chunk: int,
    num_workers: int,
    progress: bool,
    on_frames: Optional[Callable[[int], None]] = None,
) -> ConversionResult:
    fitted_resize, downsample_ratio = _fit_fixed_case(backend, input_resize, downsample_ratio)
    if fitted_resize != input_resize:
        source = open_reader(input_source, resize=fitted_resize)
    problem = backend.size_problem(*source.size)
    if problem is not None:
        raise InferenceError(problem, "input_resize")
    inputs = Path(input_source).resolve()
    if any(Path(p).resolve() == inputs for p in outputs.values() if p):
        raise InferenceError(f"an output path is the input {input_source}; write the outputs elsewhere")
    on_cpu = backend.device.type == "cpu"
    writers = _open_writers(
        outputs,
        output_type,
        source.frame_rate,
        output_video_mbps or 1.0,
        output_video_preset,
        output_video_crf,
        threads=ENCODER_THREADS if on_cpu else 0,
    )
    sinks = {name: _Sink(writer, nice=ENCODER_NICE if on_cpu else 0) for name, writer in writers.items()}
    start = time.perf_counter()
    try:
        frames, ratio = _run(
            backend, source, sinks, output_type, downsample_ratio, seq_chunk, num_workers, progress, on_frames
        )
        if frames == 0:
            raise InferenceError(f"{input_source} has no frames to convert")
        for sink in sinks.values():
            sink.finish()
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    width, height = source.size
    return ConversionResult(frames, source.frame_rate, width, height, ratio, time.perf_counter() - start)


# ----------------------------------------------------------------------------- command line


def _fail(message: str) -> NoReturn:
    click.echo(f"rvm-convert: error: {message}", err=True)
    sys.exit(2)


def _load_source(
    checkpoint: Optional[str],
    artifact: Optional[str],
    variant: Optional[str],
    refiner: Optional[str],
    device: str,
    dtype: str,
) -> Any:
    """For many inputs: what each worker loads (rvm_export.inference.library.ModelSource)."""
    from rvm_export.inference.library import ModelSource

    if (checkpoint is None) == (artifact is None):
        raise InferenceError("pass exactly one of --checkpoint (a .pth file) or --artifact (an exported model)")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise InferenceError("CUDA is not available here; pass --device cpu")
    path = Path(checkpoint or artifact)  # type: ignore[arg-type]
    if not path.exists():
        raise InferenceError(f"{'checkpoint' if checkpoint else 'artifact'} not found: {path}")
    if artifact is not None:
        return ModelSource(artifact=artifact)
    return ModelSource(checkpoint=checkpoint, variant=variant, refiner=refiner, device=device, dtype=dtype)


def _load_model(
    checkpoint: Optional[str],
    artifact: Optional[str],
    variant: Optional[str],
    refiner: Optional[str],
    device: str,
    dtype: str,
) -> Any:
    from model import half_precision, load_checkpoint

    if (checkpoint is None) == (artifact is None):
        raise InferenceError("pass exactly one of --checkpoint (a .pth file) or --artifact (an exported model)")
    if artifact is not None:
        return artifact
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise InferenceError("CUDA is not available here; pass --device cpu")
    model = load_checkpoint(checkpoint, variant, refiner).to(device)
    return half_precision(model) if dtype == "float16" else model


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--variant",
    type=click.Choice(["mobilenetv3", "resnet50"]),
    default=None,
    help="Inferred from the checkpoint when omitted.",
)
@click.option(
    "--refiner",
    type=click.Choice(["deep_guided_filter", "fast_guided_filter"]),
    default=None,
    help="Inferred from the checkpoint when omitted.",
)
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None, help="RVM checkpoint (.pth).")
@click.option(
    "--artifact",
    type=click.Path(),
    default=None,
    help="An exported model (TorchScript, ONNX, SavedModel, ...) instead of --checkpoint.",
)
@click.option("--device", default="cuda" if torch.cuda.is_available() else "cpu", show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True)
@click.option(
    "--input-source",
    required=True,
    multiple=True,
    help="A video file or a folder of images; several (each given with --input-source) with --output-dir.",
)
@click.option("--input-resize", type=int, nargs=2, default=None, metavar="W H", help="Resize the input frames first.")
@click.option("--downsample-ratio", type=float, default=None, help="In (0, 1]; automatic (~512 px) when omitted.")
@click.option("--output-type", type=click.Choice(OUTPUT_TYPES), default="video", show_default=True)
@click.option("--output-composition", default=None, help="Video file, or folder for png_sequence (RGBA).")
@click.option("--output-alpha", default=None)
@click.option("--output-foreground", default=None)
@click.option("--output-video-mbps", type=float, default=None, help="Bit rate of video outputs [default: 1].")
@click.option(
    "--output-video-preset",
    type=click.Choice(X264_PRESETS),
    default=DEFAULT_PRESET,
    show_default=True,
    help="x264 preset of video outputs: slower presets compress better at the same bit rate (see README).",
)
@click.option(
    "--output-video-crf",
    type=click.FloatRange(0, 51),
    default=None,
    help="Constant quality (0 lossless, 23 x264's default) instead of --output-video-mbps.",
)
@click.option("--seq-chunk", type=int, default=1, show_default=True, help="Frames per forward pass.")
@click.option(
    "--num-workers", type=int, default=0, show_default=True, help="Image reader threads (image folders only)."
)
@click.option("--disable-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Many inputs: each one's outputs go to OUTPUT_DIR/<input stem>/, the --output-* names relative to it.",
)
@click.option("--overwrite", is_flag=True, help="With --output-dir: redo inputs that are already complete.")
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="auto|ADDRESS",
    help="With --output-dir: run the inputs on Ray (auto: RAY_ADDRESS, a running local cluster or a new one).",
)
@click.option(
    "--chunk-frames",
    type=click.IntRange(1),
    default=None,
    help="With --output-dir: split inputs longer than this into chunks run in parallel (not bit-identical).",
)
@click.option(
    "--warmup-frames",
    type=click.IntRange(0),
    default=None,
    help="Frames each chunk runs before its own, outputs dropped [default: 64].",
)
@click.option(
    "--ray-worker-cpus",
    type=click.FloatRange(min=0, min_open=True),
    default=1,
    show_default=True,
    help="CPUs (and torch threads) per Ray worker; one worker per that many CPUs of the cluster.",
)
def main(
    variant: Optional[str],
    refiner: Optional[str],
    checkpoint: Optional[str],
    artifact: Optional[str],
    device: str,
    dtype: str,
    input_source: Tuple[str, ...],
    input_resize: Optional[Tuple[int, int]],
    downsample_ratio: Optional[float],
    output_type: str,
    output_composition: Optional[str],
    output_alpha: Optional[str],
    output_foreground: Optional[str],
    output_video_mbps: Optional[float],
    output_video_preset: str,
    output_video_crf: Optional[float],
    seq_chunk: int,
    num_workers: int,
    disable_progress: bool,
    output_dir: Optional[str],
    overwrite: bool,
    ray_address: Optional[str],
    chunk_frames: Optional[int],
    warmup_frames: Optional[int],
    ray_worker_cpus: float,
) -> None:
    """Matte a video or image folder with Robust Video Matting (many of them with --output-dir)."""

    library = {
        "--ray": ray_address,
        "--chunk-frames": chunk_frames,
        "--warmup-frames": warmup_frames,
        "--overwrite": overwrite or None,
    }
    if output_dir is not None or len(input_source) > 1:
        from rvm_export.inference.library import DEFAULT_WARMUP_FRAMES, convert_videos, report

        if output_dir is None:
            _fail("several --input-source need --output-dir (the folder every input's outputs go to)")
        try:
            extras.require("rvm-convert")
            result = convert_videos(
                _load_source(checkpoint, artifact, variant, refiner, device, dtype),
                input_source,
                output_dir,
                input_resize=input_resize or None,
                downsample_ratio=downsample_ratio,
                output_type=output_type,
                output_composition=output_composition,
                output_alpha=output_alpha,
                output_foreground=output_foreground,
                output_video_mbps=output_video_mbps,
                seq_chunk=seq_chunk,
                num_workers=num_workers,
                progress=not disable_progress,
                output_video_preset=output_video_preset,
                output_video_crf=output_video_crf,
                overwrite=overwrite,
                ray=ray_address,
                chunk_frames=chunk_frames,
                warmup_frames=DEFAULT_WARMUP_FRAMES if warmup_frames is None else warmup_frames,
                worker_cpus=ray_worker_cpus,
            )
        except USER_ERRORS as exc:
            _fail(cli_message(exc))
        except ImportError as exc:
            text = extras.explain("rvm-convert", "", exc)
            if text is None:
                raise
            _fail(text)
        sys.exit(report(result, lambda line: click.echo(line, err=True)))
    try:
        extras.require("rvm-convert")
        for flag, value in library.items():
            if value is not None:
                raise InferenceError(f"{flag} needs --output-dir (the folder every input's outputs go to)")
        model = _load_model(checkpoint, artifact, variant, refiner, device, dtype)
        result = convert_video(
            model,
            input_source=input_source[0],
            input_resize=input_resize or None,
            downsample_ratio=downsample_ratio,
            output_type=output_type,
            output_composition=output_composition,
            output_alpha=output_alpha,
            output_foreground=output_foreground,
            output_video_mbps=output_video_mbps,
            output_video_preset=output_video_preset,
            output_video_crf=output_video_crf,
            seq_chunk=seq_chunk,
            num_workers=num_workers,
            progress=not disable_progress,
        )
    except USER_ERRORS as exc:
        click.echo(f"rvm-convert: error: {cli_message(exc)}", err=True)
        sys.exit(2)
    except ImportError as exc:  # an optional package: PyAV, or an artifact's runtime
        text = extras.explain("rvm-convert", "", exc)
        if text is None:
            raise
        click.echo(f"rvm-convert: error: {text}", err=True)
        sys.exit(2)
    click.echo(
        f"converted {result.frames} frames ({result.width}x{result.height} @ {float(result.frame_rate):g} fps, "
        f"downsample_ratio {result.downsample_ratio:g}) in {result.seconds:.1f} s ({result.fps:.1f} fps)",
        err=True,
    )


if __name__ == "__main__":
    main()
