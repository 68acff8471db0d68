"""Inspection of a TorchScript archive (``.torchscript``, ``.pt``) before ``torch.jit.load`` opens it.

The zip is listed, every entry classified by the name torch's reader finds it by (ASCII case-folded); pickles are
disassembled (globals: torch's C++ unpickler's fixed set and TorchScript classes), code is parsed with :mod:`ast`
(never compiled) and every ``torch.*`` / ``ops.*`` name checked against the pinned registry less the refused list
(``inspection_ops.py``). What ``torch.jit.load`` guarantees by itself, and so why: docs/security.md.
"""

import ast
import re
from pathlib import Path
from typing import List, Optional, Set, Tuple

from .inspection_readers import (
    check_pickle,
    loader_key,
    read_entry,
    refuse,
    regular_file,
    show,
    strip_prefix,
    zip_entries,
)

# TorchScript: the globals of its pickles (data.pkl, constants.pkl, *.debug_pkl), TorchScript classes
# (`__torch__.*`, compiled from the archive's code/, whose calls are checked below) aside.
TORCHSCRIPT_GLOBALS = frozenset(
    {
        "collections.OrderedDict", "torch.BFloat16Storage", "torch.FloatStorage", "torch.HalfStorage",
        "torch.LongStorage", "torch._utils._rebuild_tensor_v2", "torch.jit._pickle.build_intlist"
    }
)  # fmt: skip
# TorchScript code: the free functions it may call. The `torch.*` / `ops.*` names it uses are checked against
# inspection_oplists.TORCH_OPS. These are the names TorchScript's source importer binds (annotate, fork,
# awaitable, unchecked_cast, uninitialized: torch/csrc/jit/serialization/import_source.cpp) and the builtins of
# its compiler (torch/csrc/jit/frontend/ir_emitter.cpp's globals), less `print` (prim::Print).
TORCHSCRIPT_BUILTINS = frozenset(
    {
        "annotate", "awaitable", "fork", "unchecked_cast", "uninitialized", "abs", "all", "any", "bin", "bool",
        "chr", "complex", "dict", "divmod", "enumerate", "float", "getattr", "hasattr", "hash", "hex", "id", "int",
        "isinstance", "len", "list", "max", "min", "oct", "ord", "pow", "range", "rangelist", "round", "sorted",
        "str", "sum", "tuple", "zip", "AssertionError", "_to_tensor",
    }
)  # fmt: skip


# What TorchScript's C++ unpickler resolves a GLOBAL to besides TorchScript classes (the fixed set of
# torch/csrc/jit/serialization/unpickler.cpp): nothing it imports or calls is Python, so these are allowed
# whichever of them an archive holds.
_TORCHSCRIPT_LOADER_GLOBALS = re.compile(
    r"torch\.[A-Za-z]*Storage|torch\._utils\._rebuild_[a-z0-9_]+|torch\._tensor\._rebuild_[a-z0-9_]+|"
    r"torch\.jit\._pickle\.[a-z_]+|torch\.device|builtins\.complex|collections\.OrderedDict"
)


def _torchscript_global_allowed(name: str) -> bool:
    return (
        name in TORCHSCRIPT_GLOBALS
        or bool(_TORCHSCRIPT_LOADER_GLOBALS.fullmatch(name))
        or (name.startswith("__torch__.") and re.fullmatch(r"[A-Za-z0-9_.]+", name) is not None)
    )


def _dotted(node: ast.AST) -> Optional[str]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _torchscript_code_names(source: str) -> Tuple[Set[str], Set[str]]:
    """The ``torch.*`` / ``ops.*`` names a TorchScript source file uses, and the free names it calls (not its
    functions' arguments or local variables): what the allowlists are checked against. Parsed, never compiled."""
    tree = ast.parse(source)
    names: Set[str] = set()
    calls: Set[str] = set()
    inner: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            inner.add(id(node.value))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Attribute, ast.Name)) and id(node) not in inner:
            dotted = _dotted(node)
            if dotted and dotted.split(".")[0] in ("torch", "ops"):
                names.add(dotted)
    # Free calls: per function, a name that is none of its arguments and locals, nor a function or class of the
    # file (TorchScript's importer takes nothing else from a module's top level but `op_version_set`).
    base = {"self", "torch", "ops", "CONSTANTS", "__torch__"}
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    module_level = {n.name for n in tree.body if isinstance(n, defs)}
    outside = [stmt for stmt in tree.body if not isinstance(stmt, defs)]  # module and class bodies
    outside += [stmt for c in tree.body if isinstance(c, ast.ClassDef) for stmt in c.body if not isinstance(stmt, defs)]
    scopes: List[Tuple[ast.AST, Set[str]]] = [(stmt, base | module_level) for stmt in outside]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            local = set(base | module_level)
            for inner_node in ast.walk(node):
                if isinstance(inner_node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    a = inner_node.args
                    local.update(x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x)
                elif isinstance(inner_node, ast.Name) and isinstance(inner_node.ctx, (ast.Store, ast.Del)):
                    local.add(inner_node.id)
            scopes.append((node, local))
    for scope, local in scopes:
        for node in ast.walk(scope):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in local:
                calls.add(node.func.id)
    return names, calls


def _torch_op(dotted: str) -> Optional[str]:
    """The operator a ``torch.*`` / ``ops.*`` name of TorchScript code resolves to (TorchScript's source
    importer binds ``torch`` to the ``aten`` builtins and ``ops.<ns>.<name>`` to ``<ns>::<name>``), or None when
    the name is not an operator (a bare ``torch``, ``ops.aten``, or a longer chain)."""
    parts = dotted.split(".")
    if parts[0] == "torch" and len(parts) == 2:
        return f"aten::{parts[1]}"
    if parts[0] == "ops" and len(parts) == 3:
        return f"{parts[1]}::{parts[2]}"
    return None


def _torchscript_method_calls(tree: ast.AST) -> Set[str]:
    """Names of the methods the code calls on values (``x.unflatten(...)``): on a tensor, a string or a list,
    TorchScript resolves one to the ATen operator of that name that takes the value as ``self``."""
    return {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and (_dotted(node.func) or "").split(".")[0] not in ("torch", "ops")
    }  # fmt: skip


def _check_torchscript_code(source: bytes, file: Path, entry: str) -> None:
    from .inspection_oplists import TORCH_OPS
    from .inspection_ops import TORCH_REFUSED, TORCH_VERSION, torch_refusal

    try:
        text = source.decode("utf-8")
        names, calls = _torchscript_code_names(text)
        methods = _torchscript_method_calls(ast.parse(text))
    except (SyntaxError, ValueError, RecursionError) as exc:
        raise refuse(file, f"{show(entry)} is not TorchScript source ({exc.__class__.__name__})")
    for name in sorted(names):
        op = _torch_op(name)
        if op is None:
            raise refuse(file, f"{show(entry)} uses {show(name)}, which is not an operator")
        if op not in TORCH_OPS:
            why = torch_refusal(op) or f"is not an operator of torch {TORCH_VERSION}'s registry"
            raise refuse(file, f"{show(entry)} calls {show(name)} ({op}), which {why}")
    for method in sorted(methods):
        if f"aten::{method}" in TORCH_REFUSED:
            why = TORCH_REFUSED[f"aten::{method}"]
            raise refuse(file, f"{show(entry)} calls a method {show(method)}, which as aten::{method} {why}")
    for name in sorted(calls):
        if name not in TORCHSCRIPT_BUILTINS:
            why = "prints to the process's stdout" if name == "print" else "is not one of TorchScript's builtins"
            raise refuse(file, f"{show(entry)} calls {show(name)}, which {why}")


# The entries torch.jit.load may open besides pickles and code (torch/csrc/jit/serialization/import.cpp:
# tensor records "data/<key>", "constants/<key>" and "traced_inputs/<key>" (torch.jit.trace stores its example
# inputs, traced_inputs.pkl), the version and byte-order records; "extra/*" only by the
# names the caller asks for, returned as bytes), by their case-folded names. Anything else is refused: the
# loader finds entries by name case-insensitively, so an entry the inspection does not read as what it is might
# still be opened as something (a legacy model.json, say, which sends the archive to the legacy importer).
_TORCHSCRIPT_DATA = re.compile(
    r"(data|constants|traced_inputs)/[0-9]+|\.data/version|version|byteorder|\.data/serialization_id|extra/.+"
)


def inspect(path: Path) -> None:
    regular_file(path, path)
    archive, names = zip_entries(path, path)
    _, entries = strip_prefix(names, path)
    with archive:
        for rel, name in entries.items():
            key = loader_key(rel)
            if key.endswith("pkl"):  # data.pkl, constants.pkl, code/**.debug_pkl (bytecode.pkl: mobile)
                data = read_entry(archive, name, path)
                check_pickle(data, path, name, _torchscript_global_allowed, "torch.jit.load")
            elif key.endswith(".py"):  # code/**.py, found case-insensitively: code/x.PY and CODE/ are code too
                _check_torchscript_code(read_entry(archive, name, path), path, name)
            elif not _TORCHSCRIPT_DATA.fullmatch(key) and not key.endswith("/"):
                raise refuse(path, f"archive entry {show(name)} is not one the inspection knows how torch.jit.load "
                              "reads (code, a pickle, a tensor record or a version record)")  # fmt: skip
