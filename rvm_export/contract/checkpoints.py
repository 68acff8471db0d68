"""Where checkpoints are looked for, and the one way a checkpoint file is read (standard library only).

``rvm-export`` and ``make export-all`` look for a checkpoint in :func:`checkpoint_candidates` when none is given;
the verifier finds the checkpoint an artifact names (by file name and sha256, never by a path the artifact
chose) only in :func:`search_folders`: those same folders and the artifact's own. A checkpoint is read only
through :func:`read_checkpoint`: a regular file of at most :data:`MAX_CHECKPOINT_BYTES`, read once into memory
(so what is hashed is what is loaded), never a FIFO, a device or a ``/proc`` file that reports no size.
"""

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
MAX_CHECKPOINT_BYTES = 2 << 30  # 2 GiB: the official ResNet50 checkpoint is 15 MB, MobileNetV3's 15 MB
MAX_FOLDER_CANDIDATES = 64  # *.pth files hashed per folder when no file has the recorded name

# variant -> places looked in, in order (after ./checkpoints/ in the working folder): the official file
# names under the repository's checkpoints/, then the real weights kept beside the repository for tests.
DEFAULT_CHECKPOINTS: Dict[str, List[Path]] = {
    "mobilenetv3": [
        REPO / "checkpoints" / "rvm_mobilenetv3.pth",
        REPO.parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth",
    ],
    "resnet50": [REPO / "checkpoints" / "rvm_resnet50.pth"],
}


class CheckpointFileError(OSError):
    """A path that is not a readable regular checkpoint file of bounded size; the message says which rule."""


@dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint read into memory: where it was, its bytes and their sha256."""

    path: Path
    data: bytes
    sha256: str


def checkpoint_candidates(variant: str, defaults: Optional[Dict[str, List[Path]]] = None) -> List[Path]:
    """Every path looked at for ``variant``, in order, without duplicates (``defaults``: the per-variant
    list to use instead of :data:`DEFAULT_CHECKPOINTS`)."""
    official = (DEFAULT_CHECKPOINTS if defaults is None else defaults).get(variant, [])
    in_cwd = [Path.cwd() / "checkpoints" / f"rvm_{variant}.pth"]
    seen, paths = set(), []
    for path in in_cwd + official:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            paths.append(path)
    return paths


def find_checkpoint(variant: str, defaults: Optional[Dict[str, List[Path]]] = None) -> Optional[Path]:
    """The first existing candidate for ``variant``, or None."""
    return next((path for path in checkpoint_candidates(variant, defaults) if path.is_file()), None)


def read_checkpoint(path: str | os.PathLike, limit: int = MAX_CHECKPOINT_BYTES) -> CheckpointFile:
    """The bytes of the regular file at ``path`` (at most ``limit`` of them) and their sha256.

    Opened without blocking (a FIFO does not hang), checked on the open descriptor (no race with a rename),
    and read to exactly the size the file reports: a special file that reports 0 bytes (``/proc/self/mem``,
    ``/proc/self/pagemap``) or grows while read is refused. Raises :class:`CheckpointFileError`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise CheckpointFileError(f"cannot be opened ({exc.strerror or type(exc).__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CheckpointFileError("is not a regular file")
        if info.st_size == 0 or info.st_size > limit:
            raise CheckpointFileError(f"is {info.st_size} bytes, not between 1 byte and {limit >> 30} GiB")
        chunks, left = [], info.st_size
        while left:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                raise CheckpointFileError("is shorter than its reported size")
            chunks.append(chunk)
            left -= len(chunk)
        if os.read(fd, 1):
            raise CheckpointFileError("is longer than its reported size")
    except OSError as exc:
        if isinstance(exc, CheckpointFileError):
            raise
        raise CheckpointFileError(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    return CheckpointFile(Path(path), data, hashlib.sha256(data).hexdigest())


def recorded_name(recorded: object) -> str:
    """The file name an artifact's metadata gives its checkpoint (older artifacts recorded a path: its last part),
    or "" when it names none usable. Never a path: only a name looked up in :func:`search_folders`."""
    if not isinstance(recorded, str):
        return ""
    name = recorded.replace("\\", "/").rsplit("/", 1)[-1]
    if name in ("", ".", "..") or len(name) > 255 or any(ord(c) < 32 or c == "\x7f" for c in name):
        return ""
    return name


def search_folders(artifact: Optional[str | os.PathLike] = None) -> List[Path]:
    """The folders the verifier looks in for an artifact's checkpoint: those :func:`checkpoint_candidates`
    looks in (``./checkpoints``, the repository's ``checkpoints/``, the shared weights) and the artifact's."""
    folders = [Path.cwd() / "checkpoints"] + [p.parent for paths in DEFAULT_CHECKPOINTS.values() for p in paths]
    if artifact is not None:
        folders.append(Path(os.path.abspath(artifact)).parent)
    seen, unique = set(), []
    for folder in folders:
        key = os.path.realpath(folder)
        if key not in seen:
            seen.add(key)
            unique.append(folder)
    return unique


def _candidates(name: str, folders: List[Path], confined: Optional[Path]) -> Iterator[Tuple[Path, bool]]:
    """(path, in the artifact's folder) for the recorded name in each folder, then each folder's other *.pth."""
    for first in (True, False):
        for folder in folders:
            inside = confined is not None and os.path.realpath(folder) == os.path.realpath(confined)
            if first:
                if name:
                    yield folder / name, inside
                continue
            try:
                others = sorted(p for p in folder.glob("*.pth") if p.name != name)[:MAX_FOLDER_CANDIDATES]
            except OSError:
                continue
            for path in others:
                yield path, inside


def find_by_sha256(
    sha256: str, name: object = None, artifact: Optional[str | os.PathLike] = None
) -> Optional[CheckpointFile]:
    """The checkpoint whose bytes hash to ``sha256`` in :func:`search_folders` (the recorded ``name`` first in
    each, then the folders' other ``*.pth`` files), or None. In the artifact's folder a candidate must also
    resolve inside that folder (a link there cannot point elsewhere). Unreadable or special files are skipped:
    the caller's one message is the same whether or not some path exists."""
    folders = search_folders(artifact)
    confined = Path(os.path.abspath(artifact)).parent if artifact is not None else None
    seen = set()
    for path, inside in _candidates(recorded_name(name), folders, confined):
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        if inside and os.path.dirname(real) != os.path.realpath(confined):  # type: ignore[arg-type]
            continue
        try:
            found = read_checkpoint(path)
        except CheckpointFileError:
            continue
        if found.sha256 == sha256:
            return found
    return None


__all__ = [
    "DEFAULT_CHECKPOINTS",
    "MAX_CHECKPOINT_BYTES",
    "CheckpointFile",
    "CheckpointFileError",
    "checkpoint_candidates",
    "find_by_sha256",
    "find_checkpoint",
    "read_checkpoint",
    "recorded_name",
    "search_folders",
]
