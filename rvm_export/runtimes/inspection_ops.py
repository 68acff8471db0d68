"""Which operators the inspection lets a TorchScript, ``.pt2`` or SavedModel graph call (docs/security.md, "Allow what cannot act").

The rule is "what cannot act on the machine", not "what our exporters write": every operator of the pinned
runtime's own registry, less the ones that touch files, processes, the network or the console, which are listed
here one by one or family by family, each with the reason. The allowlists themselves are generated literals
(``inspection_oplists.py``, written by ``python -m rvm_export.runtimes.inspection_ops``) rather than read from the
registry at inspection time, because

- an allowlist must refuse what nobody has looked at: an operator that a later torch or TensorFlow adds (a new
  file reader, say) stays refused until the lists are regenerated and the diff reviewed, where a registry read at
  run time would let it through silently;
- the set must not depend on what else the process happened to import (torchvision, torchao and TensorFlow add-ons
  register operators of their own at import);
- inspecting a TorchScript archive must not import TensorFlow, nor a SavedModel torch.

``tests/runtimes/test_inspection_ops.py`` regenerates both lists from the installed registries and fails when they
differ from the literals (on the pinned versions), and checks the refused lists against the registries: every
refused name exists, and every operator whose schema takes a file name, or whose name says it prints, profiles or
talks to another process, is refused or reviewed below.
"""

import re
import sys
from pathlib import Path
from typing import Dict, FrozenSet, Optional, Set, Tuple

TORCH_VERSION = "2.13.0"
TENSORFLOW_VERSION = "2.21.0"

# --- torch (TorchScript code, .pt2 node targets) -------------------------------------------------------------

# Only these namespaces: ATen and TorchScript's prim ops. Everything else of torch's registry is refused as a
# namespace: c10d, _c10d_functional*, symm_mem, _dtensor (collectives: the network), profiler (writes traces),
# debugprims (debugprims::load_tensor reads files), and the backend-specific ones (quantized, _quantized, mkldnn*,
# onednn, mkl, sparse, prims, inductor*, static_runtime, rngprims, onnx, _native, export, debug_mode_ops, _test)
# that no RVM graph needs.
TORCH_NAMESPACES = ("aten", "prim")

# The operators of those namespaces that act outside the tensors they compute with, and why.
TORCH_REFUSED: Dict[str, str] = {
    # files
    "aten::from_file": "maps a file into a tensor (and writes through to it with shared=True)",
    "aten::save": "writes a file",
    # the console
    "prim::Print": "prints to the process's stdout",
    "aten::_print": "prints to the process's stdout",
    "aten::warn": "prints a warning to the process's stderr, where it can forge the verifier's output",
    "aten::_test_warn_in_autograd": "prints a warning to the process's stderr",
    # other processes and the network (torch.distributed.rpc)
    "prim::rpc_async": "calls a function in another process (torch.distributed.rpc)",
    "prim::rpc_sync": "calls a function in another process (torch.distributed.rpc)",
    "prim::rpc_remote": "calls a function in another process (torch.distributed.rpc)",
    # Python
    "prim::PythonOp": "calls a Python function",
    "prim::IgnoredPythonOp": "stands for a Python function",
    # the process's profiler and statistics
    "prim::AddStatValue": "writes to the process's statistics logger",
    "prim::TimePoint": "records a time point for the profiler",
    "prim::profile": "is the profiling executor's recording node",
    "prim::profile_ivalue": "is the profiling executor's recording node",
    # nodes the JIT makes in its own passes, with subgraphs and attributes source code cannot give
    **{
        f"prim::{name}": "is a node only the JIT's own optimization passes create"
        for name in (
            "BailOut", "BailoutTemplate", "DifferentiableGraph", "FallbackGraph", "FusionGroup", "Guard",
            "RequiresGradCheck", "StaticSubgraph", "StaticRuntimeCopyOuts", "TensorExprDynamicGroup",
            "TensorExprDynamicGuard", "TensorExprGroup", "TypeCheck", "oneDNNFusionGroup", "oneDNNFusionGuard",
        )
    },
}  # fmt: skip

# Registry operators that the suspicious-name check of the test flags (a file, print, profile... in the name or a
# file-name argument) and that were read and found harmless.
TORCH_REVIEWED: Dict[str, str] = {
    "aten::isprintable": "str.isprintable",
    "aten::_get_tracing_state": "reads whether the tracer is active",
    "aten::einsum": "its `path` argument is the contraction order, not a file",
}

# A .pt2 program's Python-level targets: the symbolic-shape functions torch.export's serializer writes as
# "<module>.<name>" (torch/_export/serde/serialize.py: _SYM_OPS), and getitem on multi-output nodes.
PT2_PYTHON_TARGETS: FrozenSet[str] = frozenset(
    {
        "_operator.add", "_operator.and_", "_operator.eq", "_operator.floordiv", "_operator.ge", "_operator.getitem",
        "_operator.gt", "_operator.le", "_operator.lshift", "_operator.lt", "_operator.mod", "_operator.mul",
        "_operator.ne", "_operator.neg", "_operator.or_", "_operator.pos", "_operator.pow", "_operator.rshift",
        "_operator.sub", "_operator.truediv", "math.trunc", "torch._sym_sqrt", "torch.sym_float", "torch.sym_int",
        "torch.sym_ite", "torch.sym_max", "torch.sym_min", "torch.sym_not",
    }
)  # fmt: skip
# Higher-order operators that only run subgraphs of the program itself. The others of torch 2.13 are refused:
# print (prints), call_torchbind / with_effects (call methods of script objects), triton_kernel_wrapper_*,
# inline_asm_elementwise, inductor_compiled_code, aoti_call_delegate and executorch_call_delegate (run compiled
# code), autograd_function_apply, custom_function_call, flat_apply, invoke_leaf_function,
# dynamo_bypassing_wrapper and strict_mode (call Python), run_const_graph, _export_tracepoint and the rest
# (training, tracing and distributed internals no exported inference graph holds).
PT2_HIGHER_ORDER: FrozenSet[str] = frozenset(
    {
        "associative_scan", "auto_functionalized", "auto_functionalized_v2", "cond", "invoke_subgraph", "map_impl",
        "scan", "while_loop", "wrap_with_autocast", "wrap_with_set_grad_enabled",
    }
)  # fmt: skip


def torch_refusal(name: str) -> Optional[str]:
    """Why the operator ``ns::name`` is refused, or None when it is not on the refused lists."""
    if name in TORCH_REFUSED:
        return TORCH_REFUSED[name]
    namespace = name.split("::", 1)[0]
    if namespace not in TORCH_NAMESPACES:
        return f"is in the {namespace!r} namespace, not ATen or prim"
    return None


def torch_registry() -> Dict[str, Tuple[object, ...]]:
    """{``ns::name``: its schemas} of every operator registered with the running torch."""
    import torch

    found: Dict[str, list] = {}
    for schema in torch._C._jit_get_all_schemas():
        found.setdefault(schema.name, []).append(schema)
    return {name: tuple(schemas) for name, schemas in found.items()}


def derive_torch_ops() -> FrozenSet[str]:
    """The ATen and prim operators of the running torch's registry, less the refused ones."""
    return frozenset(n for n in torch_registry() if n.split("::", 1)[0] in TORCH_NAMESPACES and not torch_refusal(n))


_SUSPECT = re.compile(r"file|print|warn|rpc|profil|record_function|_fd$|shm|socket|python|dump|stat_", re.I)
_FILE_ARGUMENTS = {"filename", "file", "path", "filepath", "fd", "url"}


def torch_suspects() -> Set[str]:
    """ATen and prim operators whose name says they may act outside their tensors, or whose schema takes a file
    name: each must be refused or reviewed (tests/runtimes/test_inspection_ops.py)."""
    suspects = set()
    for name, schemas in torch_registry().items():
        if name.split("::", 1)[0] not in TORCH_NAMESPACES:
            continue
        arguments = {a.name for schema in schemas for a in schema.arguments}  # type: ignore[attr-defined]
        if _SUSPECT.search(name.split("::", 1)[1]) or arguments & _FILE_ARGUMENTS:
            suspects.add(name)
    return suspects


# --- TensorFlow (SavedModel graphs) --------------------------------------------------------------------------

# Families of TensorFlow ops refused by pattern (re.search on the op name), and why.
TF_REFUSED_FAMILIES: Dict[str, Tuple[str, str]] = {
    "file": (r"File|Checkpoint|Sharded|Save|Restore|Reader|^Load|Dump|Proto|LMDB|Sql|TFRecord|TextLine|"
             r"FixedLengthRecord|Snapshot|RecordInput",
             "reads or writes files"),
    "python": (r"PyFunc", "calls Python"),
    "rpc": (r"Rpc|Send|Recv|Collective|Nccl|RemoteCall|DataService|Session|Infeed|Outfeed|TPU|Tpu|Xla[A-Z]|^_Xla",
            "talks to other processes, devices or machines"),
    "summary": (r"Summary|StatsAggregator|ImportEvent", "writes summaries (event files)"),
    "dataset": (r"Dataset|Iterator", "is a tf.data pipeline op (reads files, runs functions off the graph)"),
    "debug": (r"^Debug|^Print|^Copy$|^CopyHost$", "prints or sends debug data (a debug URL)"),
}  # fmt: skip
# Ops refused by name whose names no family pattern above catches.
TF_REFUSED_OPS: Dict[str, str] = {
    "ImmutableConst": "file",  # maps a file into memory
    "GenerateVocabRemapping": "file",  # reads vocabulary files
    "Skipgram": "file",  # reads a text file
}
_TF_FAMILY_PATTERNS = {family: re.compile(pattern) for family, (pattern, _) in TF_REFUSED_FAMILIES.items()}


def tf_refusal(op: str) -> Optional[str]:
    """Why the TensorFlow op ``op`` is refused (its family's reason), or None."""
    family = TF_REFUSED_OPS.get(op)
    if family is None:
        family = next((f for f, pattern in _TF_FAMILY_PATTERNS.items() if pattern.search(op)), None)
    return TF_REFUSED_FAMILIES[family][1] if family else None


def tf_registry() -> Set[str]:
    """The names of every op registered with the running TensorFlow (its C++ op registry)."""
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session

    buffer = pywrap_tf_session.TF_GetAllOpList()
    try:
        ops = op_def_pb2.OpList()
        ops.ParseFromString(bytes(pywrap_tf_session.TF_GetBuffer(buffer)))
    finally:
        pywrap_tf_session.TF_DeleteBuffer(buffer)
    return {op.name for op in ops.op}


def derive_tf_ops() -> FrozenSet[str]:
    """The running TensorFlow's registered ops, less the refused families and ops."""
    return frozenset(op for op in tf_registry() if not tf_refusal(op))


# --- The generated literals ----------------------------------------------------------------------------------

OPLISTS = Path(__file__).with_name("inspection_oplists.py")


def _wrapped(names: FrozenSet[str], width: int = 112) -> str:
    lines, line = [], ""
    for name in sorted(names):
        if line and len(line) + 1 + len(name) > width:
            lines.append(line)
            line = ""
        line = f"{line} {name}" if line else name
    return "\n".join(["    " + x for x in lines + [line]])


def render_oplists(torch_ops: FrozenSet[str], tf_ops: FrozenSet[str]) -> str:
    """The text of ``inspection_oplists.py`` for these two lists."""
    return (
        '"""Generated by ``python -m rvm_export.runtimes.inspection_ops`` (do not edit): the operators the inspection\n'
        "allows, derived from the registries of the pinned runtimes less the refused lists of inspection_ops.py.\n"
        f"torch {TORCH_VERSION}: {len(torch_ops)} ATen and prim operators; TensorFlow {TENSORFLOW_VERSION}: "
        f'{len(tf_ops)} ops."""\n\n'
        f'TORCH_OPS = frozenset(\n    """\n{_wrapped(torch_ops)}\n    """.split()\n)\n\n'
        f'TF_OPS = frozenset(\n    """\n{_wrapped(tf_ops)}\n    """.split()\n)\n'
    )


def main() -> None:
    """Regenerate inspection_oplists.py from the installed torch and TensorFlow (each in its own interpreter
    would be cleaner; one is enough: neither registers operators in the other's registry)."""
    import tensorflow as tf
    import torch

    for name, have, pinned in (("torch", torch.__version__, TORCH_VERSION), ("tensorflow", tf.__version__,
                                                                            TENSORFLOW_VERSION)):  # fmt: skip
        if not have.startswith(pinned):
            sys.exit(f"{name} {have} is installed; the lists are derived from the pinned {pinned}")
    OPLISTS.write_text(render_oplists(derive_torch_ops(), derive_tf_ops()))
    print(f"wrote {OPLISTS}")


if __name__ == "__main__":
    main()
