"""``convert_videos``: matte a library of videos (files or image folders) into one output folder.

Each input's outputs go to ``OUT/<input stem>/``; the output names (``output_alpha='pha.mp4'``) are relative to
that folder. A broken input is reported and the others go on. Every output is atomic, and an input is complete
when its done-marker, ``OUT/<stem>/.rvm-convert.json``, is there: it is written atomically after every output of
the input was moved into place and records what was asked (input, model, options); a re-run skips an input whose
marker matches the request and whose outputs all exist (``overwrite=True`` redoes it). An input is removed from
the marker's sight (the marker deleted) before it is converted again.

The work is a list of jobs: a whole input, or with ``chunk_frames`` a range of one input's frames that starts
``warmup_frames`` early (its recurrent state converges on frames whose outputs are dropped) and is written as PNG
parts under ``OUT/<stem>/.parts/``, joined into the outputs once every chunk of the input is done. Jobs run one
after another here, or on Ray (``ray='auto'`` or a cluster address; :mod:`rvm_export.inference.ray_backend`).
"""

import json
import os
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path, PurePath
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from rvm_export.contract.errors import USER_ERRORS, InferenceError, first_line
from rvm_export.contract.files import PendingPath, remove, write_atomic
from rvm_export.inference.backends import make_backend
from rvm_export.inference.convert import (
    DEFAULT_PRESET,
    ENCODER_NICE,
    ENCODER_THREADS,
    OUTPUT_TYPES,
    _check_arguments,
    _fit_fixed_case,
    _run,
    _Sink,
    convert_video,
)
from rvm_export.inference.io import (
    ImageSequenceReader,
    ImageSequenceWriter,
    VideoReader,
    VideoWriter,
    check_writable,
    open_reader,
)

MARKER = ".rvm-convert.json"  # OUT/<stem>/MARKER: the input is complete
PARTS = ".parts"  # OUT/<stem>/PARTS/<chunk>/<output>/: a chunk's frames as PNGs until they are joined
# Frames each chunk runs before its own (outputs dropped): benchmarks/chunk_seams.py, docs/inference.md.
DEFAULT_WARMUP_FRAMES = 64
OUTPUT_NAMES = ("composition", "alpha", "foreground")


@dataclass(frozen=True)
class Settings:
    """What convert_video is asked for each input, the output paths relative to the input's folder."""

    outputs: Dict[str, Optional[str]]
    output_type: str = "video"
    input_resize: Optional[Tuple[int, int]] = None
    downsample_ratio: Optional[float] = None
    output_video_mbps: Optional[float] = None
    output_video_preset: Optional[str] = DEFAULT_PRESET
    output_video_crf: Optional[float] = None
    seq_chunk: int = 1
    num_workers: int = 0

    def requested(self) -> Dict[str, str]:
        return {name: path for name, path in self.outputs.items() if path}

    def record(self) -> Dict[str, Any]:
        """JSON-able, compared with a marker's."""
        data = asdict(self)
        data["input_resize"] = list(self.input_resize) if self.input_resize else None
        return data


@dataclass(frozen=True)
class ModelSource:
    """How a worker gets the model: a checkpoint or an artifact path (loaded once per worker), or an object."""

    checkpoint: Optional[str] = None
    artifact: Optional[str] = None
    obj: Any = None
    variant: Optional[str] = None
    refiner: Optional[str] = None
    device: Optional[str] = None
    dtype: Optional[str] = None  # "float32" / "float16"; for an object: what convert_video's dtype= takes

    @property
    def label(self) -> str:
        """What the done-marker records of the model (a path, or the object's type)."""
        if self.checkpoint or self.artifact:
            return str(Path(self.checkpoint or self.artifact).resolve())  # type: ignore[arg-type]
        return type(self.obj).__name__

    def load(self) -> Tuple[Any, Callable[[], None]]:
        """(what convert_video takes, a function that releases it): an artifact is opened once here."""
        if self.checkpoint is not None:
            from rvm_export.inference.convert import _load_model

            device = self.device or "cpu"
            return _load_model(self.checkpoint, None, self.variant, self.refiner, device, self.dtype or "float32"), (
                lambda: None
            )
        if self.artifact is not None:
            backend = make_backend(self.artifact)
            return backend.runner, backend.close  # type: ignore[attr-defined]
        return self.obj, lambda: None

    def torch_dtype(self) -> Optional[torch.dtype]:
        if self.obj is not None and isinstance(self.dtype, torch.dtype):
            return self.dtype
        return None


def model_source(
    model: Any, device: Optional[str | torch.device] = None, dtype: Optional[torch.dtype] = None
) -> ModelSource:
    """A ModelSource for what ``convert_videos`` was given: a checkpoint (.pth) or artifact path, or an object."""
    if isinstance(model, ModelSource):
        return model
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.exists():
            raise InferenceError(f"model not found: {path}")
        dev = str(device) if device is not None else None
        if path.suffix == ".pth":
            return ModelSource(checkpoint=str(path), device=dev, dtype="float16" if dtype == torch.float16 else None)
        return ModelSource(artifact=str(path))
    return ModelSource(obj=model, device=str(device) if device is not None else None, dtype=dtype)


@dataclass(frozen=True)
class Job:
    """A whole input (``part`` None) or frames ``[first, end)`` of it whose outputs from ``start`` on are kept."""

    input: str
    folder: str
    part: Optional[int] = None
    first: int = 0
    start: int = 0
    end: Optional[int] = None
    frames: int = 0  # frames it puts through the model (warm-up included), as planned

    @property
    def key(self) -> str:
        return self.input if self.part is None else f"{self.input}#{self.part}"


@dataclass
class JobResult:
    frames: int = 0  # frames through the model (warm-up included)
    seconds: float = 0.0
    error: Optional[str] = None


@dataclass
class InputResult:
    """One input's outcome: ``status`` is "converted", "skipped" (already complete) or "failed" (``error`` says why)."""

    input: str
    folder: str
    status: str
    frames: int = 0
    error: Optional[str] = None


@dataclass
class LibraryResult:
    inputs: List[InputResult] = field(default_factory=list)
    seconds: float = 0.0

    def _with(self, status: str) -> List[InputResult]:
        return [r for r in self.inputs if r.status == status]

    @property
    def converted(self) -> List[InputResult]:
        return self._with("converted")

    @property
    def skipped(self) -> List[InputResult]:
        return self._with("skipped")

    @property
    def failed(self) -> List[InputResult]:
        return self._with("failed")

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.converted)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


# ----------------------------------------------------------------------------- planning


def stem(path: str | os.PathLike) -> str:
    """The folder name an input's outputs go to: a file's stem, a folder's name."""
    p = Path(path)
    return p.name if p.is_dir() else p.stem


def _check_relative(settings: Settings) -> None:
    for name, value in settings.requested().items():
        rel = PurePath(value)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise InferenceError(
                f"output_{name} {value!r} must be a name inside each input's folder (e.g. pha.mp4) with output_dir",
                f"output_{name}",
            )


def _folders(inputs: Sequence[str | os.PathLike], output_dir: Path) -> List[Tuple[str, Path]]:
    if not inputs:
        raise InferenceError("no inputs; pass one or more video files or image folders")
    seen: Dict[str, str] = {}
    plan = []
    for item in inputs:
        name = stem(item)
        if name in seen:
            raise InferenceError(
                f"two inputs would write to {output_dir / name} ({seen[name]} and {item}); "
                "rename one or convert them into different output folders"
            )
        seen[name] = str(item)
        plan.append((str(Path(item).resolve()), output_dir / name))
    return plan


def _marker_record(input_path: str, model: ModelSource, settings: Settings, chunking: Dict[str, int]) -> dict:
    return {"input": input_path, "model": model.label, "settings": settings.record(), "chunking": chunking}


def is_complete(folder: Path, record: dict) -> bool:
    """The done-marker is there, asks for the same as ``record``, and every output it names exists."""
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or {k: marker.get(k) for k in record} != record:
        return False
    return all((folder / p).exists() for p in record["settings"]["outputs"].values() if p)


def _chunks(length: int, chunk_frames: int, warmup: int) -> Iterator[Tuple[int, int, Optional[int]]]:
    """(first, start, end) per chunk; the last one runs to the input's end (``end`` None)."""
    starts = list(range(0, length, chunk_frames)) or [0]
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else None
        yield max(0, start - warmup), start, end


# ----------------------------------------------------------------------------- running a job (in a worker)


class _FrameRange:
    """Frames ``[first, end)`` of a reader (``end`` None: to the end), looking like a reader to convert's _run."""

    def __init__(self, reader: VideoReader | ImageSequenceReader, first: int, end: Optional[int], workers: int) -> None:
        self.reader, self.first, self.workers = reader, first, workers
        self.end = end
        self.frame_rate = reader.frame_rate
        self.size = reader.size

    def __len__(self) -> int:
        end = len(self.reader) if self.end is None else self.end
        return max(0, end - self.first)

    def iter_arrays(self) -> Iterator[np.ndarray]:
        if isinstance(self.reader, ImageSequenceReader):
            end = len(self.reader) if self.end is None else self.end
            yield from (self.reader.read_array(i) for i in range(self.first, end))
            return
        for index, array in enumerate(self.reader.iter_arrays()):  # decoding from the start: exact, no seeking
            if self.end is not None and index >= self.end:
                return
            if index >= self.first:
                yield array


class _Drop:
    """A sink that drops the first ``count`` frames it is given (a chunk's warm-up)."""

    def __init__(self, sink: _Sink, count: int) -> None:
        self.sink, self.count = sink, count

    def put(self, frames: np.ndarray) -> None:
        if self.count >= len(frames):
            self.count -= len(frames)
            return
        self.sink.put(frames[self.count :])
        self.count = 0


def _clear_partials(folder: Path, settings: Settings) -> None:
    """Temporary outputs a killed worker left (its atomic writer never ran to the end)."""
    for rel in settings.requested().values():
        target = folder / rel
        if target.parent.is_dir():
            for stale in target.parent.glob(f".{target.stem}.partial-*"):
                remove(stale)


def part_folder(job: Job) -> Path:
    return Path(job.folder) / PARTS / f"{job.part:05d}"


def _run_part(model: Any, job: Job, settings: Settings, device: Any, dtype: Any, on_frames: Callable) -> int:
    folder = part_folder(job)
    remove(folder)
    folder.mkdir(parents=True)
    reader = open_reader(job.input, resize=settings.input_resize)
    backend = make_backend(model, device, dtype)
    try:
        resize, ratio = _fit_fixed_case(backend, settings.input_resize, settings.downsample_ratio)
        if resize != settings.input_resize:
            reader = open_reader(job.input, resize=resize)
        source = _FrameRange(reader, job.first, job.end, settings.num_workers)
        writers = {name: ImageSequenceWriter(folder / name, "png") for name in settings.requested()}
        sinks = {name: _Sink(writer, nice=ENCODER_NICE) for name, writer in writers.items()}
        try:
            frames, _ = _run(
                backend, source, {n: _Drop(s, job.start - job.first) for n, s in sinks.items()},  # type: ignore[misc]
                settings.output_type, ratio, settings.seq_chunk, 0, False, on_frames,
            )  # fmt: skip
            wanted = len(source) if job.end is not None else frames
            if frames != wanted or frames <= job.start - job.first:
                raise InferenceError(f"{job.input} ended after {job.first + frames} frames, before frame {job.end}")
            for sink in sinks.values():
                sink.finish()
        except BaseException:
            for sink in sinks.values():
                sink.abort()
            raise
    finally:
        backend.close()
    return frames


def run_job(
    model: Any,
    job: Job,
    settings: Settings,
    device: Any = None,
    dtype: Any = None,
    on_frames: Optional[Callable[[int], None]] = None,
) -> JobResult:
    """Run one job with a loaded model (a fresh recurrent state); errors come back as the result's one line."""
    start = time.perf_counter()
    done = [0]

    def count(n: int) -> None:
        done[0] += n
        if on_frames is not None:
            on_frames(n)

    try:
        if job.part is not None:
            frames = _run_part(model, job, settings, device, dtype, count)
        else:
            folder = Path(job.folder)
            _clear_partials(folder, settings)
            outputs = {name: (str(folder / rel) if rel else None) for name, rel in settings.outputs.items()}
            result = convert_video(
                model,
                job.input,
                input_resize=settings.input_resize,
                downsample_ratio=settings.downsample_ratio,
                output_type=settings.output_type,
                output_composition=outputs.get("composition"),
                output_alpha=outputs.get("alpha"),
                output_foreground=outputs.get("foreground"),
                output_video_mbps=settings.output_video_mbps,
                seq_chunk=settings.seq_chunk,
                num_workers=settings.num_workers,
                progress=False,
                device=device,
                dtype=dtype,
                output_video_preset=settings.output_video_preset,
                output_video_crf=settings.output_video_crf,
                on_frames=count,
            )
            frames = result.frames
    except USER_ERRORS as exc:
        return JobResult(done[0], time.perf_counter() - start, str(exc))
    except ImportError as exc:
        return JobResult(done[0], time.perf_counter() - start, f"a module is missing: {first_line(exc)}")
    except Exception as exc:  # a bug or a runtime's own failure: one input's, the others go on
        return JobResult(done[0], time.perf_counter() - start, f"{type(exc).__name__}: {first_line(exc)}")
    return JobResult(frames, time.perf_counter() - start)


# ----------------------------------------------------------------------------- joining chunks (the driver)


def _part_files(job: Job, name: str) -> List[Path]:
    return sorted((part_folder(job) / name).iterdir(), key=lambda p: int(p.stem))  # 9999.png before 10000.png


def join_parts(folder: Path, jobs: List[Job], settings: Settings, frame_rate: Fraction) -> int:
    """Join the chunks' PNG parts into the outputs (each atomic); returns the frames per output."""
    from PIL import Image

    frames = 0
    for name, rel in settings.requested().items():
        target = folder / rel
        files = [f for job in jobs for f in _part_files(job, name)]
        frames = len(files)
        if settings.output_type == "png_sequence":
            check_writable(target, is_dir=True)
            pending = PendingPath(target)
            try:
                pending.tmp.mkdir()
                for index, path in enumerate(files):
                    os.replace(path, pending.tmp / f"{index:04d}.png")
                pending.commit()
            finally:
                pending.discard()
            continue
        mbps = settings.output_video_mbps or 1.0
        writer = VideoWriter(
            target,
            frame_rate,
            int(mbps * 1_000_000),
            preset=settings.output_video_preset,
            crf=settings.output_video_crf,
            threads=ENCODER_THREADS,  # as convert_video encodes on a CPU: the same frames give the same bytes
        )
        try:
            for path in files:
                with Image.open(path) as image:
                    writer.write_array(np.asarray(image)[None])
            writer.close()
        except BaseException:
            writer.abort()
            raise
    remove(folder / PARTS)
    return frames


# ----------------------------------------------------------------------------- the library


def _check_settings(settings: Settings, chunk_frames: Optional[int], warmup_frames: int) -> None:
    _check_arguments(
        settings.downsample_ratio,
        settings.output_type,
        settings.outputs,
        settings.output_video_mbps,
        settings.seq_chunk,
        settings.num_workers,
    )
    _check_relative(settings)
    if settings.output_type not in OUTPUT_TYPES:
        raise InferenceError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}")
    if settings.output_type != "video" and (settings.output_video_mbps or settings.output_video_crf) is not None:
        raise InferenceError("output_video_mbps and output_video_crf only apply to output_type='video'")
    if settings.output_video_mbps is not None and settings.output_video_crf is not None:
        raise InferenceError("pass output_video_mbps (a bit rate) or output_video_crf (a quality), not both")
    if chunk_frames is not None and (not isinstance(chunk_frames, int) or chunk_frames < 1):
        raise InferenceError(f"chunk_frames must be an integer >= 1, got {chunk_frames}", "chunk_frames")
    if not isinstance(warmup_frames, int) or warmup_frames < 0:
        raise InferenceError(f"warmup_frames must be an integer >= 0, got {warmup_frames}", "warmup_frames")


@dataclass
class _Input:
    path: str
    folder: Path
    record: dict
    jobs: List[Job] = field(default_factory=list)
    frame_rate: Fraction = Fraction(30)
    total: int = 0  # frames the jobs put through the model
    results: Dict[str, JobResult] = field(default_factory=dict)


def _plan(
    inputs: Sequence[str | os.PathLike],
    output_dir: Path,
    model: ModelSource,
    settings: Settings,
    chunk_frames: Optional[int],
    warmup_frames: int,
    overwrite: bool,
    result: LibraryResult,
) -> List[_Input]:
    chunking = {"chunk_frames": chunk_frames or 0, "warmup_frames": warmup_frames if chunk_frames else 0}
    todo = []
    for path, folder in _folders(inputs, output_dir):
        item = _Input(path, folder, _marker_record(path, model, settings, chunking))
        if not overwrite and is_complete(folder, item.record):
            result.inputs.append(InputResult(path, str(folder), "skipped"))
            continue
        try:
            reader = open_reader(path, resize=settings.input_resize)
            length = len(reader)
            item.frame_rate = reader.frame_rate
            folder.mkdir(parents=True, exist_ok=True)
            remove(folder / MARKER)  # converting again: not complete until the new marker is written
        except USER_ERRORS as exc:
            result.inputs.append(InputResult(path, str(folder), "failed", error=str(exc)))
            continue
        except OSError as exc:
            result.inputs.append(InputResult(path, str(folder), "failed", error=f"{folder}: {first_line(exc)}"))
            continue
        if chunk_frames is None or length <= chunk_frames:
            item.jobs = [Job(path, str(folder), frames=length)]
        else:
            for part, (first, start, end) in enumerate(_chunks(length, chunk_frames, warmup_frames)):
                frames = (end if end is not None else length) - first
                item.jobs.append(Job(path, str(folder), part, first, start, end, frames))
        item.total = sum(job.frames for job in item.jobs)
        todo.append(item)
    return todo


def _finish(item: _Input, settings: Settings) -> InputResult:
    """An input whose jobs all ended: joined (chunks), marked complete, or failed with its first error."""
    errors = [item.results[job.key].error for job in item.jobs if item.results[job.key].error]
    folder = str(item.folder)
    if errors:
        remove(item.folder / PARTS)
        return InputResult(item.path, folder, "failed", error=errors[0])
    try:
        if item.jobs[0].part is not None:
            frames = join_parts(item.folder, item.jobs, settings, item.frame_rate)
        else:
            frames = item.results[item.jobs[0].key].frames
        write_atomic(item.folder / MARKER, json.dumps(item.record | {"frames": frames}, indent=1).encode())
    except USER_ERRORS as exc:
        return InputResult(item.path, folder, "failed", error=str(exc))
    except OSError as exc:
        return InputResult(item.path, folder, "failed", error=f"writing {folder} failed ({first_line(exc)})")
    return InputResult(item.path, folder, "converted", frames)


def convert_videos(
    model: Any,
    inputs: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    input_resize: Optional[Tuple[int, int]] = None,
    downsample_ratio: Optional[float] = None,
    output_type: str = "video",
    output_composition: Optional[str] = None,
    output_alpha: Optional[str] = None,
    output_foreground: Optional[str] = None,
    output_video_mbps: Optional[float] = None,
    seq_chunk: int = 1,
    num_workers: int = 0,
    progress: bool = True,
    device: Optional[str | torch.device] = None,
    dtype: Optional[torch.dtype] = None,
    *,
    output_video_preset: Optional[str] = DEFAULT_PRESET,
    output_video_crf: Optional[float] = None,
    overwrite: bool = False,
    ray: Optional[str] = None,
    chunk_frames: Optional[int] = None,
    warmup_frames: int = DEFAULT_WARMUP_FRAMES,
    worker_cpus: float = 1,
    max_retries: int = 2,
) -> LibraryResult:
    """Matte every input into ``output_dir/<input stem>/``, with convert_video's options (output names
    relative to that folder). Returns a :class:`LibraryResult`; a failed input is in ``.failed`` with its one
    line, and never stops the others. Argument errors raise :class:`InferenceError` before anything runs.

    ``model``: a MattingNetwork or TorchScript module, a checkpoint (.pth) or artifact path (opened once per
    worker), or, without ``ray``, a runner. ``ray``: ``'auto'`` (RAY_ADDRESS, a running local cluster, or a new
    one) or a cluster address: each worker (``worker_cpus`` CPUs) loads the model once, and a worker that dies
    has its job retried ``max_retries`` times before the input is reported failed. ``chunk_frames``: split
    inputs longer than that into chunks run as separate jobs, each starting ``warmup_frames`` early; the result
    is close to, not bit-identical with, the sequential run (docs/inference.md).
    """
    settings = Settings(
        {"composition": output_composition, "alpha": output_alpha, "foreground": output_foreground},
        output_type,
        tuple(input_resize) if input_resize else None,  # type: ignore[arg-type]
        downsample_ratio,
        output_video_mbps,
        output_video_preset,
        output_video_crf,
        seq_chunk,
        num_workers,
    )
    _check_settings(settings, chunk_frames, warmup_frames)
    source = model_source(model, device, dtype)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise InferenceError(f"{output_dir} is a file; output_dir must be a folder", "output_dir")
    if ray is not None:
        from rvm_export.inference import ray_backend

        if source.obj is not None and not isinstance(source.obj, torch.nn.Module):
            raise InferenceError(
                "on Ray, pass a module, a checkpoint or an artifact path (a runner stays in its process)"
            )

        runner: Any = ray_backend.RayRunner(ray, source, worker_cpus, max_retries)
    else:
        runner = LocalRunner(source)
    start = time.perf_counter()
    result = LibraryResult()
    try:
        todo = _plan(inputs, output_dir, source, settings, chunk_frames, warmup_frames, overwrite, result)
        from tqdm.auto import tqdm

        by_key = {job.key: item for item in todo for job in item.jobs}

        def done(job: Job, outcome: JobResult) -> None:
            item = by_key[job.key]
            item.results[job.key] = outcome
            if len(item.results) == len(item.jobs):
                result.inputs.append(_finish(item, settings))

        total = sum(item.total for item in todo)
        with tqdm(total=total, disable=not progress, dynamic_ncols=True, unit="frame") as bar:
            runner.run([job for item in todo for job in item.jobs], settings, done, bar)
    finally:
        runner.close()
    result.seconds = time.perf_counter() - start
    order = {str(Path(p).resolve()): i for i, p in enumerate(inputs)}
    result.inputs.sort(key=lambda r: order.get(r.input, 0))
    return result


def report(result: LibraryResult, echo: Callable[[str], None]) -> int:
    """One line per failed input, then a summary; the exit status (1 when an input failed, else 0)."""
    for item in result.failed:
        error = item.error or "failed"
        echo(f"rvm-convert: {error}" if item.input in error else f"rvm-convert: {item.input}: {error}")
    echo(
        f"converted {len(result.converted)} of {len(result.inputs)} inputs ({result.frames} frames in "
        f"{result.seconds:.1f} s, {result.fps:.1f} fps); {len(result.skipped)} already complete, "
        f"{len(result.failed)} failed"
    )
    return 1 if result.failed else 0


class LocalRunner:
    """Every job one after another in this process, the model loaded once (load errors raise here)."""

    def __init__(self, source: ModelSource) -> None:
        self.source = source
        self.model, self.release = source.load()

    def run(self, jobs: List[Job], settings: Settings, done: Callable[[Job, JobResult], None], bar: Any) -> None:
        device = self.source.device if self.source.obj is not None else None
        for job in jobs:
            done(job, run_job(self.model, job, settings, device, self.source.torch_dtype(), bar.update))

    def close(self) -> None:
        self.release()


__all__ = [
    "DEFAULT_WARMUP_FRAMES",
    "MARKER",
    "InputResult",
    "LibraryResult",
    "ModelSource",
    "convert_videos",
    "is_complete",
    "report",
    "stem",
]
