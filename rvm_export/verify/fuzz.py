"""Fuzzing the artifact readers: corrupted copies of good artifacts, each run through ``rvm-verify``.

Every outcome must be clean: exit 2 with one ``rvm-verify: error: ...`` line (the file is refused), exit 1
(it loaded but failed to run or failed parity), or exit 0 when the mutation did not touch what the check
depends on ("passed unchanged"). Anything else is a finding: a Python exception escaping the command (a
traceback), the process dying by a signal (a crash: a C++ abort, a segfault), no answer within the
per-input timeout (a hang), a huge allocation (MemoryError, std::bad_alloc or a runtime's own "failed to
allocate" under the worker's address-space limit, or the worker's peak memory jumping by gigabytes), or
stderr that is more than the one error line.

Mutations are deterministic (``--seed``): truncations, byte changes in headers and anywhere, and
format-aware forgeries: zip members, their CRCs and the sizes and counts of the zip records (TorchScript,
torch.export); protobuf fields re-encoded along a random path with forged varints, lengths and repeated
counts (ONNX, saved_model.pb, CoreML); flatbuffer vector lengths, indices and shapes (LiteRT); JSON
documents with huge shapes and sizes, wrong types, missing keys and deep nesting (TF.js model.json, the
.mlpackage Manifest.json, the program of a .pt2, the rvm metadata every artifact embeds); OpenVINO XML
attributes; the CoreML weight blob's header and blob records.

Inputs run in a worker subprocess that serves many of them (torch and TensorFlow start in seconds, not
per input), under ``RLIMIT_AS`` (its mapped size when the input starts plus ``--memory``); a child it
starts (the TF.js runner's Node.js) gets its own limit. A worker that hangs is killed with its process group
and restarted, as is one that dies.

    python -m rvm_export.verify.fuzz --per-format 200            # exports seeded artifacts, then fuzzes
    python -m rvm_export.verify.fuzz --formats onnx,tflite --per-format 50 --keep findings/
    python -m rvm_export.verify.fuzz --only tflite:17              # reproduce one input

Exit status: 0 when every outcome is clean, 1 when there are findings, 2 on bad arguments.
"""

import argparse
import html
import io
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

GB = 1 << 30
DEFAULT_MEMORY = 4 * GB  # address space a worker may map on top of what it had when an input started
CHILD_MEMORY = 16 * GB  # a child's limit (Node.js reserves ~11.6 GB of address space for WebAssembly)
DEFAULT_TIMEOUT = 180.0  # seconds per input (a good .pt2 takes ~25 s on a loaded 2-core machine)
STARTUP_TIMEOUT = 120.0
RSS_JUMP = 3 * GB  # the worker's peak RSS rising by this much within one input is a huge allocation
CASE = ("--frames", "2", "--size", "64x48", "--ratio", "0.5")
FIXED_CASE = ("--frames", "2")  # CoreML: the size and ratio are baked in

CLEAN = ("exit 1", "exit 2", "passed unchanged")
FINDINGS = ("traceback", "crash", "hang", "huge allocation", "multi-line stderr", "bad exit code")

# Lines a runtime's own logger writes to stderr (also for good artifacts): not the command's output.
RUNTIME_LOG = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+\s+\S+:\d+\]"  # absl / glog (TensorFlow, LiteRT)
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \[[VIWEF]:onnxruntime:"  # ONNX Runtime's logger
    r"|(?:WARNING:coremltools:)?Failed to load _ML\w+: No module named 'coremltools\.libcoremlpython'"  # at import
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    r"|Failed to load \S+/torchao/\S+\.so: Could not load this library: \S+"  # executorch's import of torchao
    r"|\[\w+\.(?:cpp|h):\d+\] "  # ExecuTorch's own log lines (ET_LOG): its CPU probe, a program it refuses
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    r"|(?:WARNING:coremltools:)?(?:TensorFlow|Torch|scikit-learn) version \S+ has not been tested with coremltools\."
    # coremltools at import, where another extra (executorch) brought a scikit-learn newer than it supports
    r"|(?:WARNING:coremltools:)?scikit-learn version \S+ is not supported\. .*Disabling scikit-learn conversion API\."
    r")"
)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # ONNX Runtime colours its log lines
MEMORY_TEXT = re.compile(
    r"MemoryError|bad_alloc|[Cc]annot allocate memory|[Oo]ut of memory|[Ff]ailed to allocate|"
    r"OOM when allocating|ResourceExhausted|Array buffer allocation failed|[Aa]llocation failed|"
    r"std::length_error|[Uu]nable to allocate"
)


# --- Mutations ----------------------------------------------------------------------------------------

HUGE_32 = (0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0x40000000, 0x10000000)
HUGE_64 = (2**63 - 1, 2**64 - 1, 2**40, 2**62, 2**33)
HUGE_INTS = (2**31 - 1, 2**31, 2**32, 2**40, 2**53, 2**62, 10**12, -1, -(2**31))


class Skip(Exception):
    """This mutation does not apply to this artifact (nothing of its kind in the file)."""


@dataclass
class Ctx:
    """One mutation at work: the artifact copy it edits and the random numbers it draws."""

    rng: random.Random
    root: Path  # the artifact: a file, or a folder

    def file(self, relative: str = "") -> Path:
        return self.root / relative if relative else self.root

    def rel(self, path: Path) -> str:
        return path.name if path == self.root else str(path.relative_to(self.root.parent))


def _pick_offset(rng: random.Random, size: int, head: bool) -> int:
    return rng.randrange(min(size, 1024)) if head else rng.randrange(size)


def truncate(ctx: Ctx, path: Path) -> str:
    data = path.read_bytes()
    n = len(data)
    at = ctx.rng.choice([0, 1, 4, 8, 16, 64, 512, 4096, n // 4, n // 2, n - 64, n - 8, n - 1, ctx.rng.randrange(n)])
    at = max(0, min(at, n - 1))
    path.write_bytes(data[:at])
    return f"truncated {ctx.rel(path)} to {at} of {n} bytes"


def flip_bytes(ctx: Ctx, path: Path, head: bool, window: Optional[Tuple[int, int]] = None) -> str:
    data = bytearray(path.read_bytes())
    if not data:
        raise Skip("empty file")
    count = ctx.rng.choice([1, 1, 2, 3, 4, 8, 32])
    if window is not None:
        lo, hi = max(0, window[0]), min(len(data), window[1])
        offsets = sorted(ctx.rng.randrange(lo, hi) for _ in range(count))
    else:
        offsets = sorted(_pick_offset(ctx.rng, len(data), head) for _ in range(count))
    for offset in offsets:
        data[offset] ^= ctx.rng.randrange(1, 256)
    path.write_bytes(bytes(data))
    where = "in the first KB of" if head else "of"
    return f"changed {count} byte(s) {where} {ctx.rel(path)} at {_offsets(offsets)}"


def forge_word(ctx: Ctx, path: Path, head: bool) -> str:
    """A 4- or 8-byte little-endian word set to a huge value (a forged size, count or offset)."""
    data = bytearray(path.read_bytes())
    width = ctx.rng.choice([4, 8])
    if len(data) <= width:
        raise Skip("file too short")
    value = ctx.rng.choice(HUGE_32 if width == 4 else HUGE_64)
    offset = _pick_offset(ctx.rng, len(data) - width, head)
    offset -= offset % width
    data[offset : offset + width] = value.to_bytes(width, "little")
    path.write_bytes(bytes(data))
    return f"wrote {value:#x} as a {width}-byte word at offset {offset} of {ctx.rel(path)}"


def append_bytes(ctx: Ctx, path: Path) -> str:
    extra = bytes(ctx.rng.randrange(256) for _ in range(ctx.rng.choice([1, 7, 100, 4096])))
    with path.open("ab") as f:
        f.write(extra)
    return f"appended {len(extra)} random bytes to {ctx.rel(path)}"


def _offsets(offsets: Sequence[int]) -> str:
    shown = ", ".join(str(o) for o in offsets[:4])
    return shown + (f" (+{len(offsets) - 4} more)" if len(offsets) > 4 else "")


# JSON documents ------------------------------------------------------------------------------------------

DEEP = 100_000  # nesting depth of the deep-nesting mutation


def _json_paths(value: Any, prefix: Tuple = ()) -> List[Tuple]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _json_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value[:64]):
            paths += _json_paths(item, prefix + (index,))
    return paths


def _get(doc: Any, path: Tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _forged_value(rng: random.Random, old: Any) -> Tuple[Any, str]:
    """A replacement for one JSON value: a forged size or count, a wrong type, or null."""
    if isinstance(old, list) and old and all(isinstance(v, (int, float, str)) for v in old):
        choice = rng.choice(["huge-dims", "negative-dims", "rank", "repeat", "strings", "empty"])
        if choice == "huge-dims":
            huge = rng.choice([2**31 - 1, 2**32, 10**9, 2**62])
            return [type(v)(huge) if isinstance(v, str) else huge for v in old], f"every element {huge}"
        if choice == "negative-dims":
            return [-7] * len(old), "every element -7"
        if choice == "rank":
            return old * 40, f"{len(old) * 40} elements (was {len(old)})"
        if choice == "repeat":
            return old + old, "elements doubled"
        if choice == "strings":
            return ["x"] * len(old), "strings"
        return [], "empty list"
    if isinstance(old, bool):
        return rng.choice([(None, "null"), ("true", "a string"), (2**40, "a huge number")])
    if isinstance(old, (int, float)):
        value = rng.choice(HUGE_INTS + (1e308, 0.5, 0, "64"))
        return value, f"{value!r}"
    if isinstance(old, str):
        if re.fullmatch(r"-?\d+", old):  # TF.js stores sizes as strings
            value = rng.choice(["2147483647", "99999999999999", "-5", "18446744073709551616", "x"])
            return value, f"{value!r}"
        value = rng.choice(["", "x" * 5000, "../../../etc/passwd", "\u0000", "float128", 12])
        return value, f"{value!r}"[:40]
    if isinstance(old, list):
        return rng.choice([([], "empty list"), (old * 3, f"{len(old) * 3} items"), ({}, "an object")])
    if isinstance(old, dict):
        return rng.choice([({}, "an empty object"), ([], "a list"), ("x", "a string"), (7, "a number")])
    return rng.choice([(1, "1"), ("x", "a string")])


def mutate_json_text(ctx: Ctx, text: str, focus: Sequence[str] = (), what: str = "") -> Tuple[str, str]:
    """``text`` with one forgery applied to its JSON document (or broken as text when it does not parse)."""
    rng = ctx.rng
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if doc is None or rng.random() < 0.08:
        cut = rng.randrange(max(1, len(text)))
        return text[:cut], f"{what} JSON cut at character {cut} of {len(text)}"
    if rng.random() < 0.07:
        return "[" * DEEP + "]" * DEEP, f"{what} JSON replaced by lists nested {DEEP} deep"
    paths = _json_paths(doc)
    if not paths:
        return rng.choice(["[]", "null", '"x"', "7"]), f"{what} JSON document replaced by a non-object"
    focused = [p for p in paths if p and isinstance(p[-1], str) and p[-1] in focus]
    path = rng.choice(focused if focused and rng.random() < 0.8 else paths)
    parent, key = _get(doc, path[:-1]), path[-1]
    label = "/".join(str(k) for k in path)
    op = rng.random()
    if op < 0.15:
        del parent[key]
        desc = f"removed {label}"
    elif op < 0.22:
        parent[key] = "__RVM_DEEP__"
        text = json.dumps(doc).replace('"__RVM_DEEP__"', "[" * DEEP + "]" * DEEP)
        return text, f"{what} {label} replaced by lists nested {DEEP} deep"
    else:
        parent[key], change = _forged_value(rng, parent[key])
        desc = f"{label} set to {change}"
    return json.dumps(doc), f"{what} {desc}".strip()


def mutate_json_file(ctx: Ctx, path: Path, focus: Sequence[str] = ()) -> str:
    text, desc = mutate_json_text(ctx, path.read_text(encoding="utf-8", errors="replace"), focus, ctx.rel(path))
    path.write_text(text, encoding="utf-8")
    return desc


METADATA_FOCUS = (
    "width",
    "height",
    "downsample_ratio",
    "static",
    "variant",
    "refiner",
    "precision",
    "format",
    "seed",
    "checkpoint",
    "checkpoint_sha256",
    "schema",
    "options",
    "layout",
    "inference_precision",
    "opset",
)


def mutate_metadata_text(ctx: Ctx, text: str) -> Tuple[str, str]:
    return mutate_json_text(ctx, text, METADATA_FOCUS, "metadata")


METADATA_MARK = b'"checkpoint_sha256"'


def metadata_inplace(ctx: Ctx, path: Path) -> str:
    """Same-length edits in the embedded metadata JSON, wherever it is stored (no container to rewrite)."""
    data = bytearray(path.read_bytes())
    at = data.find(METADATA_MARK)
    if at < 0:
        raise Skip("no embedded metadata")
    start = data.rfind(b"{", max(0, at - 4000), at)
    end = _json_end(data, start) if start >= 0 else -1
    if end < 0:
        raise Skip("metadata not delimited")
    region = bytes(data[start : end + 1])
    rng = ctx.rng
    edits = [
        (rb"\d", b"9", "digits set to 9"),
        (rb"mobilenetv3|resnet50", None, "variant renamed"),
        (rb"fp32|fp16|int8|uint8", b"fp99", "precision renamed"),
        (rb'"(variant|refiner|precision|options|format)"', None, "a key renamed (missing)"),
        (rb"null", b"9999", "null set to a number"),
        (rb"[{]", b"[", "an object opened as a list"),
        (rb'"', b"'", "a quote replaced"),
        (rb"\d+(\.\d+)?", None, "a number replaced by letters"),
    ]
    pattern, replacement, label = rng.choice(edits)
    matches = list(re.finditer(pattern, region))
    if not matches:
        raise Skip("nothing to edit")
    chosen = rng.sample(matches, min(len(matches), rng.choice([1, 1, 3])))
    for m in chosen:
        old = m.group(0)
        if replacement is not None and len(replacement) == len(old):
            new = replacement
        else:
            new = (
                bytes(rng.choice(b"xyz") for _ in old)
                if not old.startswith(b'"')
                else b'"' + b"q" * (len(old) - 2) + b'"'
            )
        region = region[: m.start()] + new + region[m.end() :]
    data[start : end + 1] = region
    path.write_bytes(bytes(data))
    return f"embedded metadata in {ctx.rel(path)}: {label} ({len(chosen)} place(s), same length)"


def _json_end(data: bytes, start: int) -> int:
    """The offset of the brace that closes the JSON object opening at ``start``, or -1."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, min(len(data), start + 100_000)):
        byte = data[i]
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte == 0x7B:
            depth += 1
        elif byte == 0x7D:
            depth -= 1
            if depth == 0:
                return i
    return -1


# Zip archives (TorchScript, torch.export) -----------------------------------------------------------------


@dataclass
class ZipEntry:
    name: str
    header: int  # offset of the local header
    data: int  # offset of the member's bytes
    size: int  # compressed size (members of torch archives are stored)
    central: int  # offset of its central directory record
    flags: int


def zip_entries(data: bytes) -> List[ZipEntry]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    entries, central = [], archive.start_dir
    for info in archive.infolist():
        name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
        start = info.header_offset + 30 + name_len + extra_len
        entries.append(ZipEntry(info.filename, info.header_offset, start, info.compress_size, central, info.flag_bits))
        n, e, c = struct.unpack_from("<HHH", data, central + 28)
        central += 46 + n + e + c
    return entries


def _fix_crc(data: bytearray, entry: ZipEntry) -> None:
    crc = zlib.crc32(bytes(data[entry.data : entry.data + entry.size])) & 0xFFFFFFFF
    struct.pack_into("<I", data, entry.central + 16, crc)
    if entry.flags & 0x08:  # a data descriptor after the data holds the CRC
        at = entry.data + entry.size
        if data[at : at + 4] == b"PK\x07\x08":
            at += 4
        struct.pack_into("<I", data, at, crc)
    else:
        struct.pack_into("<I", data, entry.header + 14, crc)


def _member(rng: random.Random, entries: List[ZipEntry], prefer: Sequence[str]) -> ZipEntry:
    wanted = [e for e in entries if any(re.search(p, e.name) for p in prefer)]
    pool = wanted if wanted and rng.random() < 0.75 else entries
    return rng.choice(pool)


TORCH_MEMBERS = (r"data\.pkl$", r"constants\.pkl$", r"/code/", r"version$", r"byteorder$", r"\.json$", r"archive_")


def zip_member_bytes(ctx: Ctx, path: Path, prefer: Sequence[str] = TORCH_MEMBERS) -> str:
    data = bytearray(path.read_bytes())
    entry = _member(ctx.rng, [e for e in zip_entries(bytes(data)) if e.size], prefer)
    count = ctx.rng.choice([1, 2, 4, 16])
    offsets = sorted(ctx.rng.randrange(entry.size) for _ in range(count))
    for offset in offsets:
        data[entry.data + offset] ^= ctx.rng.randrange(1, 256)
    fixed = ctx.rng.random() < 0.8
    if fixed:
        _fix_crc(data, entry)
    path.write_bytes(bytes(data))
    crc = "CRC updated" if fixed else "CRC left stale"
    return f"changed {count} byte(s) of member {entry.name} at {_offsets(offsets)} ({crc})"


def zip_forge_record(ctx: Ctx, path: Path) -> str:
    """A forged size, count, offset or name length in a local header, central record or end record."""
    data = bytearray(path.read_bytes())
    entries = zip_entries(bytes(data))
    rng = ctx.rng
    where = rng.random()
    if where < 0.5:
        entry = _member(rng, entries, TORCH_MEMBERS)
        fields = {"compressed size": 20, "uncompressed size": 24, "name length": 28, "extra length": 30}
        fields["local header offset"] = 42
        name, rel = rng.choice(list(fields.items()))
        at, label = entry.central + rel, f"central record of {entry.name}: {name}"
    elif where < 0.75:
        entry = _member(rng, entries, TORCH_MEMBERS)
        fields = {"compressed size": 18, "uncompressed size": 22, "name length": 26, "extra length": 28}
        name, rel = rng.choice(list(fields.items()))
        at, label = entry.header + rel, f"local header of {entry.name}: {name}"
    else:
        end = bytes(data).rfind(b"PK\x05\x06")
        end64 = bytes(data).rfind(b"PK\x06\x06")
        records = [("entries on disk", end + 8, 2), ("total entries", end + 10, 2), ("directory size", end + 12, 4)]
        records.append(("directory offset", end + 16, 4))
        if end64 >= 0:
            records += [("zip64 total entries", end64 + 32, 8), ("zip64 directory size", end64 + 40, 8)]
            records.append(("zip64 directory offset", end64 + 48, 8))
        name, at, width = rng.choice(records)
        value = rng.choice([0, 1, (1 << (8 * width)) - 1, (1 << (8 * width - 1)) - 1])
        data[at : at + width] = value.to_bytes(width, "little")
        path.write_bytes(bytes(data))
        return f"zip end record: {name} set to {value:#x}"
    width = 2 if "length" in name else 4
    old = int.from_bytes(data[at : at + width], "little")
    value = rng.choice([0, old + 1, max(old - 1, 0), (1 << (8 * width)) - 1, (1 << (8 * width - 1)) - 1])
    data[at : at + width] = value.to_bytes(width, "little")
    path.write_bytes(bytes(data))
    return f"zip {label} {old} -> {value:#x}"


def rewrite_zip(path: Path, members: List[Tuple[str, bytes]]) -> None:
    """Write ``members`` as a stored zip whose member data starts on 64-byte boundaries (as torch writes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, content in members:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            offset = buffer.tell()
            pad = (-(offset + 30 + len(name.encode()) + 4)) % 64
            info.extra = struct.pack("<HH", 0x4246, pad) + b"\0" * pad  # torch's "FB" padding field
            archive.writestr(info, content)
    path.write_bytes(buffer.getvalue())


def _members(path: Path) -> List[Tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def zip_edit_member(ctx: Ctx, path: Path, prefer: Sequence[str] = TORCH_MEMBERS) -> str:
    """A member dropped, truncated or grown (the archive rewritten, consistent except for that member)."""
    members = _members(path)
    names = [n for n, _ in members]
    rng = ctx.rng
    wanted = [i for i, n in enumerate(names) if any(re.search(p, n) for p in prefer)]
    index = rng.choice(wanted if wanted and rng.random() < 0.75 else range(len(members)))
    name, content = members[index]
    op = rng.choice(["drop", "truncate", "truncate", "grow", "empty"])
    if op == "drop":
        del members[index]
        desc = f"dropped member {name}"
    elif op == "truncate":
        cut = rng.randrange(max(1, len(content)))
        members[index] = (name, content[:cut])
        desc = f"member {name} truncated to {cut} of {len(content)} bytes"
    elif op == "grow":
        members[index] = (name, content + bytes(rng.randrange(256) for _ in range(rng.choice([1, 64, 4096]))))
        desc = f"member {name} grown with random bytes"
    else:
        members[index] = (name, b"")
        desc = f"member {name} emptied"
    rewrite_zip(path, members)
    return desc


def zip_json_member(ctx: Ctx, path: Path, pattern: str, focus: Sequence[str]) -> str:
    members = _members(path)
    indices = [i for i, (n, _) in enumerate(members) if re.search(pattern, n)]
    if not indices:
        raise Skip(f"no member matches {pattern}")
    index = ctx.rng.choice(indices)
    name, content = members[index]
    if name.endswith("rvm_metadata.json"):
        text, desc = mutate_metadata_text(ctx, content.decode("utf-8", "replace"))
    else:
        text, desc = mutate_json_text(ctx, content.decode("utf-8", "replace"), focus, name.rsplit("/", 1)[-1])
    members[index] = (name, text.encode())
    rewrite_zip(path, members)
    return f"member {name}: {desc}"


def zip_pickle_ints(ctx: Ctx, path: Path) -> str:
    """An integer in a member pickle (storage sizes, tensor sizes and strides, offsets) forged in place."""
    import pickletools

    data = bytearray(path.read_bytes())
    entries = [e for e in zip_entries(bytes(data)) if e.name.endswith(".pkl") and not e.name.endswith("debug_pkl")]
    if not entries:
        raise Skip("no pickle member")
    entry = ctx.rng.choice(entries)
    blob = bytes(data[entry.data : entry.data + entry.size])
    ints = []
    try:
        for op, arg, pos in pickletools.genops(blob):
            if op.name in ("BININT", "BININT1", "BININT2", "LONG1") and pos is not None:
                ints.append((op.name, arg, pos))
    except Exception:
        pass
    if not ints:
        raise Skip("no integers in the pickle")
    name, old, pos = ctx.rng.choice(ints)
    width = {"BININT": 4, "BININT1": 1, "BININT2": 2}.get(name)
    if width is None:  # LONG1: a length byte then little-endian two's complement
        width = blob[pos + 1]
        start = pos + 2
    else:
        start = pos + 1
    if width == 0:
        raise Skip("empty LONG1")
    value = ctx.rng.choice([(1 << (8 * width)) - 1, (1 << (8 * width - 1)) - 1, 1 << (8 * width - 2)])
    data[entry.data + start : entry.data + start + width] = value.to_bytes(width, "little")
    _fix_crc(data, entry)
    path.write_bytes(bytes(data))
    return f"pickle {entry.name}: {name} {old} at {pos} forged to {value:#x} (CRC updated)"


# Protocol buffers (ONNX, saved_model.pb, CoreML), edited on the wire ---------------------------------------


@dataclass
class PbField:
    start: int  # the tag
    value_start: int  # after the tag, and after the length for a length-delimited field
    end: int
    number: int
    wire: int
    value: int = 0  # the varint, or the declared length


def _varint(data: bytes, i: int, end: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        if i >= end or shift > 63:
            raise ValueError("bad varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pb_fields(data: bytes, start: int, end: int, limit: int = 500_000) -> Optional[List[PbField]]:
    """The fields of the message in ``data[start:end]``, or None when those bytes are not a message."""
    fields: List[PbField] = []
    i = start
    try:
        while i < end:
            tag, j = _varint(data, i, end)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                return None
            value = 0
            if wire == 0:
                value, k = _varint(data, j, end)
                value_start = j
            elif wire == 1:
                value_start, k = j, j + 8
            elif wire == 5:
                value_start, k = j, j + 4
            elif wire == 2:
                value, value_start = _varint(data, j, end)
                k = value_start + value
            else:
                return None
            if k > end:
                return None
            fields.append(PbField(i, value_start, k, number, wire, value))
            i = k
            if len(fields) > limit:
                return None
    except ValueError:
        return None
    return fields


def _tag(number: int, wire: int) -> bytes:
    return encode_varint((number << 3) | wire)


def _pb_path(ctx: Ctx, data: bytes, depth_bias: float = 0.75) -> List[PbField]:
    """A random path from the top message down to one field (descending into sub-messages)."""
    path: List[PbField] = []
    start, end = 0, len(data)
    while True:
        fields = pb_fields(data, start, end)
        if not fields:
            break
        field_ = ctx.rng.choice(fields)
        path.append(field_)
        if field_.wire != 2 or ctx.rng.random() > depth_bias or field_.end - field_.value_start < 2:
            break
        sub = pb_fields(data, field_.value_start, field_.end, limit=200_000)
        if not sub:
            break
        start, end = field_.value_start, field_.end
    return path


def _pb_rebuild(data: bytes, path: List[PbField], replacement: bytes) -> bytes:
    """``data`` with the last field of ``path`` replaced by ``replacement`` and every enclosing length re-encoded."""
    new = replacement
    child = path[-1]
    for parent in reversed(path[:-1]):
        content = data[parent.value_start : child.start] + new + data[child.end : parent.end]
        new = _tag(parent.number, 2) + encode_varint(len(content)) + content
        child = parent
    return data[: child.start] + new + data[child.end :]


def pb_mutate(ctx: Ctx, path: Path) -> str:
    data = path.read_bytes()
    trail = _pb_path(ctx, data)
    if not trail:
        raise Skip("not a protobuf message")
    leaf = trail[-1]
    rng = ctx.rng
    where = ".".join(str(f.number) for f in trail)
    raw = data[leaf.start : leaf.end]
    op = rng.random()
    if op < 0.12:
        new, desc = b"", "removed"
    elif op < 0.22:
        times = rng.choice([2, 3, 64, 1000])
        new, desc = raw * times, f"repeated {times} times"
    elif op < 0.27:
        tag_end = _varint(data, leaf.start, leaf.end)[1] - leaf.start
        wire = rng.choice([w for w in (0, 1, 2, 5) if w != leaf.wire])
        new, desc = _tag(leaf.number, wire) + raw[tag_end:], f"wire type {leaf.wire} -> {wire}"
    elif leaf.wire == 0:
        value = rng.choice(
            (0, 1, leaf.value + 1) + HUGE_64 + (2**31 - 1, 2**32 - 1, leaf.value ^ (1 << rng.randrange(64)))
        )
        new, desc = _tag(leaf.number, 0) + encode_varint(value), f"varint {leaf.value} -> {value & (2**64 - 1):#x}"
    elif leaf.wire in (1, 5):
        width = 8 if leaf.wire == 1 else 4
        value = bytes(rng.choice([b"\xff" * width, b"\x00" * width, bytes(rng.randrange(256) for _ in range(width))]))
        new, desc = _tag(leaf.number, leaf.wire) + value, f"fixed{width * 8} set to {value.hex()}"
    else:
        content = data[leaf.value_start : leaf.end]
        kind = rng.choice(["length", "length", "truncate", "garbage", "grow"])
        if kind == "length":  # the declared length forged; the bytes stay, the enclosing lengths follow them
            forged = rng.choice([len(content) + 1, len(content) + 1000, 2**31 - 1, 2**32 + len(content), 2**63])
            new = _tag(leaf.number, 2) + encode_varint(forged) + content
            desc = f"length {len(content)} forged to {forged}"
        elif kind == "truncate":
            cut = rng.randrange(max(1, len(content)))
            new, desc = (
                _tag(leaf.number, 2) + encode_varint(cut) + content[:cut],
                f"content cut to {cut} of {len(content)}",
            )
        elif kind == "garbage":
            junk = bytes(rng.randrange(256) for _ in range(min(len(content), 4096))) + content[4096:]
            new, desc = _tag(leaf.number, 2) + encode_varint(len(junk)) + junk, f"{len(content)} bytes randomised"
        else:
            more = content + content[: rng.choice([1, 16, len(content)])]
            new, desc = _tag(leaf.number, 2) + encode_varint(len(more)) + more, "content grown"
    path.write_bytes(_pb_rebuild(data, trail, new))
    return f"protobuf {ctx.rel(path)} field {where} (wire {leaf.wire}): {desc}"


def pb_embedded_json(ctx: Ctx, path: Path) -> str:
    """The rvm metadata JSON stored as a protobuf string (ONNX metadata_props, CoreML userDefined) forged,
    its enclosing lengths re-encoded."""
    data = path.read_bytes()
    at = data.find(METADATA_MARK)
    if at < 0:
        raise Skip("no embedded metadata")
    trail: List[PbField] = []
    start, end = 0, len(data)
    while True:
        fields = pb_fields(data, start, end)
        holder = next((f for f in fields or [] if f.wire == 2 and f.value_start <= at < f.end), None)
        if holder is None:
            break
        trail.append(holder)
        start, end = holder.value_start, holder.end
    if not trail:
        raise Skip("metadata not in a protobuf string")
    leaf = trail[-1]
    text, desc = mutate_metadata_text(ctx, data[leaf.value_start : leaf.end].decode("utf-8", "replace"))
    content = text.encode()
    path.write_bytes(_pb_rebuild(data, trail, _tag(leaf.number, 2) + encode_varint(len(content)) + content))
    return f"{ctx.rel(path)}: {desc}"


# ONNX, with its own library -------------------------------------------------------------------------------


def onnx_edit(ctx: Ctx, path: Path) -> str:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph, rng = model.graph, ctx.rng
    kind = rng.choice(["dims", "dims", "input", "external", "attribute", "opset", "dtype", "dangling"])
    if kind == "dims":
        init = rng.choice([i for i in graph.initializer if len(i.dims)] or list(graph.initializer))
        new = rng.choice([[2**31 - 1] * max(1, len(init.dims)), [2**62, 2**62], [-3] * len(init.dims), [0], [1] * 9])
        old = list(init.dims)
        del init.dims[:]
        init.dims.extend(new)
        desc = f"initializer {init.name} dims {old} -> {new}"
    elif kind == "input":
        value = rng.choice(graph.input)
        dims = value.type.tensor_type.shape.dim
        if not dims:
            raise Skip("no input dims")
        dim = rng.choice(dims)
        forged = rng.choice([2**31 - 1, 2**62, -5, 0])
        dim.dim_value = forged
        desc = f"input {value.name} dim set to {forged}"
    elif kind == "external":
        init = rng.choice(list(graph.initializer))
        init.data_location = onnx.TensorProto.EXTERNAL
        del init.external_data[:]
        location = rng.choice(["missing.bin", "../../../../etc/passwd", "/dev/zero", path.name])
        for key, value in (
            ("location", location),
            ("offset", str(rng.choice([0, 2**40]))),
            ("length", str(rng.choice([16, 2**40]))),
        ):
            entry = init.external_data.add()
            entry.key, entry.value = key, value
        init.ClearField("raw_data")
        desc = f"initializer {init.name} moved to external data {location}"
    elif kind == "attribute":
        nodes = [n for n in graph.node if any(a.ints or a.type == onnx.AttributeProto.INT for a in n.attribute)]
        if not nodes:
            raise Skip("no integer attributes")
        node = rng.choice(nodes)
        attr = rng.choice([a for a in node.attribute if a.ints or a.type == onnx.AttributeProto.INT])
        forged = rng.choice([2**31 - 1, 2**62, -(2**31), 0])
        if attr.ints:
            attr.ints[rng.randrange(len(attr.ints))] = forged
        else:
            attr.i = forged
        desc = f"node {node.name} attribute {attr.name} set to {forged}"
    elif kind == "opset":
        forged = rng.choice([0, 1, 999, 2**40])
        if rng.random() < 0.5:
            model.opset_import[0].version = forged
            desc = f"opset version set to {forged}"
        else:
            model.ir_version = forged
            desc = f"ir_version set to {forged}"
    elif kind == "dtype":
        init = rng.choice(list(graph.initializer))
        forged = rng.choice([0, 8, 13, 99, 2**20])
        init.data_type = forged
        desc = f"initializer {init.name} data_type set to {forged}"
    else:
        node = rng.choice(list(graph.node))
        if not node.input:
            raise Skip("node without inputs")
        node.input[rng.randrange(len(node.input))] = "no_such_tensor"
        desc = f"node {node.name} reads a tensor nobody writes"
    path.write_bytes(model.SerializeToString())
    return f"onnx: {desc}"


# Flatbuffers (LiteRT) -------------------------------------------------------------------------------------


def fb_mutate(ctx: Ctx, path: Path, kind: Optional[str] = None) -> str:
    """A forged vector length, index, shape or enum in the .tflite flatbuffer, in place."""
    from ai_edge_litert import schema_py_generated as schema

    data = bytearray(path.read_bytes())
    model = schema.Model.GetRootAs(bytes(data), 0)
    rng = ctx.rng
    sub = model.Subgraphs(0)

    def vector_len_at(tab: Any, slot: int) -> Optional[int]:
        o = tab.Offset(slot)
        return tab.Vector(o) - 4 if o else None

    def scalar_at(tab: Any, slot: int) -> Optional[int]:
        o = tab.Offset(slot)
        return tab.Pos + o if o else None

    tensor = sub.Tensors(rng.randrange(sub.TensorsLength()))
    op = sub.Operators(rng.randrange(sub.OperatorsLength()))
    buffers = [i for i in range(model.BuffersLength()) if model.Buffers(i).DataLength()]
    buffer = model.Buffers(rng.choice(buffers)) if buffers else model.Buffers(0)
    kind = kind or rng.choice(["length", "index", "shape", "enum", "options"])
    if kind == "options":  # a field of an operator's options table (strides, num_splits, values_count...)
        ops = [sub.Operators(i) for i in range(sub.OperatorsLength())]
        ops = [o for o in ops if o.BuiltinOptionsType() and o.BuiltinOptions() is not None]
        if not ops:
            raise Skip("no operator options")
        op = rng.choice(ops)
        table = op.BuiltinOptions()
        from flatbuffers.table import Table

        options = Table(table.Bytes, table.Pos)
        slots = [slot for slot in range(4, 24, 2) if options.Offset(slot)]
        if not slots:
            raise Skip("empty options table")
        slot = rng.choice(slots)
        at = options.Pos + options.Offset(slot)
        old = data[at]
        value = rng.choice([0, 1, 3, 255, 0x7FFFFFFF, 0xFFFFFFFF])
        width = 1 if value <= 255 and rng.random() < 0.5 else 4
        data[at : at + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
        path.write_bytes(bytes(data))
        return f"flatbuffer: options field {slot // 2 - 2} of operator {op.OpcodeIndex()} (byte {old}) -> {value:#x}"
    if kind == "length":
        vectors = {
            "model.buffers": (model._tab, 12),
            "model.subgraphs": (model._tab, 8),
            "model.operator_codes": (model._tab, 6),
            "model.metadata": (model._tab, 16),
            "model.signature_defs": (model._tab, 18),
            "subgraph.tensors": (sub._tab, 4),
            "subgraph.inputs": (sub._tab, 6),
            "subgraph.operators": (sub._tab, 10),
            "tensor.shape": (tensor._tab, 4),
            "tensor.shape_signature": (tensor._tab, 18),
            "operator.inputs": (op._tab, 6),
            "operator.outputs": (op._tab, 8),
            "buffer.data": (buffer._tab, 4),
        }
        name, (tab, slot) = rng.choice(list(vectors.items()))
        at = vector_len_at(tab, slot)
        if at is None:
            raise Skip(f"{name} absent")
        old = struct.unpack_from("<I", data, at)[0]
        value = rng.choice([0x7FFFFFFF, 0xFFFFFFFF, old + 1, old * 2 + 100, 0])
        struct.pack_into("<I", data, at, value)
        desc = f"vector {name} length {old} -> {value:#x}"
    elif kind == "index":
        metadata = model.Metadata(0) if model.MetadataLength() else None
        slots = {"tensor.buffer": (tensor._tab, 8, "<I"), "operator.opcode_index": (op._tab, 4, "<I")}
        if metadata is not None:
            slots["metadata.buffer"] = (metadata._tab, 6, "<I")
        name, (tab, slot, fmt) = rng.choice(list(slots.items()))
        if rng.random() < 0.4:  # an element of an index vector instead
            name, tab, slot = rng.choice([("operator.inputs", op._tab, 6), ("subgraph.inputs", sub._tab, 6)])
            o = tab.Offset(slot)
            if not o or not tab.VectorLen(o):
                raise Skip("empty index vector")
            at, fmt = tab.Vector(o) + 4 * rng.randrange(tab.VectorLen(o)), "<i"
            name += "[i]"
        else:
            at = scalar_at(tab, slot)
            if at is None:
                raise Skip(f"{name} absent")
        old = struct.unpack_from(fmt, data, at)[0]
        value = rng.choice(
            [sub.TensorsLength() + 3, model.BuffersLength(), 2**31 - 1, -1 if fmt == "<i" else 0xFFFFFFFF]
        )
        struct.pack_into(fmt, data, at, value)
        desc = f"{name} {old} -> {value}"
    elif kind == "shape":
        o = tensor._tab.Offset(4)
        if not o or not tensor._tab.VectorLen(o):
            raise Skip("scalar tensor")
        at = tensor._tab.Vector(o) + 4 * rng.randrange(tensor._tab.VectorLen(o))
        old = struct.unpack_from("<i", data, at)[0]
        value = rng.choice([2**31 - 1, 1 << 20, -7, 0, 65536])
        struct.pack_into("<i", data, at, value)
        desc = f"tensor {tensor.Name().decode(errors='replace')} shape element {old} -> {value}"
    else:
        if rng.random() < 0.5:
            at = scalar_at(tensor._tab, 6)
            name = "tensor.type"
        else:
            at = scalar_at(op._tab, 10)
            name = "operator.builtin_options_type"
        if at is None:
            raise Skip(f"{name} absent")
        old = data[at]
        data[at] = rng.choice([127, 200, 255, (old + 1) & 0xFF])
        desc = f"{name} {old} -> {data[at]}"
    path.write_bytes(bytes(data))
    return f"flatbuffer: {desc}"


# OpenVINO XML ---------------------------------------------------------------------------------------------

XML_ATTR = re.compile(
    rb'\b(shape|offset|size|element_type|precision|from-layer|from-port|to-layer|to-port|version|type|id)="([^"]*)"'
)
XML_DIM = re.compile(rb"<dim>(-?\d+)</dim>")


def xml_attribute(ctx: Ctx, path: Path) -> str:
    data = path.read_bytes()
    rng = ctx.rng
    if rng.random() < 0.2:
        matches, label = list(XML_DIM.finditer(data)), "dim"
    else:
        matches = list(XML_ATTR.finditer(data))
        focused = [m for m in matches if m.group(1) in (b"shape", b"offset", b"size", b"element_type")]
        matches = focused if focused and rng.random() < 0.7 else matches
        label = ""
    if not matches:
        raise Skip("no attributes")
    m = rng.choice(matches)
    name = label or m.group(1).decode()
    values = {
        "shape": [b"2147483647, 2147483647", b"1000000, 1000000, 1000", b"-5", b"1,1,1,1,1,1,1,1,1,1", b"x", b""],
        "offset": [b"18446744073709551615", b"9223372036854775807", b"99999999999", b"-1", b"x"],
        "size": [b"18446744073709551615", b"9223372036854775807", b"99999999999", b"0", b"-1", b"x"],
        "element_type": [b"f64", b"foo", b"u1", b"string", b"dynamic", b""],
        "precision": [b"FP64", b"XYZ", b""],
        "version": [b"opset999", b"", b"x"],
        "type": [b"NoSuchOp", b"", b"Parameter"],
        "dim": [b"2147483647", b"-7", b"0", b"99999999999999999999"],
    }.get(name, [b"999999", b"-1", b"0", b"x", b"18446744073709551615"])
    value = rng.choice(values)
    group = 1 if label else 2
    if name in ("offset", "size") and rng.random() < 0.4 and m.group(2).isdigit():
        value = str(int(m.group(2)) + rng.choice([1, 4, 10**6])).encode()
    data = data[: m.start(group)] + value + data[m.end(group) :]
    path.write_bytes(data)
    return f"xml {name}={m.group(group).decode(errors='replace')[:30]!r} -> {value.decode()[:30]!r}"


def xml_remove(ctx: Ctx, path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    rng = ctx.rng
    choice = rng.choice(["layer", "edge", "data", "rt_info"])
    patterns = {
        "layer": r"<layer [^>]*>.*?</layer>\s*",
        "edge": r"<edge [^>]*/>\s*",
        "data": r"<data [^>]*/>\s*",
        "rt_info": r"<rt_info>.*?</rt_info>\s*",
    }
    matches = list(re.finditer(patterns[choice], text, flags=re.S))
    if not matches:
        raise Skip(f"no {choice}")
    m = rng.choice(matches)
    path.write_text(text[: m.start()] + text[m.end() :], encoding="utf-8")
    return f"xml: removed one <{choice}> element"


def xml_metadata(ctx: Ctx, path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    found = list(re.finditer(r'(<rvm_metadata\.json value=")([^"]*)(")', text))
    if not found:
        raise Skip("no rt_info metadata")
    m = found[-1] if ctx.rng.random() < 0.8 else ctx.rng.choice(found)  # the last: the one the runner reads
    new, desc = mutate_metadata_text(ctx, html.unescape(m.group(2)))
    path.write_text(text[: m.start(2)] + html.escape(new, quote=True) + text[m.end(2) :], encoding="utf-8")
    return f"xml rt_info {desc}"


# CoreML weight blob ----------------------------------------------------------------------------------------


def blob_forge(ctx: Ctx, path: Path) -> str:
    """weight.bin of an .mlpackage: header (count, version) then per blob a 64-byte record
    (sentinel 0xDEADBEEF, dtype, size, offset) before its data; one of those forged."""
    data = bytearray(path.read_bytes())
    rng = ctx.rng
    if len(data) < 64:
        raise Skip("no header")
    records, at = [], 64
    while at + 64 <= len(data) and struct.unpack_from("<I", data, at)[0] == 0xDEADBEEF and len(records) < 100_000:
        size, offset = struct.unpack_from("<QQ", data, at + 8)
        records.append(at)
        at = offset + size
        at += (-at) % 64
    if rng.random() < 0.15 or not records:
        field_, value = rng.choice([("count", rng.choice([0, 0xFFFFFFFF, len(records) + 1])), ("version", 99)])
        struct.pack_into("<I", data, 0 if field_ == "count" else 4, value)
        path.write_bytes(bytes(data))
        return f"weight.bin header {field_} set to {value:#x}"
    index = rng.randrange(len(records))
    at = records[index]
    choice = rng.choice(["size", "size", "offset", "offset", "dtype", "sentinel"])
    if choice in ("size", "offset"):
        pos = at + (8 if choice == "size" else 16)
        old = struct.unpack_from("<Q", data, pos)[0]
        value = rng.choice([2**64 - 1, 2**63, 2**40, len(data), old + 1, old + 64, 0])
        struct.pack_into("<Q", data, pos, value)
        desc = f"{choice} {old} -> {value:#x}"
    elif choice == "dtype":
        value = rng.choice([0, 99, 0xFFFFFFFF])
        struct.pack_into("<I", data, at + 4, value)
        desc = f"dtype set to {value}"
    else:
        struct.pack_into("<I", data, at, 0xBADC0FFE)
        desc = "sentinel broken"
    path.write_bytes(bytes(data))
    return f"weight.bin blob {index} of {len(records)}: {desc}"


# Folders -----------------------------------------------------------------------------------------------------


def drop_file(ctx: Ctx, candidates: Sequence[Path]) -> str:
    existing = [p for p in candidates if p.exists()]
    if not existing:
        raise Skip("nothing to drop")
    victim = ctx.rng.choice(existing)
    if victim.is_dir():
        shutil.rmtree(victim)
    else:
        victim.unlink()
    return f"removed {ctx.rel(victim)}"


def _weighted(ctx: Ctx, choices: Sequence[Tuple[float, Path]]) -> Path:
    present = [(w, p) for w, p in choices if p.is_file() and p.stat().st_size]
    total = sum(w for w, _ in present)
    pick = ctx.rng.random() * total
    for w, p in present:
        pick -= w
        if pick <= 0:
            return p
    return present[-1][1]


# --- Formats ----------------------------------------------------------------------------------------------

Mutator = Callable[[Ctx], str]


@dataclass(frozen=True)
class Format:
    name: str
    target: str
    artifact: str  # name of the seeded artifact the driver exports
    export_args: Tuple[str, ...]
    case: Tuple[str, ...]
    kinds: Tuple[Tuple[str, Mutator], ...]  # in order of priority: a few inputs cover the first kinds


def _tf_files(ctx: Ctx) -> Dict[str, Path]:
    root = ctx.root
    return {
        "pb": root / "saved_model.pb",
        "index": root / "variables" / "variables.index",
        "data": root / "variables" / "variables.data-00000-of-00001",
        "fingerprint": root / "fingerprint.pb",
        "asset": root / "assets" / "rvm_metadata.json",
    }


def _tf_any(ctx: Ctx) -> Path:
    f = _tf_files(ctx)
    return _weighted(ctx, [(4, f["pb"]), (2, f["index"]), (2, f["data"]), (1, f["fingerprint"]), (1, f["asset"])])


def _tfjs_shards(ctx: Ctx) -> List[Path]:
    return sorted(ctx.root.glob("*.bin"))


def _mlpackage(ctx: Ctx) -> Dict[str, Path]:
    data = ctx.root / "Data" / "com.apple.CoreML"
    return {
        "spec": data / "model.mlmodel",
        "weights": data / "weights" / "weight.bin",
        "manifest": ctx.root / "Manifest.json",
    }


def _ov_bin(ctx: Ctx) -> Path:
    return ctx.root.with_suffix(".bin")


TFJS_MANIFEST_FOCUS = ("shape", "dtype", "paths", "name", "weights", "quantization", "scale", "min", "original_dtype")
TFJS_TOPOLOGY_FOCUS = ("shape", "dim", "size", "dtype", "type", "i", "list", "value", "tensor", "op", "input", "attr")
PT2_FOCUS = (
    "sizes",
    "strides",
    "storage_offset",
    "as_int",
    "as_ints",
    "dtype",
    "tensor_meta",
    "nodes",
    "major",
    "minor",
)
MANIFEST_FOCUS = ("path", "rootModelIdentifier", "itemInfoEntries", "fileFormatVersion", "name")


TFJS_KINDS: Tuple[Tuple[str, Mutator], ...] = (
    ("weightsManifest JSON", lambda c: _tfjs_json(c, "weightsManifest", TFJS_MANIFEST_FOCUS)),
    ("truncate shard", lambda c: truncate(c, c.rng.choice(_tfjs_shards(c)))),
    ("modelTopology JSON", lambda c: _tfjs_json(c, "modelTopology", TFJS_TOPOLOGY_FOCUS)),
    ("metadata JSON", lambda c: _tfjs_json(c, "userDefinedMetadata", METADATA_FOCUS)),
    ("truncate model.json", lambda c: truncate(c, c.root / "model.json")),
    ("model.json bytes", lambda c: flip_bytes(c, c.root / "model.json", head=c.rng.random() < 0.3)),
    ("shard removed or grown", lambda c: _tfjs_shard_edit(c)),
    (
        "model.json JSON",
        lambda c: mutate_json_file(
            c, c.root / "model.json", ("format", "weightsManifest", "modelTopology", "signature")
        ),
    ),
    ("shard bytes", lambda c: flip_bytes(c, c.rng.choice(_tfjs_shards(c)), head=False)),
)


def _zip_formats() -> List[Format]:
    common: Tuple[Tuple[str, Mutator], ...] = (
        ("truncate", lambda c: truncate(c, c.root)),
        ("zip member bytes", lambda c: zip_member_bytes(c, c.root)),
        ("zip record forged", lambda c: zip_forge_record(c, c.root)),
        ("pickle int forged", lambda c: zip_pickle_ints(c, c.root)),
        ("metadata JSON", lambda c: zip_json_member(c, c.root, r"rvm_metadata\.json$", METADATA_FOCUS)),
        ("header bytes", lambda c: flip_bytes(c, c.root, head=True)),
        ("zip member edited", lambda c: zip_edit_member(c, c.root)),
        ("bytes anywhere", lambda c: flip_bytes(c, c.root, head=False)),
        ("metadata in place", lambda c: metadata_inplace(c, c.root)),
        ("word forged", lambda c: forge_word(c, c.root, head=False)),
    )
    # Structural mutations first: a .pt2 the loader accepts takes ~15 s to load, a refused one well under 1 s.
    pt2 = (
        ("truncate", common[0][1]),
        ("program JSON", lambda c: zip_json_member(c, c.root, r"models/.*\.json$", PT2_FOCUS)),
        ("zip record forged", common[2][1]),
        ("zip member edited", lambda c: zip_edit_member(c, c.root, TORCH_MEMBERS + (r"models/",))),
        ("zip member bytes", lambda c: zip_member_bytes(c, c.root, TORCH_MEMBERS + (r"models/", r"sample_inputs"))),
        ("metadata JSON", common[4][1]),
        ("header bytes", common[5][1]),
        ("word forged", common[9][1]),
        ("bytes anywhere", common[7][1]),
        ("metadata in place", common[8][1]),
    )
    return [
        Format("torchscript", "torchscript", "rvm.torchscript", (), CASE, common),
        Format("pt2", "pt2", "rvm.pt2", (), CASE, pt2),
    ]


def _ncnn_bin(ctx: Ctx) -> Path:
    return ctx.root.with_suffix(".bin")


def ncnn_metadata(ctx: Ctx, path: Path) -> str:
    """The .param's metadata line (``#rvm_metadata.json {...}``, after the last layer) mutated as JSON."""
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    index = next((i for i, line in enumerate(lines) if line.startswith("#rvm_metadata.json ")), None)
    if index is None:
        raise Skip("no metadata line")
    text, desc = mutate_metadata_text(ctx, lines[index][len("#rvm_metadata.json ") :])
    lines[index] = "#rvm_metadata.json " + text.replace("\n", " ")
    path.write_text("\n".join(lines), encoding="utf-8")
    return f"{ctx.rel(path)} metadata line: {desc}"


def ncnn_number(ctx: Ctx, path: Path) -> str:
    """One number of the .param (a count, a layer's blob count or a key=value parameter) set to a forged value."""
    text = path.read_text(encoding="utf-8", errors="replace")
    numbers = [m for m in re.finditer(r"(?<![\w.])-?[0-9]+(?![\w.])", text) if not text[: m.start()].endswith("#")]
    metadata_at = text.find("#rvm_metadata.json")
    numbers = [m for m in numbers if metadata_at < 0 or m.start() < metadata_at]
    if not numbers:
        raise Skip("no numbers")
    match = ctx.rng.choice(numbers)
    value = ctx.rng.choice(HUGE_INTS + (0, 1, 2, 3, 255, 256, 65536))
    path.write_text(text[: match.start()] + str(value) + text[match.end() :], encoding="utf-8")
    return f"{ctx.rel(path)}: {match.group(0)} at offset {match.start()} set to {value}"


def ncnn_line(ctx: Ctx, path: Path) -> str:
    """One layer line of the .param removed or duplicated (counts and blobs no longer agree)."""
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    layers = [i for i in range(2, len(lines)) if lines[i] and not lines[i].startswith("#")]
    if not layers:
        raise Skip("no layer lines")
    index = ctx.rng.choice(layers)
    if ctx.rng.random() < 0.5:
        removed = lines.pop(index)
        what = f"removed layer line {index} ({removed.split(' ')[0]})"
    else:
        lines.insert(index, lines[index])
        what = f"duplicated layer line {index}"
    path.write_text("\n".join(lines), encoding="utf-8")
    return f"{ctx.rel(path)}: {what}"


def _pte_regions(ctx: Ctx) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """(start, end) of a .pte's flatbuffer and of its segments (constant data, the XNNPACK payload), from the
    extended header after the ET12 identifier; the whole file for the flatbuffer when there is none."""
    data = ctx.root.read_bytes()
    if data[8:12] != b"eh00" or len(data) < 32:
        return (0, len(data)), (0, len(data))
    program_size, base = struct.unpack_from("<QQ", data, 16)
    program_size = min(program_size, len(data))
    base = min(base, len(data) - 1) if base else program_size
    return (0, max(program_size, 16)), (base, len(data))


def _pte_word(ctx: Ctx) -> str:
    """A 4-byte word of the flatbuffer (an offset, a vector length, a tensor size) set to a huge or small value."""
    data = bytearray(ctx.root.read_bytes())
    (lo, hi), _ = _pte_regions(ctx)
    offset = ctx.rng.randrange(lo + 8, max(lo + 12, hi - 4))
    offset -= offset % 4
    value = ctx.rng.choice(HUGE_32 + (0, 1, 3, 0xFFFF))
    data[offset : offset + 4] = value.to_bytes(4, "little")
    ctx.root.write_bytes(bytes(data))
    return f"wrote {value:#x} as a 4-byte word at offset {offset} of the flatbuffer of {ctx.rel(ctx.root)}"


def mnn_op_field(ctx: Ctx, path: Path) -> str:
    """One op of the .mnn's main graph with a forged type (a Plugin, an unknown enum) or tensor index, in place."""
    from rvm_export.runtimes.pte_format import _Reader

    data = bytearray(path.read_bytes())
    reader = _Reader(bytes(data))
    ops = reader.tables(reader.u32(0), 3)
    op = ops[ctx.rng.randrange(len(ops))]
    start, length = reader.vector(op, ctx.rng.choice((0, 4)), 4)
    if length and ctx.rng.random() < 0.6:
        at = start + 4 * ctx.rng.randrange(length)
        value = ctx.rng.choice((-1, 2**31 - 1, 70000, 391, 392))
        what = "tensor index"
    else:
        at = reader.field(op, 5)
        if not at:
            raise Skip("the op has the default type")
        value, what = ctx.rng.choice((256, 512, 600, 9999, -1, 0)), "op type"
    struct.pack_into("<i", data, at, value)
    path.write_bytes(bytes(data))
    return f"wrote {value} as the {what} at offset {at} of {ctx.rel(path)}"


def formats() -> Dict[str, Format]:
    """Every reader the fuzz covers: one per target, CoreML's two formats apart."""
    coreml_args = ("--resolution", "64", "48", "--downsample-ratio", "0.5")
    table = _zip_formats() + [
        Format(
            "onnx",
            "onnx",
            "rvm.onnx",
            (),
            CASE,
            (
                ("truncate", lambda c: truncate(c, c.root)),
                ("protobuf field", lambda c: pb_mutate(c, c.root)),
                ("onnx edit", lambda c: onnx_edit(c, c.root)),
                ("metadata JSON", lambda c: pb_embedded_json(c, c.root)),
                ("header bytes", lambda c: flip_bytes(c, c.root, head=True)),
                ("protobuf field", lambda c: pb_mutate(c, c.root)),
                ("onnx edit", lambda c: onnx_edit(c, c.root)),
                ("bytes anywhere", lambda c: flip_bytes(c, c.root, head=False)),
                ("metadata in place", lambda c: metadata_inplace(c, c.root)),
                ("word forged", lambda c: forge_word(c, c.root, head=True)),
            ),
        ),
        Format(
            "tensorflow",
            "tensorflow",
            "rvm_tf",
            (),
            CASE,
            (
                ("saved_model.pb field", lambda c: pb_mutate(c, _tf_files(c)["pb"])),
                ("truncate", lambda c: truncate(c, _tf_any(c))),
                ("variables.index bytes", lambda c: flip_bytes(c, _tf_files(c)["index"], head=c.rng.random() < 0.5)),
                ("metadata JSON", lambda c: mutate_metadata_file(c, _tf_files(c)["asset"])),
                ("saved_model.pb header", lambda c: flip_bytes(c, _tf_files(c)["pb"], head=True)),
                ("saved_model.pb field", lambda c: pb_mutate(c, _tf_files(c)["pb"])),
                ("variables data", lambda c: _tf_data(c)),
                ("file removed", lambda c: drop_file(c, list(_tf_files(c).values()) + [c.root / "variables"])),
                ("fingerprint.pb field", lambda c: pb_mutate(c, _tf_files(c)["fingerprint"])),
                ("bytes anywhere", lambda c: flip_bytes(c, _tf_any(c), head=False)),
                ("variables.index footer", lambda c: _tail_flip(c, _tf_files(c)["index"], 48)),
            ),
        ),
        Format("tfjs", "tfjs", "rvm_tfjs", (), CASE, TFJS_KINDS),
        # the same artifact read by TF.js in headless Chromium (its own fetch and loader), on the wasm backend
        Format("tfjs-browser", "tfjs", "rvm_tfjs", (), CASE + ("--tfjs-backend", "wasm"), TFJS_KINDS),
        Format(
            "coreml-mlprogram",
            "coreml",
            "rvm.mlpackage",
            coreml_args + ("--format", "mlprogram"),
            FIXED_CASE,
            (
                ("model.mlmodel field", lambda c: pb_mutate(c, _mlpackage(c)["spec"])),
                ("weight.bin record", lambda c: blob_forge(c, _mlpackage(c)["weights"])),
                ("Manifest.json", lambda c: mutate_json_file(c, _mlpackage(c)["manifest"], MANIFEST_FOCUS)),
                ("truncate", lambda c: truncate(c, _weighted(c, [(1, p) for p in _mlpackage(c).values()]))),
                ("metadata JSON", lambda c: pb_embedded_json(c, _mlpackage(c)["spec"])),
                ("model.mlmodel header", lambda c: flip_bytes(c, _mlpackage(c)["spec"], head=True)),
                ("weight.bin bytes", lambda c: flip_bytes(c, _mlpackage(c)["weights"], head=c.rng.random() < 0.5)),
                ("file removed", lambda c: drop_file(c, list(_mlpackage(c).values()))),
                ("model.mlmodel field", lambda c: pb_mutate(c, _mlpackage(c)["spec"])),
                ("metadata in place", lambda c: metadata_inplace(c, _mlpackage(c)["spec"])),
            ),
        ),
        Format(
            "coreml-neuralnetwork",
            "coreml",
            "rvm.mlmodel",
            coreml_args + ("--format", "neuralnetwork"),
            FIXED_CASE,
            (
                ("protobuf field", lambda c: pb_mutate(c, c.root)),
                ("truncate", lambda c: truncate(c, c.root)),
                ("metadata JSON", lambda c: pb_embedded_json(c, c.root)),
                ("header bytes", lambda c: flip_bytes(c, c.root, head=True)),
                ("protobuf field", lambda c: pb_mutate(c, c.root)),
                ("bytes anywhere", lambda c: flip_bytes(c, c.root, head=False)),
                ("metadata in place", lambda c: metadata_inplace(c, c.root)),
                ("word forged", lambda c: forge_word(c, c.root, head=False)),
            ),
        ),
        Format(
            "openvino",
            "openvino",
            "rvm.xml",
            (),
            CASE,
            (
                ("xml attribute", lambda c: xml_attribute(c, c.root)),
                ("truncate .bin", lambda c: truncate(c, _ov_bin(c))),
                ("truncate .xml", lambda c: truncate(c, c.root)),
                ("metadata JSON", lambda c: xml_metadata(c, c.root)),
                ("xml element removed", lambda c: xml_remove(c, c.root)),
                ("xml attribute", lambda c: xml_attribute(c, c.root)),
                (".xml bytes", lambda c: flip_bytes(c, c.root, head=c.rng.random() < 0.5)),
                (".bin bytes", lambda c: flip_bytes(c, _ov_bin(c), head=False)),
                (".bin grown", lambda c: append_bytes(c, _ov_bin(c))),
            ),
        ),
        Format(
            "tflite",
            "tflite",
            "rvm.tflite",
            (),
            CASE,
            (
                ("truncate", lambda c: truncate(c, c.root)),
                ("vector length", lambda c: fb_mutate(c, c.root, "length")),
                ("index", lambda c: fb_mutate(c, c.root, "index")),
                ("tensor shape", lambda c: fb_mutate(c, c.root, "shape")),
                ("operator options", lambda c: fb_mutate(c, c.root, "options")),
                ("header bytes", lambda c: flip_bytes(c, c.root, head=True)),
                ("metadata in place", lambda c: metadata_inplace(c, c.root)),
                ("enum", lambda c: fb_mutate(c, c.root, "enum")),
                ("bytes anywhere", lambda c: flip_bytes(c, c.root, head=False)),
                ("word forged", lambda c: forge_word(c, c.root, head=False)),
            ),
        ),
        Format(
            "ncnn",
            "ncnn",
            "rvm.ncnn.param",
            ("--downsample-ratio", "0.5"),
            CASE,
            (
                ("param number", lambda c: ncnn_number(c, c.root)),
                ("truncate .bin", lambda c: truncate(c, _ncnn_bin(c))),
                ("metadata line", lambda c: ncnn_metadata(c, c.root)),
                ("layer line", lambda c: ncnn_line(c, c.root)),
                ("truncate .param", lambda c: truncate(c, c.root)),
                (".param bytes", lambda c: flip_bytes(c, c.root, head=c.rng.random() < 0.5)),
                (".bin bytes", lambda c: flip_bytes(c, _ncnn_bin(c), head=False)),
                (".bin grown", lambda c: append_bytes(c, _ncnn_bin(c))),
                ("param number", lambda c: ncnn_number(c, c.root)),
                (".bin word forged", lambda c: forge_word(c, _ncnn_bin(c), head=c.rng.random() < 0.5)),
            ),
        ),
        Format(
            "mnn",
            "mnn",
            "rvm.mnn",
            (),
            CASE,
            (
                ("truncate", lambda c: truncate(c, c.root)),
                ("op field", lambda c: mnn_op_field(c, c.root)),
                ("metadata in place", lambda c: metadata_inplace(c, c.root)),
                ("word forged", lambda c: forge_word(c, c.root, head=True)),
                ("op field", lambda c: mnn_op_field(c, c.root)),
                ("header bytes", lambda c: flip_bytes(c, c.root, head=True)),
                ("bytes anywhere", lambda c: flip_bytes(c, c.root, head=False)),
                ("word forged", lambda c: forge_word(c, c.root, head=False)),
            ),
        ),
        Format(
            "executorch",
            "executorch",
            "rvm.pte",
            ("--resolution", "64", "48", "--downsample-ratio", "0.5"),
            FIXED_CASE,
            (
                ("truncate", lambda c: truncate(c, c.root)),
                ("flatbuffer word", _pte_word),
                ("header bytes", lambda c: flip_bytes(c, c.root, head=True)),
                ("metadata in place", lambda c: metadata_inplace(c, c.root)),
                ("flatbuffer bytes", lambda c: flip_bytes(c, c.root, False, _pte_regions(c)[0])),
                ("segment bytes", lambda c: flip_bytes(c, c.root, False, _pte_regions(c)[1])),
                ("flatbuffer word", _pte_word),
                ("word forged", lambda c: forge_word(c, c.root, head=False)),
                ("bytes anywhere", lambda c: flip_bytes(c, c.root, head=False)),
            ),
        ),
    ]
    return {f.name: f for f in table}


def mutate_metadata_file(ctx: Ctx, path: Path) -> str:
    text, desc = mutate_metadata_text(ctx, path.read_text(encoding="utf-8", errors="replace"))
    path.write_text(text, encoding="utf-8")
    return f"{ctx.rel(path)}: {desc}"


def _tf_data(ctx: Ctx) -> str:
    path = _tf_files(ctx)["data"]
    return truncate(ctx, path) if ctx.rng.random() < 0.4 else flip_bytes(ctx, path, head=False)


def _tail_flip(ctx: Ctx, path: Path, tail: int) -> str:
    size = path.stat().st_size
    return flip_bytes(ctx, path, head=False, window=(size - tail, size))


def _tfjs_json(ctx: Ctx, key: str, focus: Sequence[str]) -> str:
    path = ctx.root / "model.json"
    doc = json.loads(path.read_text())
    if key not in doc:
        raise Skip(f"model.json has no {key}")
    part = doc[key]
    if key == "userDefinedMetadata" and isinstance(part, dict) and "rvm_metadata.json" in part:
        text, desc = mutate_metadata_text(ctx, json.dumps(part["rvm_metadata.json"]))
        marker = "__RVM_PART__"
        part["rvm_metadata.json"] = marker
        path.write_text(json.dumps(doc).replace(json.dumps(marker), text))
        return f"model.json userDefinedMetadata: {desc}"
    text, desc = mutate_json_text(ctx, json.dumps(part), focus, key)
    marker = "__RVM_PART__"
    doc[key] = marker
    path.write_text(json.dumps(doc).replace(json.dumps(marker), text))
    return f"model.json {desc}"


def _tfjs_shard_edit(ctx: Ctx) -> str:
    shards = _tfjs_shards(ctx)
    if ctx.rng.random() < 0.5:
        return drop_file(ctx, shards)
    return append_bytes(ctx, ctx.rng.choice(shards))


@dataclass(frozen=True)
class Mutation:
    format: str
    index: int
    kind: str

    @property
    def id(self) -> str:
        return f"{self.format}:{self.index}"


def mutation(fmt: Format, index: int) -> Mutation:
    """Input ``index`` of ``fmt``: its kind cycles through the format's list, its random stream is its own."""
    return Mutation(fmt.name, index, fmt.kinds[index % len(fmt.kinds)][0])


def plan(fmt: Format, count: int, start: int = 0) -> List[Mutation]:
    """``count`` mutations of ``fmt`` from index ``start``."""
    return [mutation(fmt, i) for i in range(start, start + count)]


def apply_mutation(fmt: Format, mutation: Mutation, good: Path, folder: Path, seed: int) -> Tuple[Path, str]:
    """A mutated copy of ``good`` in ``folder`` (its companions copied too) and what was done to it.
    The mutation is tried with successive random streams until one applies (see :class:`Skip`)."""
    mutator = fmt.kinds[mutation.index % len(fmt.kinds)][1]
    for attempt in range(20):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        copy = folder / good.name
        if good.is_dir():
            shutil.copytree(good, copy)
        else:
            shutil.copy(good, copy)
            if good.with_suffix(".bin").is_file() and good.suffix in (".xml", ".param"):
                shutil.copy(good.with_suffix(".bin"), copy.with_suffix(".bin"))
        rng = random.Random(f"{seed}:{mutation.format}:{mutation.index}:{attempt}")
        try:
            return copy, f"{mutation.kind}: {mutator(Ctx(rng, copy))}"
        except Skip:
            continue
    raise RuntimeError(f"mutation {mutation.id} ({mutation.kind}) never applied to {good}")


# --- The worker: many inputs per process -------------------------------------------------------------------


def _mapped_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _limit_children() -> None:
    """Children get their own address-space limit, not the worker's: the TF.js runner's Node.js
    :data:`CHILD_MEMORY` (it reserves ~11.6 GB for WebAssembly), Playwright's driver and the Chromium it starts
    none (Chromium reserves terabytes of address space up front; a renderer out of memory ends its page)."""
    base = subprocess.Popen

    def limit_to(limit: int) -> Callable[[], None]:
        def apply() -> None:
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            resource.setrlimit(
                resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard)
            )

        return apply

    class LimitedPopen(base):  # type: ignore[misc, valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            if kwargs.get("preexec_fn") is None:
                words = [str(a) for a in args] if isinstance(args, (list, tuple)) else [str(args)]
                browser = any("playwright" in w or "chrom" in w.lower() for w in words)
                kwargs["preexec_fn"] = limit_to(resource.RLIM_INFINITY if browser else CHILD_MEMORY)
            super().__init__(args, *rest, **kwargs)

    subprocess.Popen = LimitedPopen  # type: ignore[misc]


def _run_one(main: Callable, request: dict) -> dict:
    """One ``rvm-verify`` run with stdout and stderr (Python's and native code's) sent to files."""
    import gc

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.close(out)
    os.close(err)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    peak_before = _peak_rss()
    caught: Optional[BaseException] = None
    code: Any = None
    started = time.monotonic()
    try:
        resource.setrlimit(resource.RLIMIT_AS, (_mapped_bytes() + int(request["memory"]), hard))
        try:
            main(request["args"], standalone_mode=False)
            code = 0
        except SystemExit as exc:
            code = exc.code
        except BaseException as exc:  # what escaped the command: a traceback for its user
            caught = exc
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
    result: Dict[str, Any] = {
        "id": request["id"],
        "seconds": round(time.monotonic() - started, 2),
        "peak_jump": max(0, _peak_rss() - peak_before),
    }
    if caught is not None:
        result.update(
            status="exception",
            type=type(caught).__name__,
            message=str(caught)[:2000],
            traceback="".join(traceback.format_exception(type(caught), caught, caught.__traceback__))[-6000:],
        )
    else:
        if code is None:
            code = 0
        result.update(status="exit", code=code if isinstance(code, int) else 1, raw_code=repr(code)[:200])
    del caught
    gc.collect()
    return result


def serve(reply_fd: int) -> None:
    """The worker loop: requests as JSON lines on stdin, one JSON reply line each on ``reply_fd``."""
    reply = os.fdopen(reply_fd, "w", buffering=1)
    _limit_children()
    from rvm_export.verify.cli import main

    reply.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        reply.write(json.dumps(_run_one(main, json.loads(line))) + "\n")


class Worker:
    """A ``serve`` subprocess in its own process group, restarted by its owner when it dies or hangs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = (folder / "worker.log").open("ab")
        read_fd, write_fd = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rvm_export.verify.fuzz", "--worker", str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=self.log,
            stderr=self.log,
            pass_fds=(write_fd,),
            start_new_session=True,
            cwd=folder,
        )
        os.close(write_fd)
        self.reply = read_fd
        self.buffer = b""
        self.requests = 0
        ready = self._line(STARTUP_TIMEOUT)
        if not ready or not ready.get("ready"):
            code = self.kill()
            raise RuntimeError(f"the fuzz worker did not start (exit {code}); see {folder / 'worker.log'}")

    def _line(self, timeout: float) -> Optional[dict]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"status": "timeout"}
            ready, _, _ = select.select([self.reply], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.reply, 65536)
            if not chunk:
                return None  # the worker is gone
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, request: dict, timeout: float) -> dict:
        self.requests += 1
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return {"status": "crash", "returncode": self.kill()}
        reply = self._line(timeout)
        if reply is None:
            return {"status": "crash", "returncode": self.kill()}
        if reply.get("status") == "timeout":
            self.kill()
            return {"status": "hang", "seconds": timeout}
        return reply

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> Optional[int]:
        """End the worker and whatever it started (its process group)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        os.close(self.reply)
        self.reply = -1
        self.log.close()
        return code

    def close(self) -> None:
        if self.reply < 0:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


# --- Outcomes -----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    mutation: Mutation
    description: str
    outcome: str  # one of CLEAN or FINDINGS
    detail: str  # the error line, the exception, the signal...
    seconds: float
    stderr: List[str] = field(default_factory=list)  # stderr lines besides the runtime's own logging
    log_lines: int = 0  # lines of the runtime's own logger (absl, ONNX Runtime...), as good artifacts print too
    kept: Optional[str] = None  # where the mutated artifact was kept (findings, with --keep)

    @property
    def finding(self) -> bool:
        return self.outcome in FINDINGS


def _signal_name(code: Optional[int]) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


def classify(reply: dict, stdout: str, stderr: str) -> Tuple[str, str, List[str]]:
    """(outcome, detail, extra stderr lines) of one reply and what the run printed."""
    lines = [line for line in ANSI.sub("", stderr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("rvm-verify: error:")]
    extra = [line for line in lines if not line.startswith("rvm-verify: error:") and not RUNTIME_LOG.match(line)]
    status = reply.get("status")
    if status == "hang":
        return "hang", f"no answer within {reply['seconds']:.0f} s", extra[-5:]
    if status == "crash":
        tail = [line for line in lines if not RUNTIME_LOG.match(line) or line[:1] == "F"][-3:]
        return (
            "crash",
            f"the process died ({_signal_name(reply.get('returncode'))}): {' | '.join(tail)[:600]}",
            extra[-5:],
        )
    if status == "exception":
        text = f"{reply['type']}: {reply['message'].splitlines()[0][:300] if reply['message'] else ''}"
        last = [ln for ln in reply["traceback"].splitlines() if ln.startswith('  File "')][-1:]
        where = last[0].strip() if last else ""
        kind = "huge allocation" if reply["type"] == "MemoryError" else "traceback"
        return kind, f"{text} ({where})", extra[-5:]
    code = reply.get("code")
    said = (
        " ".join(errors)
        + " "
        + " ".join(extra)
        + " "
        + "\n".join(ln for ln in stdout.splitlines() if "failed to run" in ln)
    )
    if MEMORY_TEXT.search(said) or reply.get("peak_jump", 0) > RSS_JUMP:
        jump = reply.get("peak_jump", 0) / GB
        return (
            "huge allocation",
            f"exit {code}, peak memory +{jump:.1f} GB: {(errors or extra or [said.strip()])[0][:300]}",
            extra[-5:],
        )
    if code == 2:
        if len(errors) == 1 and not extra:
            return "exit 2", errors[0], []
        return (
            "multi-line stderr",
            f"exit 2 with {len(errors)} error line(s) and {len(extra)} other line(s)",
            extra[-5:],
        )
    if code in (0, 1):
        if errors or extra:
            return (
                "multi-line stderr",
                f"exit {code} with {len(errors) + len(extra)} stderr line(s)",
                (errors + extra)[-5:],
            )
        if code == 0:
            return "passed unchanged", "verification passed", []
        verdict = next((ln.strip() for ln in stdout.splitlines() if ln.startswith("FAIL") or "failed to run" in ln), "")
        return "exit 1", verdict[:300], []
    return "bad exit code", f"exit {reply.get('raw_code', code)}", extra[-5:]


@dataclass
class Tally:
    tried: int = 0
    counts: Dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    logged: int = 0  # clean outcomes whose stderr also held lines of the runtime's own logger

    def add(self, outcome: Outcome) -> None:
        self.tried += 1
        self.logged += bool(outcome.log_lines) and not outcome.finding
        self.counts[outcome.outcome] = self.counts.get(outcome.outcome, 0) + 1
        self.seconds += outcome.seconds

    @property
    def findings(self) -> int:
        return sum(n for k, n in self.counts.items() if k in FINDINGS)

    def line(self, name: str) -> str:
        found = ", ".join(f"{self.counts[k]} {k}" for k in FINDINGS if self.counts.get(k))
        return (
            f"{name:<22}{self.tried:>5} tried{self.counts.get('exit 1', 0):>5} exit 1{self.counts.get('exit 2', 0):>5} exit 2"
            f"{self.counts.get('passed unchanged', 0):>5} passed unchanged{self.findings:>5} findings"
            f"{(' (' + found + ')') if found else ''}  [{self.seconds:.0f} s]"
            + (f"  ({self.logged} with runtime log lines)" if self.logged else "")
        )


@dataclass
class FuzzResult:
    outcomes: List[Outcome] = field(default_factory=list)
    tallies: Dict[str, Tally] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def findings(self) -> List[Outcome]:
        return [o for o in self.outcomes if o.finding]

    def summary(self) -> str:
        lines = ["format" + " " * 16 + "per-format outcomes of corrupted artifacts through rvm-verify"]
        lines += [tally.line(name) for name, tally in self.tallies.items()]
        total = Tally()
        for tally in self.tallies.values():
            total.tried += tally.tried
            total.seconds += tally.seconds
            total.logged += tally.logged
            for k, n in tally.counts.items():
                total.counts[k] = total.counts.get(k, 0) + n
        lines.append(total.line("total"))
        lines.append(f"wall time {self.seconds:.0f} s")
        for o in self.findings:
            lines.append(f"FINDING {o.mutation.id} [{o.outcome}] {o.description}")
            lines.append(f"    -> {o.detail}")
            lines += [f"    stderr: {line[:300]}" for line in o.stderr]
            if o.kept:
                lines.append(f"    kept: {o.kept}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "seconds": self.seconds,
            "tallies": {
                k: {"tried": t.tried, **t.counts, "runtime log": t.logged, "seconds": round(t.seconds, 1)}
                for k, t in self.tallies.items()
            },
            "outcomes": [
                {
                    "id": o.mutation.id,
                    "kind": o.mutation.kind,
                    "description": o.description,
                    "outcome": o.outcome,
                    "detail": o.detail,
                    "seconds": o.seconds,
                    "stderr": o.stderr,
                    "runtime_log_lines": o.log_lines,
                    "kept": o.kept,
                }
                for o in self.outcomes
            ],
        }


def fuzz(
    goods: Dict[str, Path],
    per_format: int,
    folder: Path,
    seed: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    memory: int = DEFAULT_MEMORY,
    keep: Optional[Path] = None,
    only: Sequence[Mutation] = (),
    start: int = 0,
    log: Callable[[str], None] = lambda line: None,
) -> FuzzResult:
    """Mutate each good artifact ``per_format`` times (format name -> artifact path) and run every mutated
    copy through rvm-verify in a worker; ``only``: exactly these mutations instead."""
    table = formats()
    unknown = sorted(set(goods) - set(table))
    if unknown:
        raise ValueError(f"unknown formats {unknown}; choose from {', '.join(table)}")
    work = folder / "inputs"
    work.mkdir(parents=True, exist_ok=True)
    jobs = list(only) or [m for name in goods for m in plan(table[name], per_format, start)]
    result = FuzzResult(tallies={name: Tally() for name in dict.fromkeys(m.format for m in jobs)})
    began = time.monotonic()
    worker: Optional[Worker] = None
    try:
        for n, mutation in enumerate(jobs):
            fmt = table[mutation.format]
            slot = work / mutation.format / str(mutation.index)
            artifact, description = apply_mutation(fmt, mutation, goods[mutation.format], slot, seed)
            if worker is None or not worker.alive():
                worker = Worker(folder)
            request = {
                "id": n,
                "args": [str(artifact), *fmt.case],
                "stdout": str(slot / "stdout.txt"),
                "stderr": str(slot / "stderr.txt"),
                "memory": memory,
            }
            started = time.monotonic()
            reply = worker.run(request, timeout)
            if reply.get("status") in ("crash", "hang"):
                worker = None  # killed: the next input starts a fresh one
            stdout = _read(slot / "stdout.txt")
            stderr = _read(slot / "stderr.txt")
            outcome, detail, extra = classify(reply, stdout, stderr)
            record = Outcome(mutation, description, outcome, detail, round(time.monotonic() - started, 2), extra)
            record.log_lines = sum(1 for line in ANSI.sub("", stderr).splitlines() if RUNTIME_LOG.match(line))
            if record.finding and keep is not None:
                target = keep / mutation.format / str(mutation.index)
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(slot, target)
                record.kept = str(target)
            shutil.rmtree(slot, ignore_errors=True)
            result.outcomes.append(record)
            result.tallies[mutation.format].add(record)
            log(f"{mutation.id:<26} {outcome:<18} {record.seconds:6.1f} s  {description[:110]}")
            if record.finding:
                log(f"{'':<26} -> {detail[:400]}")
    finally:
        if worker is not None:
            worker.close()
        result.seconds = time.monotonic() - began
    return result


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


# --- Good artifacts and the command line ---------------------------------------------------------------------


def export_goods(
    folder: Path, names: Sequence[str], seed: int = 0, log: Callable[[str], None] = print
) -> Dict[str, Path]:
    """Seeded random artifacts (``rvm-export TARGET --seed SEED``) of each format, exported once into ``folder``."""
    table = formats()
    goods: Dict[str, Path] = {}
    made: Dict[Tuple, Path] = {}  # (target, options) -> the artifact: tfjs-browser reads the tfjs one
    for name in names:
        fmt = table[name]
        key = (fmt.target, fmt.artifact, fmt.export_args)
        if key in made:
            goods[name] = made[key]
            continue
        out = folder / name / fmt.artifact
        if not out.exists():
            started = time.monotonic()
            command = [sys.executable, "-c", "from rvm_export.export.cli import main; main()"]
            command += [fmt.target, "--seed", str(seed), *fmt.export_args, "--output", str(out)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"rvm-export {fmt.target} failed: {done.stderr.strip()[-2000:]}")
            log(f"exported {name} in {time.monotonic() - started:.0f} s: {out}")
        goods[name] = made[key] = out
    return goods


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rvm_export.verify.fuzz",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--per-format", type=int, default=30, help="mutated inputs per format (default 30)")
    parser.add_argument("--formats", default=",".join(formats()), help="comma-separated formats (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="mutation seed (the artifacts are exported with seed 0)")
    parser.add_argument("--start", type=int, default=0, help="first mutation index (continue an earlier run)")
    parser.add_argument(
        "--only", action="append", default=[], metavar="FORMAT:INDEX", help="run just this input; repeatable"
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per input before it is a hang")
    parser.add_argument("--memory-gb", type=float, default=DEFAULT_MEMORY / GB, help="address space per input (GB)")
    parser.add_argument(
        "--artifacts", type=Path, default=None, help="folder for the good artifacts (kept; default: temporary)"
    )
    parser.add_argument("--keep", type=Path, default=None, help="copy the inputs of findings here")
    parser.add_argument("--json", type=Path, default=None, help="write every outcome here")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        serve(args.worker)
        return 0
    table = formats()
    names = [n.strip() for n in args.formats.split(",") if n.strip()]
    only = []
    for item in args.only:
        name, _, index = item.partition(":")
        if name not in table or not index.isdigit():
            parser.error(f"--only {item!r}: expected FORMAT:INDEX with FORMAT one of {', '.join(table)}")
        only.append(mutation(table[name], int(index)))
    if only:
        names = list(dict.fromkeys(m.format for m in only))
    bad = [n for n in names if n not in table]
    if bad or args.per_format < 1:
        parser.error(f"unknown formats {bad}; choose from {', '.join(table)}" if bad else "--per-format must be >= 1")
    with tempfile.TemporaryDirectory(prefix="rvm-fuzz-") as scratch:
        artifacts = args.artifacts or Path(scratch) / "good"
        goods = export_goods(artifacts, names, 0)
        result = fuzz(
            goods,
            args.per_format,
            Path(scratch),
            args.seed,
            args.timeout,
            int(args.memory_gb * GB),
            args.keep,
            only,
            args.start,
            log=lambda line: print(line, flush=True),
        )
    print(result.summary())
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=1))
    return 1 if result.findings else 0


if __name__ == "__main__":
    sys.exit(main())
