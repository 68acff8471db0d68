"""Inspection of a torch.export archive (``.pt2``) before ``torch.export.load`` opens it.

Every program under ``models/`` is read as JSON (node targets against the registry less the refused list, shape
expressions limited to sympy's expression classes, no ``guards_code``); payload configs, sample-input pickles
(opcodes only) and every other entry by its case-folded name; AOTInductor and pickled payloads refused. What
``torch.export.load`` does with each (unpickling, ``sympify``, ``exec``): docs/security.md.
"""

import re
from pathlib import Path
from typing import Any, Iterator, List, Optional, Set, Tuple

from .inspection_readers import (
    check_pickle,
    load_json,
    loader_key,
    read_entry,
    refuse,
    regular_file,
    show,
    strip_prefix,
    zip_entries,
)

# torch.export: the globals of the example inputs' pickle (torch.save of tensors), and the names in its sympy
# expressions. Its node targets are checked against inspection_oplists.TORCH_OPS and inspection_ops' Python-level
# and higher-order sets.
PT2_PICKLE_GLOBALS = frozenset(
    {
        "collections.OrderedDict", "torch.FloatStorage", "torch.HalfStorage", "torch._utils._rebuild_tensor_v2"
    }
)  # fmt: skip
PT2_SYMPY_NAMES = frozenset(
    {
        "Add", "FloorDiv", "GreaterThan", "Integer", "LessThan", "Max", "Mul", "Symbol", "True", "integer",
        "positive",
        # and the other sympy and torch.utils._sympy classes of shape expressions torch.export writes for other
        # programs (all classes: calling one builds an expression; sympy's functions that act, such as preview
        # or lambdify, are not among them)
        "Abs", "And", "CeilDiv", "CeilToInt", "CleanDiv", "Eq", "Equality", "False", "Float", "FloatPow",
        "FloatTrueDiv", "FloorToInt", "Ge", "Gt", "Identity", "IntTrueDiv", "Le", "Lt", "Min", "Mod",
        "ModularIndexing", "Ne", "Not", "Or", "Pow", "PowByNatural", "PythonMod", "Rational", "RoundDecimal",
        "RoundToInt", "StrictGreaterThan", "StrictLessThan", "ToFloat", "TruncToFloat", "TruncToInt",
        "Unequality", "Where", "finite", "negative", "nonnegative", "oo", "real",
    }
)  # fmt: skip


_SYMPY_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<symbol>'[A-Za-z]+[0-9]+')|(?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)|(?P<punct>[(),=+\-*/<>]))")  # fmt: skip


def _sympy_names(expr: str) -> Optional[Set[str]]:
    """The identifiers of a ``expr_str`` (sympy's repr of a shape expression: calls, quoted symbol names,
    numbers, keyword arguments), or None when it holds anything else (a string, an attribute, a subscript)."""
    names: Set[str] = set()
    position = 0
    while position < len(expr):
        match = _SYMPY_TOKEN.match(expr, position)
        if match is None or match.end() == position:
            return None if expr[position:].strip() else names
        if match.group("name"):
            names.add(match.group("name"))
        position = match.end()
    return names


def _walk_json(value: Any, key: str = "") -> Iterator[Tuple[str, Any, Any]]:
    """(key, value, parent) for every value below ``value``, depth first, without recursion."""
    stack: List[Tuple[str, Any, Any]] = [(key, value, None)]
    while stack:
        key, value, parent = stack.pop()
        yield key, value, parent
        if isinstance(value, dict):
            stack.extend((str(k), v, value) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((key, v, value) for v in value)


def _pt2_program_facts(program: Any) -> Tuple[Set[str], Set[str], List[str]]:
    """A .pt2 program's node targets (every graph, subgraphs included), the names in its expr_str expressions
    (``<unsafe>`` for an expression that is not one), and its guards_code."""
    targets: Set[str] = set()
    sympy: Set[str] = set()
    for key, value, parent in _walk_json(program):
        if key == "target" and isinstance(parent, dict) and "inputs" in parent and isinstance(value, str):
            targets.add(value)
        elif key == "as_operator":  # an operator passed as an argument (auto_functionalized's first)
            targets.add(value if isinstance(value, str) else "<not a name>")
        elif key == "expr_str":
            names = _sympy_names(value) if isinstance(value, str) else None
            sympy.update(names if names is not None else {f"<unsafe: {value}>"})
    guards = program.get("guards_code", []) if isinstance(program, dict) else []
    return targets, sympy, list(guards) if isinstance(guards, list) else [str(guards)]


def _pt2_pickle_allowed(name: str) -> bool:
    return name in PT2_PICKLE_GLOBALS


def _pt2_target_problem(target: str) -> Optional[str]:
    """Why a .pt2 node target is refused, or None. torch.export.load resolves a target by walking attributes
    from ``torch``, ``_operator`` or ``math`` (torch/_export/serde/serialize.py: deserialize_operator), so any
    function under them would do; only registry operators, the serializer's symbolic-shape functions and
    higher-order operators that run the program's own subgraphs are allowed."""
    from .inspection_oplists import TORCH_OPS
    from .inspection_ops import PT2_HIGHER_ORDER, PT2_PYTHON_TARGETS, torch_refusal

    parts = target.split(".")
    if target in PT2_PYTHON_TARGETS:
        return None
    if parts[:3] == ["torch", "ops", "higher_order"] and len(parts) == 4:
        return None if parts[3] in PT2_HIGHER_ORDER else "is a higher-order operator that runs more than the program"
    if parts[:2] == ["torch", "ops"] and len(parts) == 5:
        op = f"{parts[2]}::{parts[3]}"
        if op in TORCH_OPS:
            return None
        return torch_refusal(op) or "is not an operator of torch's registry"
    return "is not an operator"


def _check_pt2_payloads(config: Any, file: Path, entry: str, files: Set[str], folder: str) -> None:
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise refuse(file, f"{show(entry)} is not a torch.export payload config")
    for fqn, meta in config["config"].items():
        if not isinstance(meta, dict):
            raise refuse(file, f"{show(entry)}: payload {show(fqn)} is not described")
        name = meta.get("path_name")
        if meta.get("use_pickle"):
            raise refuse(
                file, f"{show(fqn)} is stored as a pickle, which torch.export.load unpickles with weights_only=False"
            )
        if folder == "data/constants/" and not str(name).startswith("tensor_"):
            raise refuse(file, f"constant {show(fqn)} ({show(name)}) is an object torch.export.load unpickles")
        if (
            not isinstance(name, str)
            or "/" in name
            or name in ("", ".", "..")
            or loader_key(folder + name) not in files
        ):
            raise refuse(file, f"{show(entry)}: payload path {show(name)} is not an entry of the archive")


# The records torch.export.load reads as plain bytes or strings (torch/export/pt2_archive/_package.py), by their
# case-folded names; the payload entries of data/weights/ and data/constants/ too (raw tensor bytes).
_PT2_RECORDS = re.compile(r"archive_format|archive_version|\.data/version|version|byteorder|\.data/serialization_id|"
                          r"extra/.+")  # fmt: skip


def inspect(path: Path) -> None:
    regular_file(path, path)
    archive, names = zip_entries(path, path)
    _, entries = strip_prefix(names, path)
    files = {loader_key(rel) for rel in entries}
    with archive:
        # torch.export.load takes every entry whose name starts with "models/" (case-sensitively: a listing) as a
        # program, whatever its suffix: "models/x.JSON" is program "x", and its data/sample_inputs/x.pt, weights
        # and constants are then read by name, case-insensitively. So every such entry is read as a program,
        # and every other entry by its case-folded name.
        if not any(rel.startswith("models/") for rel in entries):
            raise refuse(path, "it is not a torch.export archive of the current format (no models/*.json); an old "
                          "archive is loaded through torch.load(weights_only=False)")  # fmt: skip
        for rel, name in sorted(entries.items()):
            key = loader_key(rel)
            last = key.rsplit("/", 1)[-1]
            suffix = last.rsplit(".", 1)[-1] if "." in last else ""
            if key.startswith("data/aotinductor/") or suffix in ("so", "dll", "dylib", "cpp", "pyd"):
                raise refuse(path, f"{show(name)} is compiled code (AOTInductor) that torch.export.load would run")
            if rel.startswith("models/"):
                _check_pt2_program(load_json(read_entry(archive, name, path), path, name), path, name)
            elif key.startswith(("data/weights/", "data/constants/")) and key.endswith("_config.json"):
                config = load_json(read_entry(archive, name, path), path, name)
                _check_pt2_payloads(config, path, name, files, key.rsplit("/", 1)[0] + "/")
            elif key.startswith(("data/weights/", "data/constants/")) and suffix == "pt":
                raise refuse(path, f"{show(name)} is a legacy pickled payload torch.export.load would unpickle")
            elif key.startswith("data/sample_inputs/") or suffix in ("pt", "pkl", "pth"):
                _check_pt2_pickled(read_entry(archive, name, path), path, name)
            elif not (key.startswith(("data/weights/", "data/constants/")) or _PT2_RECORDS.fullmatch(key)):
                raise refuse(path, f"archive entry {show(name)} is not one the inspection knows how "
                              "torch.export.load reads (a program, a payload, its config, the sample inputs or a "
                              "version record)")  # fmt: skip


def _check_pt2_pickled(data: bytes, file: Path, entry: str) -> None:
    """A torch.save file inside the archive (the example inputs): a zip whose pickles are scanned (torch.load
    finds its entries case-insensitively too), or a pickle."""
    if data[:4] == b"PK\x03\x04":
        inner, names = zip_entries(file, file, data)
        with inner:
            for name in names:
                if loader_key(name).endswith(".pkl"):
                    data_pkl = read_entry(inner, name, file)
                    check_pickle(data_pkl, file, f"{entry}/{name}", _pt2_pickle_allowed, "torch.export.load")
    else:
        check_pickle(data, file, entry, _pt2_pickle_allowed, "torch.export.load")


def _check_pt2_program(program: Any, file: Path, entry: str) -> None:
    targets, sympy, guards = _pt2_program_facts(program)
    if guards:
        raise refuse(file, f"{show(entry)} carries guards_code {show(guards[0])}, Python that "
                      "ExportedProgram.module() executes")  # fmt: skip
    for name in sorted(sympy):
        if name not in PT2_SYMPY_NAMES:
            raise refuse(file, f"{show(entry)} has a shape expression with {show(name)}, which sympy would "
                          "evaluate as Python")  # fmt: skip
    for target in sorted(targets):
        problem = _pt2_target_problem(target)
        if problem:
            raise refuse(file, f"{show(entry)} calls {show(target)}, which {problem}")
