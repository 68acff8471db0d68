"""Readers and writers for RVM inference: ``from inference_utils import VideoReader, VideoWriter``.

Video goes through PyAV (FFmpeg's libraries, bundled in PyAV's wheels), images through Pillow;
there is no torchvision dependency. Readers hand out RGB frames; writers take frames in 0..1
(tensors) or uint8 arrays and write under a temporary name beside the target, renamed into
place only by a successful ``close()``, so a failed conversion never leaves a file that looks
finished.

Pixel formats written (H.264): ``yuv420p`` when width and height are even; ``yuv444p`` at the
exact size when either is odd (4:2:0 needs even sizes; padding would shift the matte against
the source); single-channel frames (alpha) as true monochrome H.264 (``gray``, full range).
"""

import os
import re
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Deque, Iterator, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from rvm_export.contract.errors import InferenceError, first_line
from rvm_export.contract.files import PendingPath, unwritable_reason

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi")  # containers that take H.264
DEFAULT_IMAGE_FRAME_RATE = Fraction(30)
Size = Tuple[int, int]  # (width, height)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32 in 0..1 (what torchvision's ToTensor gives)."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().div_(255)


def _check_size(size: Optional[Size]) -> Optional[Size]:
    if size is None:
        return None
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in size):
        raise InferenceError(f"input_resize must be two positive integers (width, height), got {size!r}")
    return int(size[0]), int(size[1])


# ----------------------------------------------------------------------------- atomic paths


def _pending(target: str | os.PathLike, is_dir: bool) -> PendingPath:
    """The atomic path an output is written to, once ``target`` is known to be writable."""
    check_writable(target, is_dir)
    return PendingPath(target)


def check_writable(path: str | os.PathLike, is_dir: bool) -> None:
    """Raise InferenceError unless ``path`` can be written (a file, or an image-sequence folder)."""
    path = Path(path)
    if not is_dir and path.is_dir():
        raise InferenceError(f"{path} is a folder; give a video file name such as out.mp4")
    if is_dir and path.exists() and not path.is_dir():
        raise InferenceError(f"{path} is a file; an image-sequence output needs a folder path")
    problem = unwritable_reason(path, folder=is_dir)
    if problem is not None:
        raise InferenceError(f"{problem}; choose another output path")
    if is_dir and path.exists():
        foreign = [p.name for p in path.iterdir() if not re.fullmatch(r"\d+\.(png|jpg)", p.name)]
        if foreign:
            raise InferenceError(
                f"{path} holds files that are not an earlier image-sequence output ({foreign[0]}); "
                "choose an empty or new folder"
            )


# ----------------------------------------------------------------------------- video


def _open_video(path: Path) -> Any:
    import av

    if not path.exists():
        raise InferenceError(f"input not found: {path}")
    if not os.access(path, os.R_OK):
        raise InferenceError(f"cannot read {path} (permission denied)")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InferenceError(
            f"{path} is not a video FFmpeg can read ({first_line(exc)}); pass a video file or a folder of images"
        )
    if not container.streams.video:
        container.close()
        raise InferenceError(f"{path} has no video stream; pass a video file or a folder of images")
    return container


class VideoReader(Dataset):
    """Frames of a video as RGB: ``transform(PIL.Image)`` when a transform is given, else 3xHxW float in 0..1.

    Usable as a map-style Dataset (``DataLoader(reader)`` as in the RVM docs: sequential indexing
    decodes once, going back re-opens the file) and as a plain iterator. ``resize`` (width, height)
    scales frames while decoding (FFmpeg's swscale, area-aware bilinear)."""

    def __init__(
        self, path: str | os.PathLike, transform: Optional[Callable] = None, resize: Optional[Size] = None
    ) -> None:
        self.path = Path(path)
        self.transform = transform
        self.resize = _check_size(resize)
        container = _open_video(self.path)
        try:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            self._frame_rate = Fraction(rate) if rate else DEFAULT_IMAGE_FRAME_RATE
            self._declared_frames = int(stream.frames or 0)
            self._source_size = (int(stream.codec_context.width), int(stream.codec_context.height))
        finally:
            container.close()
        self._length: Optional[int] = self._declared_frames or None
        self._cursor: Optional[Iterator[np.ndarray]] = None
        self._next_index = 0

    @property
    def frame_rate(self) -> Fraction:
        """Average frame rate as an exact fraction (30000/1001 stays exact)."""
        return self._frame_rate

    @property
    def size(self) -> Size:
        """(width, height) of the frames handed out."""
        return self.resize or self._source_size

    def __len__(self) -> int:
        if self._length is None:  # containers such as Matroska store no frame count: count packets
            container = _open_video(self.path)
            with container:
                stream = container.streams.video[0]
                self._length = sum(1 for packet in container.demux(stream) if packet.size)
        return self._length

    def iter_arrays(self) -> Iterator[np.ndarray]:
        """Every frame as an HxWx3 uint8 RGB array, decoded with FFmpeg's own threads."""
        import av

        container = _open_video(self.path)
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            width, height = self.size
            index = 0
            try:
                for frame in container.decode(stream):
                    yield frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="BILINEAR")
                    index += 1
            except av.error.FFmpegError as exc:
                raise InferenceError(f"{self.path}: decoding failed after {index} frames ({first_line(exc)})")

    def _item(self, array: np.ndarray) -> Any:
        if self.transform is None:
            return to_tensor(array)
        return self.transform(Image.fromarray(array))

    def __iter__(self) -> Iterator[Any]:
        return (self._item(a) for a in self.iter_arrays())

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            index += len(self)
        if self._cursor is None or index < self._next_index:
            self._cursor, self._next_index = self.iter_arrays(), 0
        array = None
        while self._next_index <= index:
            array = next(self._cursor, None)
            self._next_index += 1
            if array is None:
                self._cursor = None
                raise IndexError(f"frame {index} is past the end of {self.path}")
        return self._item(array)

    def __getstate__(self) -> dict:  # DataLoader workers: the open decoder stays behind
        state = dict(self.__dict__)
        state["_cursor"], state["_next_index"] = None, 0
        return state


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


class _Encoder:
    """The PyAV side of a VideoWriter; kept apart so a weakref finalizer can close it."""

    def __init__(
        self,
        pending: PendingPath,
        frame_rate: Fraction,
        bit_rate: int,
        preset: Optional[str] = None,
        crf: Optional[float] = None,
        threads: int = 0,
    ) -> None:
        self.pending = pending
        self.frame_rate = frame_rate
        self.bit_rate = bit_rate
        self.preset = preset
        self.crf = crf
        self.threads = threads
        self.container: Any = None
        self.stream: Any = None
        self.frames = 0
        self.done = False

    def open(self, width: int, height: int, channels: int) -> None:
        import av

        self.container = av.open(str(self.pending.tmp), mode="w")
        stream = self.container.add_stream("libx264", rate=self.frame_rate)
        stream.width, stream.height = width, height
        if channels == 1:
            stream.pix_fmt = "gray"  # monochrome H.264; full range so 0 and 255 survive exactly
            stream.codec_context.color_range = 2  # AVCOL_RANGE_JPEG
        else:
            stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        options = {}
        if self.preset is not None:
            options["preset"] = self.preset
        if self.crf is not None:
            options["crf"] = f"{self.crf:g}"  # constant quality: the bit rate is not used
        else:
            stream.bit_rate = self.bit_rate
        stream.codec_context.options = options
        stream.codec_context.thread_count = self.threads  # 0: FFmpeg's automatic count
        self.stream = stream
        self.channels = channels

    def encode(self, array: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(array, format="gray" if self.channels == 1 else "rgb24")
        if self.channels == 1:
            frame.color_range = 2
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    def finish(self, keep: bool) -> None:
        if self.done:
            return
        self.done = True
        try:
            if self.container is not None:
                if keep:
                    self.container.mux(self.stream.encode())
                self.container.close()
            if keep and self.frames == 0:
                raise InferenceError(f"no frames were written to {self.pending.target}")
            if keep:
                self.pending.commit()
        finally:
            self.pending.discard()


class _AtomicWriter:
    """``close()`` moves the output into place, ``abort()`` drops it, a ``with`` block does one or the
    other, and a writer dropped without ``close()`` (as in the RVM docs' example) is closed when
    garbage-collected."""

    def _finish_with(self, finish: Callable[[bool], None]) -> None:
        self._finish = finish
        self._finalizer = weakref.finalize(self, finish, True)

    def close(self) -> None:
        """Finish the output and move it into place."""
        self._finalizer.detach()
        self._finish(True)

    def abort(self) -> None:
        """Drop everything written so far."""
        self._finalizer.detach()
        self._finish(False)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.abort() if exc_type is not None else self.close()


class VideoWriter(_AtomicWriter):
    """H.264 video writer: ``write(frames)`` with [C,H,W], [T,C,H,W] or [B,T,C,H,W] tensors in 0..1
    (C = 3 for RGB, 1 for a single-channel alpha video), or uint8 arrays via :meth:`write_array`.

    Writes to a temporary name; ``close()`` (or leaving a ``with`` block normally) finishes the
    file and renames it into place; an exception inside ``with`` discards it. A writer dropped
    without ``close()`` (as in the RVM docs' example) is finished when garbage-collected."""

    def __init__(
        self,
        path: str | os.PathLike,
        frame_rate: float | Fraction = 30,
        bit_rate: int = 1_000_000,
        *,
        preset: Optional[str] = None,
        crf: Optional[float] = None,
        threads: int = 0,
    ) -> None:
        path = Path(path)
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise InferenceError(f"cannot write H.264 video to {path.name}; use one of {', '.join(VIDEO_SUFFIXES)}")
        rate = frame_rate if isinstance(frame_rate, Fraction) else Fraction(frame_rate).limit_denominator(1001)
        if rate <= 0:
            raise InferenceError(f"frame_rate must be positive, got {frame_rate}")
        if bit_rate <= 0:
            raise InferenceError(f"bit_rate must be positive, got {bit_rate}")
        if preset is not None and preset not in X264_PRESETS:
            raise InferenceError(f"unknown x264 preset {preset!r}; choose one of {', '.join(X264_PRESETS)}")
        if crf is not None and not 0 <= crf <= 51:
            raise InferenceError(f"crf must be in 0..51 (0 is lossless, 23 x264's default), got {crf}")
        if not isinstance(threads, int) or threads < 0:
            raise InferenceError(f"threads must be an integer >= 0 (0: automatic), got {threads}")
        self.path = path
        self._encoder = _Encoder(_pending(path, is_dir=False), rate, int(bit_rate), preset, crf, threads)
        self._finish_with(self._encoder.finish)

    @property
    def frame_count(self) -> int:
        return self._encoder.frames

    @property
    def pix_fmt(self) -> Optional[str]:
        """The pixel format chosen at the first write (yuv420p, yuv444p or gray)."""
        return None if self._encoder.stream is None else self._encoder.stream.pix_fmt

    def write(self, frames: torch.Tensor | np.ndarray) -> None:
        self.write_array(frames_to_uint8(frames))

    def write_array(self, frames: np.ndarray) -> None:
        """[T,H,W,3] or [T,H,W] (single channel) uint8 frames."""
        if frames.ndim == 4 and frames.shape[-1] == 1:
            frames = frames[..., 0]
        if frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[-1] != 3):
            raise InferenceError(f"a video takes RGB or single-channel frames, got frames shaped {frames.shape}")
        channels = 1 if frames.ndim == 3 else 3
        encoder = self._encoder
        if encoder.container is None:
            encoder.open(frames.shape[2], frames.shape[1], channels)
        elif (frames.shape[2], frames.shape[1], channels) != (
            encoder.stream.width,
            encoder.stream.height,
            encoder.channels,
        ):
            raise InferenceError(f"frame shape {frames.shape[1:]} differs from the first frame written to {self.path}")
        for frame in frames:
            encoder.encode(np.ascontiguousarray(frame))


def frames_to_uint8(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    """Tensors [C,H,W] / [T,C,H,W] / [B,T,C,H,W] in 0..1 (or uint8) -> [N,H,W,C] uint8, rounded."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(frames)
    if frames.dim() == 3:
        frames = frames.unsqueeze(0)
    elif frames.dim() == 5:
        frames = frames.flatten(0, 1)
    if frames.dim() != 4 or frames.size(1) not in (1, 3, 4):
        raise InferenceError(f"expected frames shaped [T,C,H,W] with C in 1, 3, 4; got {tuple(frames.shape)}")
    if frames.dtype != torch.uint8:
        frames = frames.detach().float().mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    return frames.permute(0, 2, 3, 1).contiguous().cpu().numpy()


# ----------------------------------------------------------------------------- image sequences


def _natural_key(name: str) -> List[Any]:
    """Sort 'frame2.png' before 'frame10.png' (zero-padded names sort the same either way)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class ImageSequenceReader(Dataset):
    """A folder of images (png/jpg/...; natural sort order) as frames, like :class:`VideoReader`.

    Hidden files are ignored; any other non-image file is an error, as are images of differing
    sizes unless ``resize`` is given."""

    frame_rate = DEFAULT_IMAGE_FRAME_RATE

    def __init__(
        self, path: str | os.PathLike, transform: Optional[Callable] = None, resize: Optional[Size] = None
    ) -> None:
        self.path = Path(path)
        self.transform = transform
        self.resize = _check_size(resize)
        if not self.path.is_dir():
            raise InferenceError(f"input not found: {self.path}")
        try:
            names = sorted((p.name for p in self.path.iterdir() if not p.name.startswith(".")), key=_natural_key)
        except PermissionError:
            raise InferenceError(f"cannot read the folder {self.path} (permission denied)")
        others = [n for n in names if Path(n).suffix.lower() not in IMAGE_SUFFIXES]
        if others:
            raise InferenceError(
                f"{self.path} mixes images with other files ({others[0]}); keep only {'/'.join(IMAGE_SUFFIXES)} images in it"
            )
        if not names:
            raise InferenceError(f"{self.path} holds no images; pass a folder of png/jpg frames")
        self.files = [self.path / n for n in names]
        self._size: Optional[Size] = None

    @property
    def size(self) -> Size:
        """(width, height) of the frames handed out (the first image's size unless resized)."""
        if self.resize:
            return self.resize
        if self._size is None:
            self._size = self._open(0).size
        return self._size

    def __len__(self) -> int:
        return len(self.files)

    def _open(self, index: int) -> Image.Image:
        path = self.files[index]
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, Image.DecompressionBombError) as exc:
            raise InferenceError(f"{path} is not a readable image ({first_line(exc)})")
        return image

    def read_array(self, index: int) -> np.ndarray:
        """Image ``index`` as HxWx3 uint8 RGB, resized if asked; checked against the sequence's size."""
        image = self._open(index).convert("RGB")
        if self.resize:
            image = image.resize(self.resize, Image.Resampling.BILINEAR)
        elif image.size != self.size:
            raise InferenceError(
                f"{self.files[index].name} is {image.size[0]}x{image.size[1]} but {self.files[0].name} is "
                f"{self.size[0]}x{self.size[1]}; pass input_resize=(width, height) to resize them all"
            )
        return np.array(image)  # writable: torch.from_numpy warns on read-only arrays

    def iter_arrays(self, num_workers: int = 0) -> Iterator[np.ndarray]:
        """Every image in order; ``num_workers`` > 0 decodes that many ahead in threads (Pillow releases the GIL)."""
        if num_workers <= 0:
            yield from (self.read_array(i) for i in range(len(self)))
            return
        with ThreadPoolExecutor(num_workers, thread_name_prefix="rvm-read") as pool:
            window: Deque[Any] = deque()
            for index in range(len(self)):
                window.append(pool.submit(self.read_array, index))
                if len(window) > 2 * num_workers:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()

    def __getitem__(self, index: int) -> Any:
        if self.transform is None:
            return to_tensor(self.read_array(index))
        image = self._open(index).convert("RGB")
        if self.resize:
            image = image.resize(self.resize, Image.Resampling.BILINEAR)
        return self.transform(image)


class _Sequence:
    """The files side of an ImageSequenceWriter; kept apart so a weakref finalizer can finish it."""

    def __init__(self, pending: PendingPath) -> None:
        self.pending = pending
        self.frames = 0
        self.done = False

    def finish(self, keep: bool) -> None:
        if self.done:
            return
        self.done = True
        try:
            if keep and self.frames == 0:
                raise InferenceError(f"no frames were written to {self.pending.target}")
            if keep:
                self.pending.commit()
        finally:
            self.pending.discard()


class ImageSequenceWriter(_AtomicWriter):
    """Writes frames as numbered images (0000.png, 0001.png, ...) into a folder.

    C = 1 gives grayscale, 3 RGB, 4 RGBA images. The folder is assembled under a temporary name
    and moved into place by ``close()`` (or garbage collection, like VideoWriter); an earlier
    image-sequence output there is replaced, any other non-empty folder is refused."""

    def __init__(self, path: str | os.PathLike, extension: str = "png") -> None:
        extension = extension.lower().lstrip(".")
        if extension not in ("png", "jpg"):
            raise InferenceError(f"image sequences are written as png or jpg, not {extension}")
        self.path = Path(path)
        self.extension = extension
        pending = _pending(self.path, is_dir=True)
        pending.discard()
        pending.tmp.mkdir()
        self._sequence = _Sequence(pending)
        self._finish_with(self._sequence.finish)

    @property
    def frame_count(self) -> int:
        return self._sequence.frames

    def write(self, frames: torch.Tensor | np.ndarray) -> None:
        self.write_array(frames_to_uint8(frames))

    def write_array(self, frames: np.ndarray) -> None:
        """[T,H,W], [T,H,W,1], [T,H,W,3] or [T,H,W,4] uint8 frames."""
        if frames.ndim == 4 and frames.shape[-1] == 1:
            frames = frames[..., 0]
        options = {"compress_level": 1} if self.extension == "png" else {"quality": 95}
        for frame in frames:
            name = self._sequence.pending.tmp / f"{self._sequence.frames:04d}.{self.extension}"
            Image.fromarray(frame).save(name, **options)
            self._sequence.frames += 1


def open_reader(source: str | os.PathLike, resize: Optional[Size] = None) -> VideoReader | ImageSequenceReader:
    """A VideoReader for a file, an ImageSequenceReader for a folder."""
    path = Path(source)
    if path.is_dir():
        return ImageSequenceReader(path, resize=resize)
    return VideoReader(path, resize=resize)


__all__ = [
    "IMAGE_SUFFIXES",
    "ImageSequenceReader",
    "ImageSequenceWriter",
    "InferenceError",
    "VideoReader",
    "VideoWriter",
    "check_writable",
    "frames_to_uint8",
    "open_reader",
    "to_tensor",
]
