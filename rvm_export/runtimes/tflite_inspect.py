"""LiteRT (``.tflite``): every refusal rule of the format, in one place. :func:`inspect` runs them all before the
runtime starts; the runner (``litert.py``) runs :func:`check_flatbuffer` again as it opens the file.

Read through the generated reader of LiteRT's schema (``ai_edge_litert.schema_py_generated``, plain Python over
:mod:`flatbuffers`; only the identifier is checked where it is not installed). Refused: a file without ``TFL3``,
CUSTOM and Flex op codes, external buffers, a buffer outside the file (checked without LiteRT's overflow), and
what LiteRT does not check and dies on (:func:`check_flatbuffer`). Why: docs/security.md.
"""

from pathlib import Path
from typing import Any, List, Optional, Tuple

from rvm_export.contract.errors import RunnerError

from .inspection_readers import MAX_BINARY_BYTES, read_limited, refuse, regular_file, show


def _tflite_schema() -> Any:
    """The LiteRT flatbuffer schema's generated Python reader, or None where neither package provides it."""
    for module in ("ai_edge_litert.schema_py_generated", "tensorflow.lite.python.schema_py_generated"):
        try:
            return __import__(module, fromlist=["Model"])
        except ImportError:
            continue
    return None


def _tflite_ops(buffer: bytes, schema: Any) -> List[Tuple[str, Optional[str]]]:
    """(builtin op name, custom code or None) of every operator code of a flatbuffer, and ("<external
    buffers>", group name) for each external buffer group (weights in files beside the model)."""
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(buffer, 0)
    codes: List[Tuple[str, Optional[str]]] = []
    for i in range(model.ExternalBufferGroupsLength() if hasattr(model, "ExternalBufferGroupsLength") else 0):
        group = model.ExternalBufferGroups(i).Name()
        codes.append(("<external buffers>", group.decode("utf-8", "replace") if group else ""))
    if hasattr(model, "ExternalBuffersLength") and model.ExternalBuffersLength():
        codes.append(("<external buffers>", f"{model.ExternalBuffersLength()} external buffers"))
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        codes.append(
            (names.get(builtin, f"<builtin {builtin}>"), custom.decode("utf-8", "replace") if custom else None)
        )
    return codes


def _tflite_buffer_problem(buffer: bytes, schema: Any) -> Optional[str]:
    """The first buffer whose data lies outside the file, or None. A buffer's ``offset``/``size`` (uint64, for
    models over 2 GB: "offset > 1" means its bytes are at that offset of the file, tflite/schema/schema.fbs) are
    added here in Python's integers, so an offset of 2**64 - n with a size of n, which wraps LiteRT's own
    unsigned check to 0, is caught."""
    model = schema.Model.GetRootAs(buffer, 0)
    for i in range(model.BuffersLength()):
        entry = model.Buffers(i)
        offset, size = entry.Offset(), entry.Size()
        if (offset > 1 or size) and offset + size > len(buffer):
            return f"buffer {i} places {size} bytes at offset {offset}, outside the file's {len(buffer)} bytes"
    return None


def inspect(path: Path) -> None:
    regular_file(path, path)
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise refuse(path, f"it is not a LiteRT flatbuffer (identifier {head[4:8]!r}, expected b'TFL3')")
    schema = _tflite_schema()
    if schema is None:  # nothing to read the op codes with: the identifier is all that is checked
        return
    try:
        data = read_limited(path, path, MAX_BINARY_BYTES)
        codes = _tflite_ops(data, schema)
        problem = _tflite_buffer_problem(data, schema)
    except RunnerError:
        raise
    except Exception as exc:  # a damaged flatbuffer: struct.error, IndexError...
        raise refuse(path, f"its flatbuffer is not readable ({exc.__class__.__name__})")
    if problem:
        raise refuse(path, problem)
    for name, custom in codes:
        if name == "<external buffers>":
            raise refuse(path, f"its weights are in external buffer group {show(custom)}, a file outside the "
                          "flatbuffer; an RVM model keeps them inside")  # fmt: skip
        if name == "CUSTOM" or custom is not None:
            raise refuse(path, f"custom op {show(custom)} needs code LiteRT would have to load (a custom op "
                          "resolver or the Flex delegate)")  # fmt: skip
    check_flatbuffer(path, data)


# What LiteRT itself does not check and dies on (found by fuzzing), checked again by the runner as it opens the
# file.
MAX_TENSOR_BYTES = 1 << 30  # a tensor at the declared shape; RVM's largest is 0.9 MB, a 4K frame's ~0.5 GB
# Bytes per element of the tensor types (schema.fbs TensorType names); a type outside it counts 8.
TENSOR_BYTES = {"FLOAT32": 4, "FLOAT16": 2, "INT32": 4, "UINT8": 1, "INT64": 8, "BOOL": 1, "INT16": 2, "INT8": 1,
                "FLOAT64": 8}  # fmt: skip


def check_flatbuffer(path: Path, data: Optional[bytes] = None) -> None:
    """Refuse what LiteRT itself does not check and dies on (SIGSEGV, ai-edge-litert 2.3; found by fuzzing):

    - a SPLIT or SPLIT_V whose ``num_splits`` is not its number of outputs, or whose options are missing
      (read as 0): the kernel writes ``num_splits`` outputs without checking;
    - a tensor that an operator writes, or the caller feeds (a subgraph input), but whose buffer holds
      constant data: LiteRT then points it at the model's read-only mapping and writes there;
    - a tensor whose declared shape needs more than :data:`MAX_TENSOR_BYTES`: LiteRT allocates every tensor
      at its declared shape before the signature runner resizes the inputs (a forged dimension of 2**20 made
      it allocate 4 GB for one tensor).

    Indices out of range are left to LiteRT, which refuses them with its own error. ``data``: the file's bytes,
    when already read. Without LiteRT's schema reader nothing is checked here (the runner needs it anyway)."""
    schema = _tflite_schema()
    if schema is None:
        return
    data = Path(path).read_bytes() if data is None else data
    sizes = {getattr(schema.TensorType, name): size for name, size in TENSOR_BYTES.items()}
    try:
        model = schema.Model.GetRootAs(data, 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            codes.append(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        splits = {
            schema.BuiltinOperator.SPLIT: (schema.BuiltinOptions.SplitOptions, schema.SplitOptions),
            schema.BuiltinOperator.SPLIT_V: (schema.BuiltinOptions.SplitVOptions, schema.SplitVOptions),
        }
        buffers = model.BuffersLength()

        def constant(buffer: int) -> bool:
            if not 0 <= buffer < buffers:
                return False
            held = model.Buffers(buffer)
            return held.DataLength() > 0 or held.Offset() > 1  # offset > 1: data beyond the flatbuffer

        def refuse_constant(graph: Any, g: int, index: int, role: str) -> None:
            if 0 <= index < graph.TensorsLength() and constant(graph.Tensors(index).Buffer()):
                name = (graph.Tensors(index).Name() or b"").decode("utf-8", "replace")[:60]
                raise RunnerError(
                    f"{path} is not loadable by LiteRT: tensor {index} ({name!r}) of subgraph {g} is {role} "
                    "but holds constant data (LiteRT would write into the model file's mapping)"
                )

        for g in range(model.SubgraphsLength()):
            graph = model.Subgraphs(g)
            for t in range(graph.TensorsLength()):
                tensor = graph.Tensors(t)
                count = 1
                for dim in tensor.ShapeAsNumpy().tolist() if tensor.ShapeLength() else []:
                    count *= max(int(dim), 0)  # a negative dimension is LiteRT's own (checked) error
                size = count * sizes.get(tensor.Type(), 8)
                if size > MAX_TENSOR_BYTES:
                    name = (tensor.Name() or b"").decode("utf-8", "replace")[:60]
                    raise RunnerError(
                        f"{path} is not loadable by LiteRT: tensor {t} ({name!r}) of subgraph {g} declares "
                        f"{size / 2**30:.1f} GiB, beyond {MAX_TENSOR_BYTES >> 30} GiB"
                    )
            for i in range(graph.InputsLength()):
                refuse_constant(graph, g, int(graph.Inputs(i)), "a subgraph input")
            for n in range(graph.OperatorsLength()):
                op = graph.Operators(n)
                for i in range(op.OutputsLength()):
                    refuse_constant(graph, g, int(op.Outputs(i)), f"written by operator {n}")
                index = op.OpcodeIndex()
                if index >= len(codes) or codes[index] not in splits:
                    continue
                kind, options_class = splits[codes[index]]
                table = op.BuiltinOptions() if op.BuiltinOptionsType() == kind else None
                count = 0
                if table is not None:
                    options = options_class()
                    options.Init(table.Bytes, table.Pos)
                    count = options.NumSplits()
                if count < 1 or count != op.OutputsLength():
                    raise RunnerError(
                        f"{path} is not loadable by LiteRT: operator {n} of subgraph {g} splits into {count} "
                        f"tensors but has {op.OutputsLength()} outputs (LiteRT would crash running it)"
                    )
    except RunnerError:
        raise
    except Exception as exc:  # offsets out of the buffer: flatbuffers raises what it meets
        from .base import load_error

        raise load_error(path, "a readable .tflite flatbuffer", exc)
