"""Zip mutations (TorchScript, torch.export): member bytes with their CRCs fixed, forged sizes and counts of the
zip records, members edited or dropped, pickle integers, JSON members; and the two formats' tables."""

import io
import random
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

from tests.fuzz.json_mutations import METADATA_FOCUS, metadata_inplace, mutate_json_text, mutate_metadata_text
from tests.fuzz.mutations import CASE, Ctx, Format, Mutator, Skip, flip_bytes, forge_word, shown_offsets, truncate

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
    return f"changed {count} byte(s) of member {entry.name} at {shown_offsets(offsets)} ({crc})"


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


COMMON: Tuple[Tuple[str, Mutator], ...] = (
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
PT2 = (
    ("truncate", COMMON[0][1]),
    ("program JSON", lambda c: zip_json_member(c, c.root, r"models/.*\.json$", PT2_FOCUS)),
    ("zip record forged", COMMON[2][1]),
    ("zip member edited", lambda c: zip_edit_member(c, c.root, TORCH_MEMBERS + (r"models/",))),
    ("zip member bytes", lambda c: zip_member_bytes(c, c.root, TORCH_MEMBERS + (r"models/", r"sample_inputs"))),
    ("metadata JSON", COMMON[4][1]),
    ("header bytes", COMMON[5][1]),
    ("word forged", COMMON[9][1]),
    ("bytes anywhere", COMMON[7][1]),
    ("metadata in place", COMMON[8][1]),
)
FORMATS = (
    Format("torchscript", "torchscript", "rvm.torchscript", (), CASE, COMMON),
    Format("pt2", "pt2", "rvm.pt2", (), CASE, PT2),
)
