"""An ExecuTorch program (``.pte``) read as data: its header, methods, operators, delegates and input shapes.

A ``.pte`` file is a flatbuffer (schema ``executorch/schema/program.fbs``, file identifier ``ET12``) followed by
segments (constant data, delegate payloads, named data) that an extended header (``eh00``, right after the
identifier) places. This module walks the flatbuffer with the bounds-checked table reader of the inspection's shared readers
(:class:`~rvm_export.runtimes.inspection_readers.FlatbufferReader`), slot by slot as the schema numbers its fields, so it needs neither ExecuTorch nor its generated reader, and nothing of the file
runs. Every vector length is checked against the buffer before it is iterated; damaged bytes raise
:class:`PteError`.

Read here: the method names (ours: ``forward``, and the constant method ``rvm_metadata`` that returns the metadata
document as a string), each method's operators (``name.overload``) and backend delegates (their ids), and the
shapes and dtypes of ``forward``'s input and output tensors.
"""

import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from rvm_export.contract.metadata import METADATA_METHOD  # the constant method returning the metadata (a String)

from .inspection_readers import FlatbufferError, FlatbufferReader

IDENTIFIER = b"ET12"
HEADER_MAGIC = b"eh00"

# KernelTypes union tags (program.fbs): 0 is NONE.
_TENSOR, _STRING = 5, 6
# List kinds -> (the kinds their items may refer to, the items' format): IntList, TensorList, OptionalTensorList.
_LISTS = {7: ({2}, "q"), 10: ({5}, "i"), 11: ({5, 1}, "i")}
# InstructionArguments union tags.
_KERNEL_CALL, _DELEGATE_CALL = 1, 2
# ScalarType (scalar_type.fbs) -> numpy-style names, for the ones an RVM program uses.
SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64",
                11: "bool", 15: "bfloat16"}  # fmt: skip


class PteError(ValueError):
    """The bytes are not a readable ExecuTorch program (one line)."""


@dataclass
class Method:
    name: str
    operators: List[str] = field(default_factory=list)  # "aten::add.out" style: name + "." + overload
    delegates: List[str] = field(default_factory=list)  # backend ids, e.g. "XnnpackBackend"
    inputs: List[Optional[Tuple[str, Tuple[int, ...]]]] = field(default_factory=list)  # (dtype, sizes) per tensor
    outputs: List[Optional[Tuple[str, Tuple[int, ...]]]] = field(default_factory=list)
    strings: List[str] = field(default_factory=list)  # String values of its outputs (constant methods)
    calls: List[Tuple[str, Tuple[int, ...]]] = field(default_factory=list)  # (operator or delegate, arg tags)


@dataclass
class PteProgram:
    methods: Dict[str, Method]
    header: Dict[str, int]  # program_size, segment_base_offset, segment_data_size (0 when absent)
    segments: List[Tuple[int, int]]  # (offset, size) of each segment, relative to segment_base_offset

    def metadata_text(self) -> Optional[str]:
        method = self.methods.get(METADATA_METHOD)
        return method.strings[0] if method is not None and len(method.strings) == 1 else None


def _header(buf: bytes) -> Dict[str, int]:
    """The extended header after the identifier: magic, its length, then little-endian uint64 fields."""
    if buf[8:12] != HEADER_MAGIC:
        return {"program_size": len(buf), "segment_base_offset": 0, "segment_data_size": 0}
    length = struct.unpack_from("<I", buf, 12)[0] if len(buf) >= 16 else 0
    if length < 24 or len(buf) < 8 + length:
        raise PteError(f"its extended header is {length} bytes long, too short or past the end of the file")
    program_size, base = struct.unpack_from("<QQ", buf, 16)
    data_size = struct.unpack_from("<Q", buf, 32)[0] if length >= 32 else 0
    if program_size > len(buf) or base > len(buf) or (base and base < program_size):
        raise PteError(f"its header places the program ({program_size} bytes) or the segments (at {base}) "
                       f"outside the {len(buf)}-byte file")  # fmt: skip
    return {"program_size": program_size, "segment_base_offset": base, "segment_data_size": data_size}


def _value(r: FlatbufferReader, values: List[int], index: int) -> Tuple[int, int]:
    """(union tag, table) of EValue ``index`` of a method."""
    if not 0 <= index < len(values):
        raise PteError(f"a method refers to value {index}, but it has {len(values)}")
    evalue = values[index]
    at = r.field(evalue, 0)
    tag = r.scalar("B", at) if at else 0
    return tag, r.table(evalue, 1) if tag else 0


def _tensor(r: FlatbufferReader, table: int) -> Tuple[str, Tuple[int, ...]]:
    at = r.field(table, 0)
    code = r.scalar("b", at) if at else 0
    return SCALAR_TYPES.get(code, f"scalar type {code}"), tuple(r.scalars(table, 2, "i"))


def _check_lists(r: FlatbufferReader, values: List[int]) -> None:
    """IntList, TensorList and OptionalTensorList items are indices of other values, which the runtime reads with
    ``toInt()`` / ``toTensor()`` and aborts the process on another kind (found by fuzzing): checked here."""
    tags = [_value(r, values, i)[0] for i in range(len(values))]
    for i, tag in enumerate(tags):
        if tag not in _LISTS:
            continue
        allowed, fmt = _LISTS[tag]
        for item in r.scalars(_value(r, values, i)[1], 0, fmt):
            if not 0 <= item < len(values) or tags[item] not in allowed:
                raise PteError(f"list value {i} refers to value {item}, which is not of the kind the list holds")


def _method(r: FlatbufferReader, plan: int) -> Method:
    method = Method(r.string(plan, 0))
    values = r.tables(plan, 2)
    _check_lists(r, values)
    for slot, into in ((3, method.inputs), (4, method.outputs)):
        for index in r.scalars(plan, slot, "i"):
            tag, table = _value(r, values, index)
            into.append(_tensor(r, table) if tag == _TENSOR else None)
            if slot == 4 and tag == _STRING:
                method.strings.append(r.string(table, 0))
    method.operators = [f"{r.string(op, 0)}.{r.string(op, 1)}" for op in r.tables(plan, 6)]
    method.delegates = [r.string(d, 0) for d in r.tables(plan, 7)]
    for chain in r.tables(plan, 5):  # Chain.instructions (slot 2): Instruction.instr_args, a union (slots 0, 1)
        for instruction in r.tables(chain, 2):
            at = r.field(instruction, 0)
            kind = r.scalar("B", at) if at else 0
            if kind not in (_KERNEL_CALL, _DELEGATE_CALL):
                continue
            call = r.table(instruction, 1)
            at = r.field(call, 0)
            index = r.scalar("i", at) if at else 0
            callees = method.operators if kind == _KERNEL_CALL else method.delegates
            if not 0 <= index < len(callees):
                raise PteError(f"an instruction calls {'operator' if kind == _KERNEL_CALL else 'delegate'} {index}, "
                               f"but the method has {len(callees)}")  # fmt: skip
            tags = tuple(_value(r, values, i)[0] for i in r.scalars(call, 1, "i"))
            method.calls.append((callees[index], tags))
    return method


def read_pte(buf: bytes) -> PteProgram:
    """Parse ``buf`` (a whole ``.pte`` file) as data; :class:`PteError` when it is not a readable program."""
    if len(buf) < 8 or buf[4:8] != IDENTIFIER:
        raise PteError(f"it is not an ExecuTorch program (identifier {bytes(buf[4:8])!r}, expected {IDENTIFIER!r})")
    try:
        header = _header(buf)
        r = FlatbufferReader(bytes(buf[: header["program_size"]]))
        root = r.u32(0)
        methods: Dict[str, Method] = {}
        for plan in r.tables(root, 1):
            method = _method(r, plan)
            if method.name in methods:
                raise PteError(f"it declares method {method.name!r} twice")
            methods[method.name] = method
        segments = _segments(r, root)
    except PteError:
        raise
    except FlatbufferError as exc:
        raise PteError(str(exc))
    except (struct.error, IndexError, OverflowError, RecursionError) as exc:
        raise PteError(f"its flatbuffer is not readable ({exc.__class__.__name__})")
    return PteProgram(methods, header, segments)


def _segments(r: FlatbufferReader, root: int) -> List[Tuple[int, int]]:
    """(offset, size) of each DataSegment of Program.segments (slot 4: offset is slot 0, size slot 1)."""
    out = []
    for table in r.tables(root, 4):
        offset_at, size_at = r.field(table, 0), r.field(table, 1)
        out.append((r.scalar("Q", offset_at) if offset_at else 0, r.scalar("Q", size_at) if size_at else 0))
    return out


__all__ = ["IDENTIFIER", "Method", "PteError", "PteProgram", "read_pte"]
