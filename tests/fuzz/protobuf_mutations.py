"""Protobuf mutations, on the wire (ONNX, saved_model.pb, CoreML's spec): fields re-encoded along a random path with
forged varints, lengths and repeated counts; ONNX edits through its own library; the CoreML weight blob's
records; and the tables of ONNX, the SavedModel and CoreML's two formats."""

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from tests.fuzz.json_mutations import (
    METADATA_MARK,
    metadata_inplace,
    mutate_json_file,
    mutate_metadata_file,
    mutate_metadata_text,
)
from tests.fuzz.mutations import (
    CASE,
    FIXED_CASE,
    HUGE_64,
    Ctx,
    Format,
    Skip,
    drop_file,
    flip_bytes,
    forge_word,
    truncate,
    weighted,
)

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
    return weighted(ctx, [(4, f["pb"]), (2, f["index"]), (2, f["data"]), (1, f["fingerprint"]), (1, f["asset"])])


def _mlpackage(ctx: Ctx) -> Dict[str, Path]:
    data = ctx.root / "Data" / "com.apple.CoreML"
    return {
        "spec": data / "model.mlmodel",
        "weights": data / "weights" / "weight.bin",
        "manifest": ctx.root / "Manifest.json",
    }


MANIFEST_FOCUS = ("shape", "dtype", "paths", "name", "weights", "quantization", "scale", "min", "original_dtype")
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


def _tf_data(ctx: Ctx) -> str:
    path = _tf_files(ctx)["data"]
    return truncate(ctx, path) if ctx.rng.random() < 0.4 else flip_bytes(ctx, path, head=False)


def _tail_flip(ctx: Ctx, path: Path, tail: int) -> str:
    size = path.stat().st_size
    return flip_bytes(ctx, path, head=False, window=(size - tail, size))


COREML_ARGS = ("--resolution", "64", "48", "--downsample-ratio", "0.5")

FORMATS = (
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
    Format(
        "coreml-mlprogram",
        "coreml",
        "rvm.mlpackage",
        COREML_ARGS + ("--format", "mlprogram"),
        FIXED_CASE,
        (
            ("model.mlmodel field", lambda c: pb_mutate(c, _mlpackage(c)["spec"])),
            ("weight.bin record", lambda c: blob_forge(c, _mlpackage(c)["weights"])),
            ("Manifest.json", lambda c: mutate_json_file(c, _mlpackage(c)["manifest"], MANIFEST_FOCUS)),
            ("truncate", lambda c: truncate(c, weighted(c, [(1, p) for p in _mlpackage(c).values()]))),
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
        COREML_ARGS + ("--format", "neuralnetwork"),
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
)
