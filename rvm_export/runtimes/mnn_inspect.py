"""Inspection of an MNN model (``.mnn``) before MNN loads it: the ``Net`` flatbuffer read by ``mnn_format.py`` (no MNN
code); only the op types MNN's converter writes for our ONNX export, tensor indices inside their graph's table,
the contract's tensor names.
"""

from pathlib import Path

from .inspection_readers import MAX_BINARY_BYTES, read_limited, refuse, regular_file, show

# The op types (MNN.fbs OpType values) that MNN 3.6.1's converter writes for our ONNX export, read from one
# conversion (rvm_export/runtimes/mnn_format.py names them). Plugin (256) and Extra (512) are outside it: they run
# ops that the app registers code for; While (600) too (our graph's only control flow is the refiner's If).
MNN_OPS = frozenset({7, 10, 11, 12, 13, 31, 34, 35, 39, 45, 47, 66, 68, 70, 73, 80, 83, 90, 91, 101, 107, 112, 120,
                     129, 257, 601})  # fmt: skip
MNN_GRAPHS = 4  # the main graph and the If's two branches, with room for a converter that splits one more


def inspect(path: Path) -> None:
    from rvm_export.contract import INPUT_NAMES, OUTPUT_NAMES

    from .mnn_format import OP_TYPES, MnnError, read_mnn

    regular_file(path, path)
    try:
        net = read_mnn(read_limited(path, path, MAX_BINARY_BYTES))
    except MnnError as exc:
        raise refuse(path, f"it is not an MNN model read as rvm-export writes it ({exc})")
    if len(net.subgraphs) + 1 > MNN_GRAPHS:
        raise refuse(path, f"it has {len(net.subgraphs)} subgraphs; an RVM model has two (the refiner's If)")
    for graph in [net.main, *net.subgraphs]:
        where = f"subgraph {show(graph.name)}" if graph.name else "the main graph"
        for op in graph.ops:
            if op.type in (256, 512):
                raise refuse(path, f"op {show(op.name)} in {where} is a {OP_TYPES[op.type]} op: it runs code the "
                              "app registers, which no RVM model needs")  # fmt: skip
            if op.type not in MNN_OPS:
                raise refuse(path, f"op {show(op.name)} in {where} has type {show(op.type_name)}, not one MNN's "
                              "converter writes for our ONNX export")  # fmt: skip
            for index in op.inputs + op.outputs:
                if not 0 <= index < len(graph.tensors):  # MNN indexes its tensor table with them unchecked
                    raise refuse(path, f"op {show(op.name)} in {where} refers to tensor {index}, but the graph "
                                  f"has {len(graph.tensors)}")  # fmt: skip
        for index in graph.inputs + graph.outputs:
            if not 0 <= index < len(graph.tensors):
                raise refuse(path, f"{where} has input or output tensor {index} of {len(graph.tensors)}")
    names = set(net.main.tensors)
    missing = [n for n in (*INPUT_NAMES, *OUTPUT_NAMES) if n not in names]
    if missing:
        raise refuse(path, f"it has no tensors named {', '.join(missing)}; it is not RVM's contract")
