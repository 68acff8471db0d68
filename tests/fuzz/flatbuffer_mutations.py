"""Flatbuffer mutations: LiteRT's vector lengths, indices, shapes, options and enums through its schema; MNN's op
types and tensor indices and ExecuTorch's words, through the inspection's bounds-checked reader; and the three
formats' tables."""

import struct
from pathlib import Path
from typing import Any, Optional, Tuple

from rvm_export.runtimes.inspection_readers import FlatbufferReader
from tests.fuzz.json_mutations import metadata_inplace
from tests.fuzz.mutations import CASE, FIXED_CASE, HUGE_32, Ctx, Format, Skip, flip_bytes, forge_word, truncate

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
    data = bytearray(path.read_bytes())
    reader = FlatbufferReader(bytes(data))
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


FORMATS = (
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
)
