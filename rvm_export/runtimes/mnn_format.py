"""An MNN model (``.mnn``) read as data: its ``bizCode``, tensor names, ops (type, inputs, outputs) and subgraphs.

A ``.mnn`` file is one flatbuffer (MNN's ``schema/default/MNN.fbs``, root ``Net``, no file identifier). This module
walks it with the bounds-checked table reader of :mod:`rvm_export.runtimes.inspection_readers`, slot by slot as the schema
numbers the fields, so it needs neither MNN nor a generated reader and nothing of the file runs. Damaged bytes raise
:class:`MnnError`.

Slots read (MNN.fbs, MNN 3.6): ``Net``: 0 ``bizCode``, 3 ``oplists``, 4 ``outputName``,
7 ``tensorName``, 10 ``subgraphs``; ``Op``: 0 ``inputIndexes``, 1 the ``main`` union's type, 3 ``name``,
4 ``outputIndexes``, 5 ``type``; ``SubGraphProto``: 0 ``name``, 1 ``inputs``, 2 ``outputs``, 3 ``tensors``,
4 ``nodes``.
"""

import struct
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from .inspection_readers import FlatbufferError, FlatbufferReader

MAX_ITEMS = 1 << 20  # more ops, tensors or subgraphs than any RVM model has

# OpType values (MNN.fbs; the enum only grows, so the numbers hold across versions) -> names: those an MNN 3.6.1
# conversion of our ONNX writes (read from one: rvm_export/runtimes/mnn_inspect.py allows exactly these), and the two
# that make MNN run code that is not its own ops.
OP_TYPES: Dict[int, str] = {
    7: "BinaryOp", 10: "Concat", 11: "Const", 12: "Convolution", 13: "ConvolutionDepthwise", 31: "GatherV2",
    34: "Input", 35: "Interp", 39: "MatMul", 45: "Padding", 47: "Pooling", 66: "Rank", 68: "Reduction",
    70: "ReLU6", 73: "Reshape", 80: "Shape", 83: "Slice", 90: "Squeeze", 91: "StridedSlice", 101: "UnaryOp",
    107: "Unsqueeze", 112: "Pooling3D", 120: "BroadcastTo", 129: "ConvertTensor", 257: "Select", 601: "If",
    256: "Plugin", 512: "Extra",
}  # fmt: skip


class MnnError(ValueError):
    """The bytes are not a readable MNN model (one line)."""


@dataclass
class Op:
    type: int
    name: str
    param: int  # the OpParameter union's type tag (0: none)
    inputs: List[int]
    outputs: List[int]

    @property
    def type_name(self) -> str:
        return OP_TYPES.get(self.type, f"OpType {self.type}")


@dataclass
class Graph:
    name: str
    tensors: List[str]
    ops: List[Op]
    inputs: List[int] = field(default_factory=list)
    outputs: List[int] = field(default_factory=list)


@dataclass
class MnnNet:
    biz_code: str
    main: Graph
    subgraphs: List[Graph]
    output_names: List[str]


def _count(n: int, what: str) -> int:
    if n > MAX_ITEMS:
        raise MnnError(f"it declares {n} {what}, more than any RVM model has")
    return n


def _strings(r: FlatbufferReader, table: int, slot: int, what: str) -> List[str]:
    tables = r.tables(table, slot)
    _count(len(tables), what)
    out = []
    for at in tables:
        length = r.u32(at)
        if at + 4 + length > len(r.buf):
            raise MnnError(f"a {what[:-1]} runs past the end of the file")
        out.append(r.buf[at + 4 : at + 4 + length].decode("utf-8", "replace"))
    return out


def _ops(r: FlatbufferReader, table: int, slot: int) -> List[Op]:
    ops = []
    tables = r.tables(table, slot)
    _count(len(tables), "ops")
    for at in tables:
        kind = r.field(at, 5)
        tag = r.field(at, 1)
        ops.append(
            Op(
                type=r.scalar("i", kind) if kind else 0,  # OpType's default is AbsVal (0)
                name=r.string(at, 3),
                param=r.scalar("B", tag) if tag else 0,
                inputs=r.scalars(at, 0, "i"),
                outputs=r.scalars(at, 4, "i"),
            )
        )
    return ops


def read_mnn(buf: bytes) -> MnnNet:
    """The ``Net`` of a ``.mnn`` file's bytes."""
    if len(buf) < 8:
        raise MnnError(f"it is {len(buf)} bytes long, too short for an MNN model")
    try:
        r = FlatbufferReader(buf)
        root = r.u32(0)
        main = Graph("", _strings(r, root, 7, "tensor names"), _ops(r, root, 3))
        subgraphs = []
        tables = r.tables(root, 10)
        _count(len(tables), "subgraphs")
        for at in tables:
            subgraphs.append(
                Graph(
                    r.string(at, 0),
                    _strings(r, at, 3, "tensor names"),
                    _ops(r, at, 4),
                    r.scalars(at, 1, "i"),
                    r.scalars(at, 2, "i"),
                )
            )
        return MnnNet(r.string(root, 0), main, subgraphs, _strings(r, root, 4, "output names"))
    except FlatbufferError as exc:
        raise MnnError(str(exc))
    except (IndexError, OverflowError, ValueError, struct.error) as exc:
        raise MnnError(f"its flatbuffer is not readable ({exc.__class__.__name__})")


def op_counts(net: MnnNet) -> List[Tuple[str, int]]:
    counts: Dict[str, int] = {}
    for graph in [net.main, *net.subgraphs]:
        for op in graph.ops:
            counts[op.type_name] = counts.get(op.type_name, 0) + 1
    return sorted(counts.items())


__all__ = ["MnnError", "MnnNet", "OP_TYPES", "read_mnn"]
