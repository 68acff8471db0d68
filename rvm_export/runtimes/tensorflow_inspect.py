"""Inspection of a TensorFlow SavedModel (a folder) before ``tf.saved_model.load`` opens it.

``saved_model.pb`` is parsed with its generated message class; every node of the meta graph and of every library
function is checked against TensorFlow's registry less the refused families (``inspection_ops.py``), the two
checkpoint functions against what ``tf.saved_model.save`` writes and nothing else may call them; object-graph
classes, registered savers and asset paths too. Why: docs/security.md.
"""

from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Set, Tuple

from .inspection_readers import MAX_BINARY_BYTES, check_folder, confined, parse_message, read_limited, refuse, show

# SavedModel checkpoint functions: `__inference__traced_save_*` and `__inference__traced_restore_*`, the
# functions the saver_def's save and restore nodes call. Only TF1-style loaders (tf.compat.v1.saved_model.load,
# TensorFlow Serving) run the restore one, feeding it the variables path; TF2's tf.saved_model.load runs neither
# (it restores through a TrackableSaver it builds, tensorflow/python/saved_model/load.py:_restore_checkpoint).
# Their file ops are allowed there and only there, and nothing outside the saver may call them.
TF_SAVE_OPS = frozenset(
    {
        "Const", "DisableCopyOnRead", "Identity", "MergeV2Checkpoints", "NoOp", "Pack", "ReadVariableOp", "SaveV2",
        "Select", "ShardedFilename", "StaticRegexFullMatch", "StringJoin"
    }
)  # fmt: skip
TF_RESTORE_OPS = frozenset({"AssignVariableOp", "Const", "Identity", "NoOp", "RestoreV2"})

# SavedModel object graph: user_object identifiers our export writes (tf.Module trackables, no Keras object).
TF_OBJECT_IDENTIFIERS = frozenset({"_generic_user_object", "signature_map", "trackable_list_wrapper"})


def _tf_callees(nodes: Iterable[Any], functions: Dict[str, Any]) -> Set[str]:
    """Functions a list of NodeDefs calls: an op that is a library function, and every func / list(func) attr."""
    found: Set[str] = set()
    for node in nodes:
        if node.op in functions:
            found.add(node.op)
        for attr in node.attr.values():
            if attr.HasField("func"):
                found.add(attr.func.name)
            found.update(f.name for f in attr.list.func)
    return found


def _tf_reach(start: Iterable[str], functions: Dict[str, Any]) -> Set[str]:
    seen: Set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        todo.extend(_tf_callees(functions[name].node_def, functions))
    return seen


def _saved_model_roles(meta_graph: Any) -> Tuple[Dict[str, Any], Set[str], Set[str]]:
    """A meta graph's library functions by name, and the save and restore functions of its saver_def (the
    functions its save/restore nodes call, with theirs)."""
    graph = meta_graph.graph_def
    functions = {f.signature.name: f for f in graph.library.function}
    by_name = {node.name: node for node in graph.node}
    saver = meta_graph.saver_def

    def called_by(tensor_name: str) -> Set[str]:
        node = by_name.get(tensor_name.split(":")[0].lstrip("^")) if tensor_name else None
        return _tf_reach(_tf_callees([node], functions), functions) if node is not None else set()

    return functions, called_by(saver.save_tensor_name), called_by(saver.restore_op_name)


def _saved_model_ops(meta_graph: Any) -> Tuple[Set[str], Set[str], Set[str]]:
    """The op types of a meta graph's model part (main graph and model functions), of its save functions and
    of its restore functions: what the allowlists are built from."""
    functions, save, restore = _saved_model_roles(meta_graph)
    model = {n.op for n in meta_graph.graph_def.node}
    save_ops: Set[str] = set()
    restore_ops: Set[str] = set()
    for name, function in functions.items():
        ops = {n.op for n in function.node_def if n.op not in functions}
        (save_ops if name in save else restore_ops if name in restore else model).update(ops)
    return model - set(functions), save_ops, restore_ops


def _tf_op_problem(op: str, allowed: Optional[frozenset] = None) -> Optional[str]:
    """Why a node's op is refused: outside ``allowed`` (a checkpoint function's own set), or else outside the
    registry's ops less the refused families (inspection_oplists.TF_OPS); None when it is allowed."""
    from .inspection_oplists import TF_OPS
    from .inspection_ops import TENSORFLOW_VERSION, tf_refusal

    if op in (allowed if allowed is not None else TF_OPS):
        return None
    why = tf_refusal(op)
    if why:
        return f"op {show(op)} {why}"
    if allowed is not None:
        return f"op {show(op)} is not one a checkpoint function of tf.saved_model.save holds"
    return f"op {show(op)} is not an op of TensorFlow {TENSORFLOW_VERSION}'s registry"


def _inspect_meta_graph(meta_graph: Any, file: Path, folder: Path) -> None:
    functions, save, restore = _saved_model_roles(meta_graph)
    graph = meta_graph.graph_def
    saver = meta_graph.saver_def
    saver_nodes = {t.split(":")[0].lstrip("^") for t in (saver.save_tensor_name, saver.restore_op_name) if t}
    both = save & restore
    if both:
        raise refuse(file, f"function {show(sorted(both)[0])} is both the checkpoint save and restore function")
    # The model part: every main-graph node but the saver's two, and every function not the saver's.
    for node in graph.node:
        if node.op in functions:
            continue
        problem = _tf_op_problem(node.op)
        if problem:
            raise refuse(file, f"{problem} (node {show(node.name)} of the main graph)")
    # What the model runs: every other main-graph node (a signature's outputs among them, even when the saver_def
    # names the same node), and every function the object graph restores.
    signature_nodes = {
        t.name.split(":")[0].lstrip("^")
        for signature in meta_graph.signature_def.values()
        for t in [*signature.inputs.values(), *signature.outputs.values()]
    }
    model_roots = _tf_callees(
        [n for n in graph.node if n.name not in saver_nodes or n.name in signature_nodes], functions
    )
    for node in meta_graph.object_graph_def.nodes:
        kind = node.WhichOneof("kind")
        if kind == "function":
            model_roots.update(node.function.concrete_functions)
        elif kind == "bare_concrete_function":
            model_roots.add(node.bare_concrete_function.concrete_function_name)
        elif kind == "user_object" and node.user_object.identifier not in TF_OBJECT_IDENTIFIERS:
            raise refuse(file, f"its object graph holds a {show(node.user_object.identifier)} object, which "
                          "an RVM SavedModel does not")  # fmt: skip
        if node.registered_saver:
            raise refuse(file, f"it restores through the registered saver {show(node.registered_saver)}")
    model_roots.update(meta_graph.object_graph_def.concrete_functions.keys())
    called = _tf_reach(model_roots, functions) & (save | restore)
    if called:
        raise refuse(file, f"function {show(sorted(called)[0])}, a checkpoint function, is called by the model")
    for name, function in functions.items():
        allowed = TF_SAVE_OPS if name in save else TF_RESTORE_OPS if name in restore else None
        for node in function.node_def:
            if node.op in functions:
                continue
            problem = _tf_op_problem(node.op, allowed)
            if problem:
                raise refuse(file, f"{problem} (in function {show(name)})")
        if name in restore:  # RestoreV2 reads the checkpoint the loader names: the function's first argument
            first = function.signature.input_arg[0].name if function.signature.input_arg else None
            for node in function.node_def:
                if node.op == "RestoreV2" and (not node.input or node.input[0] != first):
                    raise refuse(file, f"{show(node.name)} in {show(name)} restores from "
                                  f"{show(node.input[0] if node.input else '')}, not the loader's variables path")  # fmt: skip
    assets = folder / "assets"
    for asset in meta_graph.asset_file_def:
        confined(assets, asset.filename, file, "asset")
    for key, collection in meta_graph.collection_def.items():
        for value in collection.any_list.value:
            if value.type_url.endswith("tensorflow.AssetFileDef"):
                from tensorflow.core.protobuf import meta_graph_pb2

                asset = meta_graph_pb2.AssetFileDef()
                asset.ParseFromString(value.value)
                confined(assets, asset.filename, file, f"asset (collection {show(key)})")


def _read_saved_model(folder: Path, file: Path) -> Any:
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    pb, pbtxt = folder / "saved_model.pb", folder / "saved_model.pbtxt"
    unreadable = "its saved_model.pb is not a readable SavedModel"
    if pb.exists():
        return parse_message(saved, read_limited(pb, file, MAX_BINARY_BYTES), file, unreadable)
    if not pbtxt.exists():
        raise refuse(file, "it has no saved_model.pb")
    text = read_limited(pbtxt, file)
    try:
        from google.protobuf import text_format

        text_format.Parse(text.decode("utf-8"), saved)
    except Exception as exc:  # text_format.ParseError, UnicodeDecodeError
        raise refuse(file, f"{unreadable} ({exc.__class__.__name__})")
    return saved


def inspect(path: Path) -> None:
    if not path.is_dir():
        raise refuse(path, "a SavedModel is a folder")
    folder = check_folder(path, path)
    for meta_graph in _read_saved_model(folder, path).meta_graphs:
        _inspect_meta_graph(meta_graph, path, folder)
