"""ONNX graph rewrites the exporters cannot express, on plain ``onnx`` protos.

Our own code: neither onnxslim nor onnx-graphsurgeon offers "move the nodes that only feed one
branch into an If" (a form of lazy evaluation), and it is a few dozen lines on the proto.
"""

from typing import Dict, Iterable, List, Optional, Sequence, Set, Union

import onnx
from onnx import helper

GATE_DOMAIN = "rvm"
GATE_OP = "SkipRefinerAtOne"
GATE_IF_NAME = "skip_refiner_at_ratio_one"


def _subgraph_inputs(node: onnx.NodeProto) -> Iterable[str]:
    """Names a node reads, including outer-scope names its subgraphs (If/Loop bodies) read."""
    yield from node.input
    for attr in node.attribute:
        graphs = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
        for sub in graphs:
            for inner in sub.node:
                yield from _subgraph_inputs(inner)


def lower_refiner_gate(model: onnx.ModelProto, elem_type: int) -> onnx.ModelProto:
    """Replace the ``rvm::SkipRefinerAtOne(is_one, fgr, pha, refined_fgr, refined_pha)`` marker
    by ``If(is_one)``: then the nodes and (fgr, pha), else the refiner's nodes and (refined_fgr, refined_pha).

    Every node whose outputs are used only on the way to one pair moves into that pair's branch,
    so ONNX Runtime runs the refiner only below ratio 1, as PyTorch, and the unrefined output
    (whose shapes only agree at ratio 1) only at ratio 1."""
    graph = model.graph
    nodes = list(graph.node)
    gates = [i for i, n in enumerate(nodes) if n.domain == GATE_DOMAIN and n.op_type == GATE_OP]
    if len(gates) != 1:
        raise ValueError(f"expected one {GATE_DOMAIN}::{GATE_OP} node, found {len(gates)}")
    gate_index = gates[0]
    gate = nodes[gate_index]
    is_one, fgr, pha, refined_fgr, refined_pha = gate.input

    users: Dict[str, List[int]] = {}
    for i, node in enumerate(nodes):
        for name in set(_subgraph_inputs(node)):
            users.setdefault(name, []).append(i)
    graph_outputs = {o.name for o in graph.output}

    def only_for(pair: Sequence[str]) -> Set[int]:
        moved: Set[int] = set()
        for i in reversed(range(gate_index)):  # nodes are topologically sorted: users come later
            outputs = [o for o in nodes[i].output if o]
            uses = [(o, u) for o in outputs for u in users.get(o, [])]
            only_this = all(u in moved or (u == gate_index and o in pair) for o, u in uses)
            if uses and only_this and not graph_outputs.intersection(outputs):
                moved.add(i)
        return moved

    then_moved = only_for((fgr, pha))
    else_moved = only_for((refined_fgr, refined_pha))
    moved = then_moved | else_moved

    def branch(name: str, body: List[onnx.NodeProto], values: Sequence[str]) -> onnx.GraphProto:
        outs = [f"{name}_{v}" for v in ("fgr", "pha")]
        body = body + [helper.make_node("Identity", [v], [o]) for v, o in zip(values, outs, strict=True)]
        return helper.make_graph(body, name, [], [helper.make_tensor_value_info(o, elem_type, None) for o in outs])

    then_branch = branch("unrefined", [nodes[i] for i in sorted(then_moved)], [fgr, pha])
    else_branch = branch("refined", [nodes[i] for i in sorted(else_moved)], [refined_fgr, refined_pha])
    if_node = helper.make_node(
        "If", [is_one], list(gate.output), name=GATE_IF_NAME, then_branch=then_branch, else_branch=else_branch
    )
    inner_names = {o for i in moved for o in nodes[i].output}
    kept = [if_node if i == gate_index else n for i, n in enumerate(nodes) if i not in moved]
    del graph.node[:]
    graph.node.extend(kept)
    stale = [v for v in graph.value_info if v.name in inner_names]
    for v in stale:
        graph.value_info.remove(v)
    for opset in [o for o in model.opset_import if o.domain == GATE_DOMAIN]:
        model.opset_import.remove(opset)
    return model


Dim = Optional[Union[int, str]]


def set_dim_names(model: onnx.ModelProto, dims: Dict[str, Sequence[Dim]]) -> None:
    """Name the graph's input/output dimensions: str -> symbolic name, int -> fixed, None -> as is."""
    for value in list(model.graph.input) + list(model.graph.output):
        if value.name not in dims:
            continue
        shape = value.type.tensor_type.shape
        for dim, want in zip(shape.dim, dims[value.name], strict=True):
            if isinstance(want, str):
                dim.dim_param = want
            elif isinstance(want, int):
                dim.dim_value = want
