"""``convert_videos``: matte a library of videos (files or image folders) into one output folder.

Each input's outputs go to ``OUT/<input stem>/``; the output names (``output_alpha='pha.mp4'``) are relative to
that folder. A broken input is reported and the others go on. Every output is atomic, and an input is complete
when its done-marker, ``OUT/<stem>/.rvm-convert.json``, is there: it is written atomically after every output of
the input was moved into place and records what was asked (input, model, options); a re-run skips an input whose
marker matches the request and whose outputs all exist (``overwrite=True`` redoes it). An input is removed from
the marker's sight (the marker deleted) before it is converted again.

The work is a list of jobs: a whole input, or with ``chunk_frames`` a range of one input's frames that starts
``warmup_frames`` early (its recurrent state converges on frames whose outputs are dropped) and is written as PNG
parts under ``OUT/<stem>/.parts/``, joined into the outputs once every chunk of the input is done. The jobs and
``run_job`` are :mod:`rvm_export.inference.jobs`; the library plans them, hands them to an executor (one after
another in this process, :class:`~rvm_export.inference.jobs.LocalExecutor`, or on Ray with ``ray='auto'`` or a
cluster address, :mod:`rvm_export.inference.ray_backend`), joins chunks and writes the markers.
"""

import json
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePath
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from rvm_export.contract.errors import USER_ERRORS, InferenceError, first_line
from rvm_export.contract.files import PendingPath, remove, write_atomic
from rvm_export.inference.engine import DEFAULT_PRESET, ENCODER_THREADS, Settings, output_paths
from rvm_export.inference.io import VideoWriter, check_writable, open_reader
from rvm_export.inference.jobs import PARTS, Executor, Job, JobResult, LocalExecutor, ModelSource, part_folder

MARKER = ".rvm-convert.json"  # OUT/<stem>/MARKER: the input is complete
# Frames each chunk runs before its own (outputs dropped): benchmarks/chunk_seams.py, docs/inference.md.
DEFAULT_WARMUP_FRAMES = 64


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


# ----------------------------------------------------------------------------- the library


def check_library(settings: Settings, chunk_frames: Optional[int], warmup_frames: int) -> None:
    """The library's arguments, before anything runs: the settings, output names inside each input's folder, chunking."""
    settings.check()
    _check_relative(settings)
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
        output_paths(output_composition, output_alpha, output_foreground),
        output_type,
        tuple(input_resize) if input_resize else None,  # type: ignore[arg-type]
        downsample_ratio,
        output_video_mbps,
        output_video_preset,
        output_video_crf,
        seq_chunk,
        num_workers,
    )
    return convert_library(
        model, inputs, output_dir, settings, progress=progress, device=device, dtype=dtype, overwrite=overwrite,
        ray=ray, chunk_frames=chunk_frames, warmup_frames=warmup_frames, worker_cpus=worker_cpus,
        max_retries=max_retries,
    )  # fmt: skip


def convert_library(
    model: Any,
    inputs: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    settings: Settings,
    *,
    progress: bool = True,
    device: Optional[str | torch.device] = None,
    dtype: Optional[torch.dtype] = None,
    overwrite: bool = False,
    ray: Optional[str] = None,
    chunk_frames: Optional[int] = None,
    warmup_frames: int = DEFAULT_WARMUP_FRAMES,
    worker_cpus: float = 1,
    max_retries: int = 2,
) -> LibraryResult:
    """:func:`convert_videos` with convert_video's options in one :class:`~rvm_export.inference.engine.Settings`
    (output paths relative to each input's folder); ``model`` may also be a ModelSource."""
    check_library(settings, chunk_frames, warmup_frames)
    source = ModelSource.of(model, device, dtype)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise InferenceError(f"{output_dir} is a file; output_dir must be a folder", "output_dir")
    executor = _executor(source, ray, worker_cpus, max_retries)
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
            executor.run([job for item in todo for job in item.jobs], settings, done, bar)
    finally:
        executor.close()
    result.seconds = time.perf_counter() - start
    order = {str(Path(p).resolve()): i for i, p in enumerate(inputs)}
    result.inputs.sort(key=lambda r: order.get(r.input, 0))
    return result


def _executor(source: ModelSource, ray: Optional[str], worker_cpus: float, max_retries: int) -> Executor:
    """Where the jobs run: one after another here (the model loaded now), or on Ray actors."""
    if ray is None:
        return LocalExecutor(source)
    from rvm_export.inference import ray_backend

    if source.obj is not None and not isinstance(source.obj, torch.nn.Module):
        raise InferenceError("on Ray, pass a module, a checkpoint or an artifact path (a runner stays in its process)")
    return ray_backend.RayExecutor(ray, source, worker_cpus, max_retries)


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


__all__ = [
    "DEFAULT_WARMUP_FRAMES",
    "MARKER",
    "InputResult",
    "LibraryResult",
    "ModelSource",
    "check_library",
    "convert_library",
    "convert_videos",
    "is_complete",
    "join_parts",
    "report",
    "stem",
]
