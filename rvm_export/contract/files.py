"""Output paths every command writes to (artifacts, reports, videos): can it be written, and atomic writes.

``os.access`` is not enough to tell: it says yes to root on read-only and special filesystems
(/proc, /sys), where creating the file then fails. So a real file is created and removed.
"""

import os
import tempfile
from pathlib import Path
from typing import Optional


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


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary sibling and rename it to ``path``: all or nothing. Raises OSError."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


__all__ = ["os_reason", "unwritable_reason", "write_atomic"]
