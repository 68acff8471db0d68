"""Inspection of an ONNX model before ONNX Runtime opens it, read with ``onnx.load(..., load_external_data=False)``:
external data inside the model's folder, only the domains ONNX Runtime implements itself, no op that loads or
runs code from outside the graph, no model-local functions. Why: docs/security.md.
"""

from pathlib import Path
from typing import Any, Iterator

from .inspection_readers import confined, refuse, regular_file, show

# ONNX: the domains ONNX Runtime implements itself (no custom op library), and the ops of those domains that
# make it load or run something from outside the graph: EPContext (a precompiled execution-provider binary,
# possibly in a file beside the model) and the training build's PythonOp (calls back into Python).
# Our export writes the default domain only: its refiner gate (rvm::SkipRefinerAtOne, onnx_graph.GATE_DOMAIN)
# is lowered to an If, and its opset import removed, before the file is written.
ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
ONNX_REFUSED_OPS = frozenset({"EPContext", "PythonOp", "PythonOpGrad"})


def _onnx_graphs(model: Any) -> Iterator[Any]:
    """The main graph, every subgraph of an If/Loop/Scan attribute, and training-info graphs."""
    import onnx

    stack = [model.graph]
    for info in model.training_info:
        stack.extend([info.initialization, info.algorithm])
    while stack:
        graph = stack.pop()
        yield graph
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    stack.append(attr.g)
                stack.extend(attr.graphs)


def _onnx_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield from (attr.sparse_tensor.values, attr.sparse_tensor.indices)
            for sparse in attr.sparse_tensors:
                yield from (sparse.values, sparse.indices)


def inspect(path: Path) -> None:
    import onnx

    regular_file(path, path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and friends: a damaged file
        raise refuse(path, f"it is not a readable ONNX model ({exc.__class__.__name__})")
    folder = path.parent
    for opset in model.opset_import:
        if opset.domain not in ONNX_DOMAINS:
            raise refuse(path, f"it imports the custom op domain {show(opset.domain)}, which ONNX Runtime "
                          "implements only through a custom op library")  # fmt: skip
    if model.functions:
        function = model.functions[0]
        raise refuse(path, f"it defines the function {show(function.domain + '::' + function.name)}; an RVM "
                      "graph defines none")  # fmt: skip
    for graph in _onnx_graphs(model):
        for node in graph.node:
            op = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
            if node.domain not in ONNX_DOMAINS:
                raise refuse(path, f"node {show(node.name)} is {show(op)}, a custom op ONNX Runtime runs only "
                              "from a custom op library")  # fmt: skip
            if node.op_type in ONNX_REFUSED_OPS:
                raise refuse(path, f"node {show(node.name)} is {show(op)}, which loads or runs code from "
                              "outside the graph")  # fmt: skip
        for tensor in _onnx_tensors(graph):
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                continue
            entries = {e.key: e.value for e in tensor.external_data}
            confined(folder, entries.get("location"), path, f"external data of {show(tensor.name)} at")
