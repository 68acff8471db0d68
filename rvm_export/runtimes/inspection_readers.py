"""The shared readers of the inspection: what every format's inspector (``<target>_inspect.py``) reads its files
with, as data only. Public, so that an inspector, the format readers (``pte_format.py``, ``mnn_format.py``) and
the tests use one implementation:

- messages: :func:`refuse` (the one-line refusal naming the file), :func:`show` (a name from the artifact, quoted,
  every character that is not printable escaped, so no name can forge a line), :func:`one_line`;
- paths: :func:`check_folder` (symlinks inside, no devices or FIFOs), :func:`confined` (a relative path read from
  the artifact, resolved inside a folder), :func:`regular_file`, :func:`companion_bin_size` (OpenVINO's and ncnn's
  ``.bin``);
- sizes: :func:`read_limited` with :data:`MAX_METADATA_BYTES` (JSON, XML, pickles, code) or
  :data:`MAX_BINARY_BYTES` (protobufs, flatbuffers);
- JSON (:func:`load_json`) and protobuf messages (:func:`parse_message`: the generated class's ``ParseFromString``);
- pickles: :func:`pickle_globals` / :func:`check_pickle` (opcodes disassembled, never unpickled);
- zip archives: :func:`zip_entries` (names as torch's reader finds them: :func:`loader_key`), :func:`read_entry`,
  :func:`strip_prefix`;
- flatbuffers: :class:`FlatbufferReader`, bounds-checked tables read slot by slot as a schema numbers them.

Why each format is read as it is: docs/security.md.
"""

import io
import json
import os
import pickletools
import re
import stat
import struct
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from rvm_export.contract.errors import RunnerError

MAX_METADATA_BYTES = 256 << 20  # JSON, XML, pickles and code read whole to be inspected; bigger is refused
MAX_BINARY_BYTES = 2 << 30  # protobufs and flatbuffers
MAX_ZIP_ENTRIES = 100_000

# --- Messages and paths ----------------------------------------------------------------------------------------


def show(value: object, limit: int = 160) -> str:
    """A name read from the artifact, quoted and on one line whatever it holds."""
    text = one_line(repr(str(value)))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def one_line(text: str) -> str:
    """``text`` with every character that is not printable (line and paragraph separators, control and format
    characters: what could start a forged line or rewrite the terminal) written as its escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def refuse(file: Path, what: str) -> RunnerError:
    """The one-line refusal of ``file``: the path and every quoted text stripped of line breaks and controls."""
    return RunnerError(one_line(f"refusing to run {file}: {what}"))


def inside(root: Path, target: Path) -> bool:
    """``target`` (already resolved) is ``root`` (already resolved) or below it."""
    return target == root or root in target.parents


def real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def check_folder(folder: Path, file: Path) -> Path:
    """Every entry below ``folder``: a symlink must resolve inside it, and nothing may be a device, FIFO or
    socket (a loader reading one would block or read the device). Returns the resolved folder."""
    root = real(folder)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            entry = Path(dirpath) / name
            shown = entry.relative_to(root)
            try:
                mode = entry.lstat().st_mode
            except OSError as exc:
                raise refuse(file, f"cannot read {show(shown)} ({exc.strerror})")
            if stat.S_ISLNK(mode):
                target = real(entry)
                if not inside(root, target):
                    raise refuse(file, f"{show(shown)} is a symlink to {target}, outside the artifact's folder")
                if not target.exists():
                    raise refuse(file, f"{show(shown)} is a dangling symlink")
                mode = target.stat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise refuse(file, f"{show(shown)} is not a regular file or folder")
    return root


_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def confined(root: Path, name: object, file: Path, what: str, plain: bool = False) -> Path:
    """``name``, a relative path read from the artifact, resolved under ``root``: refused when it is absolute,
    has a URL scheme or a ``..`` part, or resolves (through symlinks) outside ``root``. ``plain``: also only
    letters, digits and ``._-`` in each part (a path a browser fetches as a URL, where %2e%2e is ``..``)."""
    if not isinstance(name, str) or not name:
        raise refuse(file, f"{what} {show(name)} is not a relative path")
    parts = name.replace("\\", "/").split("/")
    if (
        "\0" in name
        or name.startswith(("/", "\\"))
        or _URL_SCHEME.match(name)
        or ".." in parts
        or (plain and not all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", p) for p in parts))
    ):
        raise refuse(file, f"{what} {show(name)} is not a plain path inside the artifact's folder")
    resolved = real(root / name)
    if not inside(real(root), resolved):
        raise refuse(file, f"{what} {show(name)} resolves to {resolved}, outside the artifact's folder")
    return resolved


def read_limited(path: Path, file: Path, limit: int = MAX_METADATA_BYTES) -> bytes:
    try:
        if path.stat().st_size > limit:
            raise refuse(file, f"{path.name} is larger than {limit >> 20} MiB, more than any RVM artifact holds")
        return path.read_bytes()
    except OSError as exc:
        raise refuse(file, f"cannot read {path} ({exc.strerror})")


def regular_file(path: Path, file: Path) -> None:
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise refuse(file, f"{path} is not a regular file")
    except OSError as exc:
        raise refuse(file, f"cannot read {path} ({exc.strerror})")


def companion_bin_size(path: Path) -> int:
    """Bytes of the ``.bin`` beside ``path`` (OpenVINO, ncnn), refused when it resolves outside the model's folder
    or is not a regular file; 0 when there is none."""
    weights = path.with_suffix(".bin")
    if weights.exists() or weights.is_symlink():
        if not inside(real(path).parent, real(weights)):
            raise refuse(path, f"{weights.name} resolves to {real(weights)}, outside the model's folder")
        regular_file(weights, path)
    return weights.stat().st_size if weights.exists() else 0


def load_json(data: bytes, file: Path, name: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise refuse(file, f"{name} is not readable JSON ({exc.__class__.__name__})")


def parse_message(message: Any, data: bytes, file: Path, what: str) -> Any:
    """``message`` (an instance of a generated protobuf class) parsed from ``data``, never run; a damaged message is
    refused as ``what`` with the parser's error class."""
    try:
        message.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise refuse(file, f"{what} ({exc.__class__.__name__})")
    return message


# --- Pickles -----------------------------------------------------------------------------------------------------

_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
_NO_PUSH_OPS = {"MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "PROTO", "FRAME"}  # leave the stack as it is


def pickle_globals(data: bytes) -> Iterator[str]:
    """Every ``module.name`` a pickle would import (GLOBAL, STACK_GLOBAL, INST), read from its opcodes without
    unpickling it. A STACK_GLOBAL whose two names are not plain strings pushed just before (or fetched from the
    memo) yields ``<unreadable STACK_GLOBAL>``; extension codes (EXT1/2/4, looked up in copyreg's registry) yield
    ``<EXT>``; both are refused by any allowlist."""
    memo: Dict[int, Optional[str]] = {}
    recent: List[Optional[str]] = [None, None]  # the last two values pushed, when strings
    for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
        name = opcode.name
        if name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            yield f"{module}.{attr}"
        elif name == "STACK_GLOBAL":
            module, attr = recent
            yield f"{module}.{attr}" if module is not None and attr is not None else "<unreadable STACK_GLOBAL>"
        elif name.startswith("EXT"):
            yield "<EXT>"
        if name in _STRING_OPS:
            value: Optional[str] = arg if isinstance(arg, str) else arg.decode("latin-1")
            recent = [recent[1], value]
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[1]
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = recent[1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            recent = [recent[1], memo.get(int(arg))]
        elif name == "MARK":  # the unpickler starts a new, empty stack
            recent = [None, None]
        elif name not in _NO_PUSH_OPS:
            recent = [recent[1], None]


def check_pickle(data: bytes, file: Path, entry: str, allowed: Callable[[str], bool], loader: str) -> None:
    try:
        found = list(pickle_globals(data))
    except Exception as exc:  # pickletools raises ValueError and others on a damaged stream
        raise refuse(file, f"{show(entry)} is not a readable pickle ({exc.__class__.__name__}: {exc})")
    for name in found:
        if not allowed(name):
            raise refuse(file, f"{show(entry)} references {show(name)}, which {loader} would import and call")


# --- Zip archives (TorchScript, .pt2) ----------------------------------------------------------------------------


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def loader_key(name: str) -> str:
    """The name by which torch's zip reader finds an entry: it compares names case-insensitively, folding ASCII
    letters only (caffe2/serialize/inline_container.cc looks records up with miniz's mz_zip_reader_locate_file
    without MZ_ZIP_FLAG_CASE_SENSITIVE, whose MZ_TOLOWER folds A-Z; tried: ``code/x.PY``, ``CODE/``, ``DATA.PKL``
    all load, an ``É`` does not match ``é``). Folding the decoded name folds the stored bytes the same way:
    ASCII bytes are the same characters in UTF-8 and in cp437, and no other byte decodes to one."""
    return name.translate(_ASCII_LOWER)


def zip_entries(path: Path, file: Path, data: Optional[bytes] = None) -> Tuple[zipfile.ZipFile, List[str]]:
    """The archive and its entry names: refused when it is not a zip, or an entry is absolute, has a ``..``
    part, a backslash or a NUL, or appears twice, also when two names differ only in case (torch's reader finds
    entries case-insensitively: it and Python's would then read different entries)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if data is not None else path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise refuse(file, f"{path.name if data is None else 'an entry'} is not a zip archive ({exc})")
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise refuse(file, f"the archive has {len(infos)} entries, more than any RVM artifact")
    seen: Dict[str, str] = {}
    for info in infos:
        name = info.filename
        parts = name.split("/")
        if (
            name.startswith("/")
            or "\\" in name
            or "\0" in info.orig_filename  # zipfile cuts a name at a NUL; the C++ reader does not
            or ".." in parts
            or re.match(r"^[A-Za-z]:", name)
        ):
            raise refuse(file, f"archive entry {show(info.orig_filename)} is not a relative path inside the archive")
        key = loader_key(name)
        if key in seen:
            if seen[key] == name:
                raise refuse(file, f"archive entry {show(name)} appears twice")
            raise refuse(file, f"archive entries {show(seen[key])} and {show(name)} differ only in case, and "
                          "torch's reader finds entries case-insensitively")  # fmt: skip
        seen[key] = name
    return archive, [info.filename for info in infos]


def read_entry(archive: zipfile.ZipFile, name: str, file: Path) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_METADATA_BYTES:
        raise refuse(file, f"archive entry {show(name)} is larger than {MAX_METADATA_BYTES >> 20} MiB")
    try:
        return archive.read(name)
    except Exception as exc:  # zlib, CRC, encryption errors
        raise refuse(file, f"archive entry {show(name)} cannot be read ({exc.__class__.__name__})")


def strip_prefix(names: List[str], file: Path) -> Tuple[str, Dict[str, str]]:
    """torch's archives keep every entry under one top folder (its name is free): {entry without it: entry}."""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) != 1 or any("/" not in n for n in names):
        raise refuse(file, f"the archive's entries are not under one top folder ({', '.join(sorted(tops)[:3])})")
    prefix = tops.pop() + "/"
    return prefix, {n[len(prefix) :]: n for n in names}


# --- Flatbuffers ---------------------------------------------------------------------------------------------------


class FlatbufferError(ValueError):
    """An offset or a vector of a flatbuffer leaves the buffer (one line)."""


class FlatbufferReader:
    """Bounds-checked access to flatbuffer tables (slot i of a table is at vtable offset 4 + 2 i), with
    :mod:`struct` only: no generated reader, nothing of the file runs. Every offset and vector length is checked
    against the buffer before it is followed; :class:`FlatbufferError` otherwise."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf

    def u32(self, at: int) -> int:
        if not 0 <= at <= len(self.buf) - 4:
            raise FlatbufferError(f"an offset points outside the file (byte {at} of {len(self.buf)})")
        return struct.unpack_from("<I", self.buf, at)[0]

    def scalar(self, fmt: str, at: int) -> Any:
        if not 0 <= at <= len(self.buf) - struct.calcsize(fmt):
            raise FlatbufferError(f"a field lies outside the file (byte {at} of {len(self.buf)})")
        return struct.unpack_from("<" + fmt, self.buf, at)[0]

    def field(self, table: int, slot: int) -> int:
        """The absolute position of ``slot``'s value in ``table``, or 0 when the field is absent."""
        vtable = table - self.scalar("i", table)
        size = self.scalar("H", vtable)
        offset = 4 + 2 * slot
        if offset >= size:
            return 0
        rel = self.scalar("H", vtable + offset)
        return table + rel if rel else 0

    def table(self, table: int, slot: int) -> int:
        at = self.field(table, slot)
        return at + self.u32(at) if at else 0

    def vector(self, table: int, slot: int, width: int) -> Tuple[int, int]:
        """(start, length) of a vector field, checked to lie inside the buffer; (0, 0) when absent."""
        at = self.field(table, slot)
        if not at:
            return 0, 0
        start = at + self.u32(at)
        length = self.u32(start)
        if start + 4 + length * width > len(self.buf):
            raise FlatbufferError(f"a vector of {length} elements runs past the end of the file")
        return start + 4, length

    def tables(self, table: int, slot: int) -> List[int]:
        start, length = self.vector(table, slot, 4)
        return [start + 4 * i + self.u32(start + 4 * i) for i in range(length)]

    def scalars(self, table: int, slot: int, fmt: str) -> List[Any]:
        start, length = self.vector(table, slot, struct.calcsize(fmt))
        return list(struct.unpack_from(f"<{length}{fmt}", self.buf, start)) if length else []

    def string(self, table: int, slot: int) -> str:
        start, length = self.vector(table, slot, 1)
        return self.buf[start : start + length].decode("utf-8", "replace") if start else ""
