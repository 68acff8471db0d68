"""Output paths every command writes to (artifacts, reports, videos, the manifest, caches): can it be
written, and the one atomic writer (:class:`PendingPath`, :func:`atomic_path`, :func:`write_atomic`).

``os.access`` is not enough to tell: it says yes to root on read-only and special filesystems
(/proc, /sys), where creating the file then fails. So a real file is created and removed.
"""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Optional


def os_reason(exc: OSError) -> str:
    """'Permission denied', 'No space left on device', ... (the OS's words)."""
    return exc.strerror or str(exc) or type(exc).__name__


def unwritable_reason(path: str | os.PathLike, folder: bool = False) -> Optional[str]:
    """Why ``path`` cannot be written (its parent folders are created), or None when it can.

    ``folder``: the output is a folder (an image sequence, a SavedModel) rather than a file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the folder {path.parent}: {os_reason(exc)}"
    if path.is_dir() and not folder:
        return f"{path} is a folder, not a file name"
    if path.exists() and not path.is_dir() and folder:
        return f"{path} is a file, not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.write-test-", dir=path.parent)
    except OSError as exc:
        return f"cannot write to {path.parent}: {os_reason(exc)}"
    os.close(fd)
    os.unlink(probe)
    return None


class PendingPath:
    """The one atomic writer: a temporary sibling of ``target`` (same suffix) that becomes ``target`` on
    :meth:`commit` and is removed by :meth:`discard`. Nothing at ``target`` looks finished before the
    commit; a folder (SavedModel, image sequence) replaces an earlier folder there."""

    def __init__(self, target: str | os.PathLike) -> None:
        self.target = Path(target)
        # the same suffix: writers such as coremltools pick the format from it
        self.tmp = self.target.with_name(f".{self.target.stem}.partial-{os.getpid()}-{id(self):x}{self.target.suffix}")
        remove(self.tmp)

    def commit(self) -> None:
        if self.tmp.is_dir() and self.target.is_dir() and not self.target.is_symlink():
            shutil.rmtree(self.target)  # an earlier artifact or output folder, checked by the caller
        elif self.target.is_symlink() or (self.target.exists() and self.tmp.is_dir()):
            self.target.unlink()
        os.replace(self.tmp, self.target)

    def discard(self) -> None:
        remove(self.tmp)


def remove(path: Path) -> None:
    """Remove a file, link or folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; it becomes ``target`` only when the block succeeds."""
    pending = PendingPath(target)
    try:
        yield pending.tmp
        pending.commit()
    finally:
        pending.discard()


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path``: all or nothing. Raises OSError."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


__all__ = ["PendingPath", "atomic_path", "os_reason", "remove", "unwritable_reason", "write_atomic"]
