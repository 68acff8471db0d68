"""The jobs of a video library, what a worker loads, ``run_job``, and the executor that runs jobs in this process.

A job is a whole input or, with chunking, a range of one input's frames that starts early (its recurrent state
converges on frames whose outputs are dropped) and is written as PNG parts under ``OUT/<stem>/.parts/``.
:func:`run_job` runs one with a loaded model, through the engine (:mod:`rvm_export.inference.engine`), in
whatever process holds it: :class:`LocalExecutor` here, or a Ray actor (:mod:`rvm_export.inference.ray_backend`).
Both executors have ``run(jobs, settings, done, bar)`` and ``close()`` (:class:`Executor`); the library
(:mod:`rvm_export.inference.library`) plans the jobs and picks the executor.
"""

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Protocol, Tuple

import numpy as np
import torch

from rvm_export.contract.errors import USER_ERRORS, InferenceError, first_line
from rvm_export.contract.files import remove
from rvm_export.inference.backends import make_backend
from rvm_export.inference.engine import (
    ENCODER_NICE,
    Settings,
    Sink,
    convert,
    finishing,
    fit_fixed_case,
    run_frames,
)
from rvm_export.inference.io import ImageSequenceReader, ImageSequenceWriter, VideoReader, open_reader

PARTS = ".parts"  # OUT/<stem>/PARTS/<chunk>/<output>/: a chunk's frames as PNGs until they are joined


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

    @classmethod
    def of(
        cls, model: Any, device: Optional[str | torch.device] = None, dtype: Optional[torch.dtype] = None
    ) -> "ModelSource":
        """What ``convert_videos`` was given: a checkpoint (.pth) or artifact path, or an object."""
        if isinstance(model, ModelSource):
            return model
        if isinstance(model, (str, os.PathLike)):
            path = Path(model)
            if not path.exists():
                raise InferenceError(f"model not found: {path}")
            dev = str(device) if device is not None else None
            if path.suffix == ".pth":
                return cls(checkpoint=str(path), device=dev, dtype="float16" if dtype == torch.float16 else None)
            return cls(artifact=str(path))
        return cls(obj=model, device=str(device) if device is not None else None, dtype=dtype)

    @classmethod
    def from_options(
        cls,
        checkpoint: Optional[str],
        artifact: Optional[str],
        variant: Optional[str],
        refiner: Optional[str],
        device: str,
        dtype: str,
    ) -> "ModelSource":
        """rvm-convert's model options: exactly one of ``--checkpoint`` and ``--artifact``."""
        if (checkpoint is None) == (artifact is None):
            raise InferenceError("pass exactly one of --checkpoint (a .pth file) or --artifact (an exported model)")
        if artifact is not None:
            return cls(artifact=artifact)
        return cls(checkpoint=checkpoint, variant=variant, refiner=refiner, device=device, dtype=dtype)

    def require_here(self, device: str) -> None:
        """Before many inputs start: CUDA is here if ``device`` (the command line's) asks for it, and the file
        exists (else every job would fail)."""
        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            raise InferenceError("CUDA is not available here; pass --device cpu")
        path = Path(self.checkpoint or self.artifact)  # type: ignore[arg-type]
        if not path.exists():
            raise InferenceError(f"{'checkpoint' if self.checkpoint else 'artifact'} not found: {path}")

    @property
    def label(self) -> str:
        """What the done-marker records of the model (a path, or the object's type)."""
        if self.checkpoint or self.artifact:
            return str(Path(self.checkpoint or self.artifact).resolve())  # type: ignore[arg-type]
        return type(self.obj).__name__

    def model(self) -> Any:
        """What ``convert_video`` takes for one input: the checkpoint loaded, the artifact's path (convert_video
        opens it after checking the input), or the object."""
        if self.checkpoint is None:
            return self.artifact if self.artifact is not None else self.obj
        from model import half_precision, load_checkpoint

        device = self.device or "cpu"
        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            raise InferenceError("CUDA is not available here; pass --device cpu")
        model = load_checkpoint(self.checkpoint, self.variant, self.refiner).to(device)
        return half_precision(model) if self.dtype == "float16" else model

    def load(self) -> Tuple[Any, Callable[[], None]]:
        """For many jobs: (what convert_video takes, a function that releases it); an artifact is opened once."""
        if self.artifact is not None:
            backend = make_backend(self.artifact)
            return backend.runner, backend.close  # type: ignore[attr-defined]
        return self.model(), lambda: None

    def run_device(self) -> Optional[str]:
        """The ``device=`` a job passes with the loaded model (an object's; a loaded checkpoint is already there)."""
        return self.device if self.obj is not None else None

    def torch_dtype(self) -> Optional[torch.dtype]:
        if self.obj is not None and isinstance(self.dtype, torch.dtype):
            return self.dtype
        return None


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


def part_folder(job: Job) -> Path:
    return Path(job.folder) / PARTS / f"{job.part:05d}"


# ----------------------------------------------------------------------------- running a job (in a worker)


class _FrameRange:
    """Frames ``[first, end)`` of a reader (``end`` None: to the end), looking like a reader to run_frames."""

    def __init__(self, reader: VideoReader | ImageSequenceReader, first: int, end: Optional[int]) -> None:
        self.reader, self.first, self.end = reader, first, end
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

    def __init__(self, sink: Sink, count: int) -> None:
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


def _run_part(model: Any, job: Job, settings: Settings, device: Any, dtype: Any, on_frames: Callable) -> int:
    folder = part_folder(job)
    remove(folder)
    folder.mkdir(parents=True)
    reader = open_reader(job.input, resize=settings.input_resize)
    backend = make_backend(model, device, dtype)
    try:
        resize, ratio = fit_fixed_case(backend, settings.input_resize, settings.downsample_ratio)
        if resize != settings.input_resize:
            reader = open_reader(job.input, resize=resize)
        source = _FrameRange(reader, job.first, job.end)
        writers = {name: ImageSequenceWriter(folder / name, "png") for name in settings.requested()}
        sinks = {name: Sink(writer, nice=ENCODER_NICE) for name, writer in writers.items()}
        with finishing(sinks):
            drops = {name: _Drop(sink, job.start - job.first) for name, sink in sinks.items()}
            fitted = replace(settings, input_resize=resize, downsample_ratio=ratio)
            frames, _ = run_frames(backend, source, drops, fitted, False, on_frames)
            wanted = len(source) if job.end is not None else frames
            if frames != wanted or frames <= job.start - job.first:
                raise InferenceError(f"{job.input} ended after {job.first + frames} frames, before frame {job.end}")
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
            within = settings.within(folder)
            frames = convert(
                model, job.input, within, progress=False, device=device, dtype=dtype, on_frames=count
            ).frames
    except USER_ERRORS as exc:
        return JobResult(done[0], time.perf_counter() - start, str(exc))
    except ImportError as exc:
        return JobResult(done[0], time.perf_counter() - start, f"a module is missing: {first_line(exc)}")
    except Exception as exc:  # a bug or a runtime's own failure: one input's, the others go on
        return JobResult(done[0], time.perf_counter() - start, f"{type(exc).__name__}: {first_line(exc)}")
    return JobResult(frames, time.perf_counter() - start)


# ----------------------------------------------------------------------------- executors


class Executor(Protocol):
    """Runs a library's jobs and calls ``done(job, result)`` as each ends, ``bar.update(frames)`` as frames go."""

    def run(self, jobs: List[Job], settings: Settings, done: Callable[[Job, JobResult], None], bar: Any) -> None: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Every job one after another in this process, the model loaded once (load errors raise here)."""

    def __init__(self, source: ModelSource) -> None:
        self.source = source
        self.model, self.release = source.load()

    def run(self, jobs: List[Job], settings: Settings, done: Callable[[Job, JobResult], None], bar: Any) -> None:
        for job in jobs:
            done(
                job, run_job(self.model, job, settings, self.source.run_device(), self.source.torch_dtype(), bar.update)
            )

    def close(self) -> None:
        self.release()


__all__ = ["PARTS", "Executor", "Job", "JobResult", "LocalExecutor", "ModelSource", "part_folder", "run_job"]
