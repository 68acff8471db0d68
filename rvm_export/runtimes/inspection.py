"""Inspect an artifact before anything of it runs (issue 18, item 2; issue 26, items 3 and 5).

:func:`inspect_artifact` reads an artifact's files as data and refuses, with one line that names the file and
the op or the path (every character that is not printable escaped, so no name can forge a line), what a loader
would act on: ops that touch files, the console, Python or the network; paths that leave the artifact's folder; custom op
domains, layers and extensions a runtime would load code for; pickles that name a Python callable. Nothing of the
artifact executes here:

- protobufs (SavedModel, CoreML, ONNX) are parsed with their generated message classes (``ParseFromString``),
  ONNX with ``onnx.load(..., load_external_data=False)``;
- JSON (TF.js model.json, CoreML Manifest.json, the .pt2 program) with :mod:`json`;
- zip archives (TorchScript, .pt2) are listed with :mod:`zipfile` and each entry is classified by the name
  torch's reader finds it by (ASCII case-folded: :func:`_loader_key`), names that differ only in case refused
  and an entry that fits no class refused; their pickles are disassembled with :func:`pickletools.genops`, never
  unpickled; TorchScript's code is parsed with :func:`ast.parse`, never compiled;
- the OpenVINO XML, accepted in UTF-8 only, with :mod:`xml.etree.ElementTree` after refusing any DTD or entity
  declaration in its decoded text (``defusedxml`` is not installed here);
- the LiteRT flatbuffer through the generated reader of its schema (``ai_edge_litert.schema_py_generated``,
  plain Python over :mod:`flatbuffers`; a size and identifier check alone where it is not installed).

The operator allowlists are for the formats whose ordinary ops can act on the machine: a SavedModel's graph
(TensorFlow has file, print and Python ops) and TorchScript / ``.pt2`` code (aten::from_file, prim::Print). They
are "what cannot act": the pinned torch's and TensorFlow's registries less explicit refused lists and families
(inspection_ops.py), as generated literals (inspection_oplists.py). The pickle globals, sympy names and
checkpoint-function ops stay literal sets of what our exporters and torch's/TensorFlow's savers write.
TF.js, CoreML, OpenVINO and LiteRT graphs compute only with their builtin ops (those runtimes give a graph no file,
process or network op), so there only what makes the runtime load code (custom layers and models, extensions,
custom and Flex ops) or reach outside the artifact is refused: an unfamiliar builtin op, as another converter (the
official releases) writes, is the runtime's to run or to reject.

What each loader guarantees by itself (read in the sources of the installed versions: torch 2.13,
TensorFlow 2.21, onnxruntime, coremltools 9.0, openvino 2026.4, ai-edge-litert 2.3), and so what is checked
here because it does not:

- ``torch.jit.load``: the archive's pickles (``data.pkl``, ``constants.pkl``, ``*.debug_pkl``) go through
  TorchScript's own C++ unpickler, not Python's (torch/csrc/jit/serialization/unpickler.cpp, read in PyTorch's
  repository: the wheel ships only its header; torch.jit.load calls torch._C.import_ir_module): a GLOBAL resolves
  only to a fixed set (the tensor rebuilders of ``torch._utils`` and ``torch._tensor``, ``torch.*Storage``,
  ``collections.OrderedDict``, ``torch.jit._pickle.*``, ``torch.device``, ``builtins.complex``) or to a TorchScript
  class compiled from the
  archive's ``code/``; anything else is an error, and no Python is imported or called. But that code is
  TorchScript, and it runs: ``__setstate__`` while loading, ``forward`` when run, and TorchScript can call any
  registered operator, ``aten::from_file`` (maps any file, writes through with ``shared=True``) and
  ``prim::Print`` included. torch's own docstring warns that a malicious archive can run arbitrary code. So the
  pickles' globals are checked, and every operator the code calls against the registry less the refused list.
  Its reader finds every entry case-insensitively (``code/x.PY``, ``CODE/``, ``DATA.PKL`` all load: tried).
- ``torch.export.load`` (torch/export/pt2_archive/_package.py, torch/_export/serde/serialize.py): weights and
  constants marked ``use_pickle``, and every ``opaque_obj`` constant, are unpickled by Python with
  ``torch.load(weights_only=False)`` / ``pickle.loads``; the example inputs are ``torch.load``-ed with
  ``weights_only=True`` but retried with ``weights_only=False`` when that fails; every ``expr_str`` of a symbolic
  shape is handed to ``sympy.sympify``, which evaluates it as Python; ``ExportedProgram.module()`` ``exec``-s the
  program's ``guards_code``; an ``aotinductor`` entry is a compiled shared library that it loads and runs; an old
  (2.7) archive goes through ``torch.load`` with the same fallback. It guarantees none of this away, so all of
  it is refused or checked: no pickled payload, no AOTInductor, example-input pickles scanned, ``expr_str``
  limited to sympy's expression classes, no ``guards_code``, node targets against the registry less the refused
  list (the deserializer resolves a target by walking attributes from ``torch``, ``_operator`` or ``math``). It
  takes every entry under ``models/`` (case-sensitively) as a program whatever its suffix, and reads the sample
  inputs, weights and constants by name case-insensitively.
- ``tf.saved_model.load`` runs no function while loading (TF2 restores the variables with a saver it builds
  itself, not with the graph's own), but it registers every function of the library, and a signature or
  restored function may call any of them when run; a SavedModel's graph is arbitrary TensorFlow, file and
  Python ops included. So every node of the meta graph and of every function is checked. The verifier never
  loads a SavedModel through Keras (no ``keras.models.load_model``, so no Keras deserialization to put in safe
  mode); an object graph naming a Keras (or any other) class our export does not write is refused all the same.
- ONNX Runtime refuses external data outside the model's folder and loads custom op libraries only when the
  session registers one (ours never does): checked here anyway, with the domains our export writes.
- coremltools reads a spec as protobuf (``ct.utils.load_spec``); on Linux its MIL loader takes only the base
  name of a weight file; CoreML on macOS resolves ``@model_path`` itself and instantiates the Objective-C class a
  custom layer or custom model names. Checked: manifest and weight paths confined, no custom layer or model.
- OpenVINO loads op extensions only when asked (``Core.add_extension``); an IR naming an op outside the standard
  opsets fails, but the IR's XML is parsed by its own reader (pugixml: UTF-16/32 and Latin-1 too), and it
  looks layer types up case-insensitively, reading ``Const`` and any case of ``Constant`` alike (the latter
  without comparing its shape to its size: tried). Checked: opsets, every layer's offset/size inside the .bin and
  against its shape, UTF-8 only, no DTD.
- LiteRT runs custom and Flex (TensorFlow-kernel) ops only through resolvers or delegates registered by the
  caller; its check of a buffer's offset + size wraps around in unsigned arithmetic. Checked: the identifier, no
  CUSTOM op code, no external buffers, every buffer's offset + size inside the file.
"""

import ast
import io
import json
import os
import pickletools
import re
import stat
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

from rvm_export.contract.errors import RunnerError
from rvm_export.targets import TARGETS, load_entry

MAX_METADATA_BYTES = 256 << 20  # JSON, XML, pickles and code read whole to be inspected; bigger is refused
MAX_ZIP_ENTRIES = 100_000

# --- Allowlists ------------------------------------------------------------------------------------------------
# The operator allowlists of TorchScript, .pt2 and SavedModel graphs are "what cannot act on the machine": every
# operator of the pinned torch's / TensorFlow's registry less the refused families, generated into
# inspection_oplists.py from the registries and the refused lists of inspection_ops.py (how and why there).
# The other sets below are what our own exporters write, collected by running this module's walkers over 39
# artifacts exported with `rvm-export <target> --seed 0` (both variants, both refiners, each precision and
# format option), and what torch's and TensorFlow's own savers write; they are kept as literals, so that an
# exporter change that adds one fails tests/runtimes/test_inspection.py until it is added here on purpose.

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

# ONNX: the domains ONNX Runtime implements itself (no custom op library), and the ops of those domains that
# make it load or run something from outside the graph: EPContext (a precompiled execution-provider binary,
# possibly in a file beside the model) and the training build's PythonOp (calls back into Python).
# Our export writes the default domain only: its refiner gate (rvm::SkipRefinerAtOne, onnx_graph.GATE_DOMAIN)
# is lowered to an If, and its opset import removed, before the file is written.
ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
ONNX_REFUSED_OPS = frozenset({"EPContext", "PythonOp", "PythonOpGrad"})

COREML_MODEL_TYPES = frozenset({"neuralNetwork", "mlProgram"})

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

# --- Messages and paths ----------------------------------------------------------------------------------------


def _show(value: object, limit: int = 160) -> str:
    """A name read from the artifact, quoted and on one line whatever it holds."""
    text = _one_line(repr(str(value)))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _one_line(text: str) -> str:
    """``text`` with every character that is not printable (line and paragraph separators, control and format
    characters: what could start a forged line or rewrite the terminal) written as its escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _refuse(file: Path, what: str) -> RunnerError:
    """The one-line refusal of ``file``: the path and every quoted text stripped of line breaks and controls."""
    return RunnerError(_one_line(f"refusing to run {file}: {what}"))


def _inside(root: Path, target: Path) -> bool:
    """``target`` (already resolved) is ``root`` (already resolved) or below it."""
    return target == root or root in target.parents


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _check_folder(folder: Path, file: Path) -> Path:
    """Every entry below ``folder``: a symlink must resolve inside it, and nothing may be a device, FIFO or
    socket (a loader reading one would block or read the device). Returns the resolved folder."""
    root = _real(folder)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            entry = Path(dirpath) / name
            shown = entry.relative_to(root)
            try:
                mode = entry.lstat().st_mode
            except OSError as exc:
                raise _refuse(file, f"cannot read {_show(shown)} ({exc.strerror})")
            if stat.S_ISLNK(mode):
                target = _real(entry)
                if not _inside(root, target):
                    raise _refuse(file, f"{_show(shown)} is a symlink to {target}, outside the artifact's folder")
                if not target.exists():
                    raise _refuse(file, f"{_show(shown)} is a dangling symlink")
                mode = target.stat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise _refuse(file, f"{_show(shown)} is not a regular file or folder")
    return root


_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _confined(root: Path, name: object, file: Path, what: str, plain: bool = False) -> Path:
    """``name``, a relative path read from the artifact, resolved under ``root``: refused when it is absolute,
    has a URL scheme or a ``..`` part, or resolves (through symlinks) outside ``root``. ``plain``: also only
    letters, digits and ``._-`` in each part (a path a browser fetches as a URL, where %2e%2e is ``..``)."""
    if not isinstance(name, str) or not name:
        raise _refuse(file, f"{what} {_show(name)} is not a relative path")
    parts = name.replace("\\", "/").split("/")
    if (
        "\0" in name
        or name.startswith(("/", "\\"))
        or _URL_SCHEME.match(name)
        or ".." in parts
        or (plain and not all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", p) for p in parts))
    ):
        raise _refuse(file, f"{what} {_show(name)} is not a plain path inside the artifact's folder")
    resolved = _real(root / name)
    if not _inside(_real(root), resolved):
        raise _refuse(file, f"{what} {_show(name)} resolves to {resolved}, outside the artifact's folder")
    return resolved


def _read_limited(path: Path, file: Path, limit: int = MAX_METADATA_BYTES) -> bytes:
    try:
        if path.stat().st_size > limit:
            raise _refuse(file, f"{path.name} is larger than {limit >> 20} MiB, more than any RVM artifact holds")
        return path.read_bytes()
    except OSError as exc:
        raise _refuse(file, f"cannot read {path} ({exc.strerror})")


def _regular_file(path: Path, file: Path) -> None:
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise _refuse(file, f"{path} is not a regular file")
    except OSError as exc:
        raise _refuse(file, f"cannot read {path} ({exc.strerror})")


def _load_json(data: bytes, file: Path, name: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _refuse(file, f"{name} is not readable JSON ({exc.__class__.__name__})")


# --- Pickles -----------------------------------------------------------------------------------------------------

_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
_NO_PUSH_OPS = {"MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "PROTO", "FRAME"}  # leave the stack as it is


def _pickle_globals(data: bytes) -> Iterator[str]:
    """Every ``module.name`` a pickle would import (GLOBAL, STACK_GLOBAL, INST), read from its opcodes without
    unpickling it. A STACK_GLOBAL whose two names are not plain strings pushed just before (or fetched from the
    memo) yields ``<unreadable STACK_GLOBAL>``; extension codes (EXT1/2/4, looked up in copyreg's registry) yield
    ``<EXT>``; both are refused by any allowlist."""
    memo: Dict[int, Optional[str]] = {}
    recent: List[Optional[str]] = [None, None]  # the last two values pushed, when strings
    for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
        name = opcode.name
        if name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            yield f"{module}.{attr}"
        elif name == "STACK_GLOBAL":
            module, attr = recent
            yield f"{module}.{attr}" if module is not None and attr is not None else "<unreadable STACK_GLOBAL>"
        elif name.startswith("EXT"):
            yield "<EXT>"
        if name in _STRING_OPS:
            value: Optional[str] = arg if isinstance(arg, str) else arg.decode("latin-1")
            recent = [recent[1], value]
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[1]
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = recent[1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            recent = [recent[1], memo.get(int(arg))]
        elif name == "MARK":  # the unpickler starts a new, empty stack
            recent = [None, None]
        elif name not in _NO_PUSH_OPS:
            recent = [recent[1], None]


def _check_pickle(data: bytes, file: Path, entry: str, allowed: Callable[[str], bool], loader: str) -> None:
    try:
        found = list(_pickle_globals(data))
    except Exception as exc:  # pickletools raises ValueError and others on a damaged stream
        raise _refuse(file, f"{_show(entry)} is not a readable pickle ({exc.__class__.__name__}: {exc})")
    for name in found:
        if not allowed(name):
            raise _refuse(file, f"{_show(entry)} references {_show(name)}, which {loader} would import and call")


# --- Zip archives (TorchScript, .pt2) ----------------------------------------------------------------------------


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _loader_key(name: str) -> str:
    """The name by which torch's zip reader finds an entry: it compares names case-insensitively, folding ASCII
    letters only (caffe2/serialize/inline_container.cc looks records up with miniz's mz_zip_reader_locate_file
    without MZ_ZIP_FLAG_CASE_SENSITIVE, whose MZ_TOLOWER folds A-Z; tried: ``code/x.PY``, ``CODE/``, ``DATA.PKL``
    all load, an ``É`` does not match ``é``). Folding the decoded name folds the stored bytes the same way:
    ASCII bytes are the same characters in UTF-8 and in cp437, and no other byte decodes to one."""
    return name.translate(_ASCII_LOWER)


def _zip_entries(path: Path, file: Path, data: Optional[bytes] = None) -> Tuple[zipfile.ZipFile, List[str]]:
    """The archive and its entry names: refused when it is not a zip, or an entry is absolute, has a ``..``
    part, a backslash or a NUL, or appears twice, also when two names differ only in case (torch's reader finds
    entries case-insensitively: it and Python's would then read different entries)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if data is not None else path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _refuse(file, f"{path.name if data is None else 'an entry'} is not a zip archive ({exc})")
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise _refuse(file, f"the archive has {len(infos)} entries, more than any RVM artifact")
    seen: Dict[str, str] = {}
    for info in infos:
        name = info.filename
        parts = name.split("/")
        if (
            name.startswith("/")
            or "\\" in name
            or "\0" in info.orig_filename  # zipfile cuts a name at a NUL; the C++ reader does not
            or ".." in parts
            or re.match(r"^[A-Za-z]:", name)
        ):
            raise _refuse(file, f"archive entry {_show(info.orig_filename)} is not a relative path inside the archive")
        key = _loader_key(name)
        if key in seen:
            if seen[key] == name:
                raise _refuse(file, f"archive entry {_show(name)} appears twice")
            raise _refuse(file, f"archive entries {_show(seen[key])} and {_show(name)} differ only in case, and "
                          "torch's reader finds entries case-insensitively")  # fmt: skip
        seen[key] = name
    return archive, [info.filename for info in infos]


def _read_entry(archive: zipfile.ZipFile, name: str, file: Path) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_METADATA_BYTES:
        raise _refuse(file, f"archive entry {_show(name)} is larger than {MAX_METADATA_BYTES >> 20} MiB")
    try:
        return archive.read(name)
    except Exception as exc:  # zlib, CRC, encryption errors
        raise _refuse(file, f"archive entry {_show(name)} cannot be read ({exc.__class__.__name__})")


def _strip_prefix(names: List[str], file: Path) -> Tuple[str, Dict[str, str]]:
    """torch's archives keep every entry under one top folder (its name is free): {entry without it: entry}."""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) != 1 or any("/" not in n for n in names):
        raise _refuse(file, f"the archive's entries are not under one top folder ({', '.join(sorted(tops)[:3])})")
    prefix = tops.pop() + "/"
    return prefix, {n[len(prefix) :]: n for n in names}


# --- TorchScript -------------------------------------------------------------------------------------------------


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
        raise _refuse(file, f"{_show(entry)} is not TorchScript source ({exc.__class__.__name__})")
    for name in sorted(names):
        op = _torch_op(name)
        if op is None:
            raise _refuse(file, f"{_show(entry)} uses {_show(name)}, which is not an operator")
        if op not in TORCH_OPS:
            why = torch_refusal(op) or f"is not an operator of torch {TORCH_VERSION}'s registry"
            raise _refuse(file, f"{_show(entry)} calls {_show(name)} ({op}), which {why}")
    for method in sorted(methods):
        if f"aten::{method}" in TORCH_REFUSED:
            why = TORCH_REFUSED[f"aten::{method}"]
            raise _refuse(file, f"{_show(entry)} calls a method {_show(method)}, which as aten::{method} {why}")
    for name in sorted(calls):
        if name not in TORCHSCRIPT_BUILTINS:
            why = "prints to the process's stdout" if name == "print" else "is not one of TorchScript's builtins"
            raise _refuse(file, f"{_show(entry)} calls {_show(name)}, which {why}")


# The entries torch.jit.load may open besides pickles and code (torch/csrc/jit/serialization/import.cpp:
# tensor records "data/<key>", "constants/<key>" and "traced_inputs/<key>" (torch.jit.trace stores its example
# inputs, traced_inputs.pkl), the version and byte-order records; "extra/*" only by the
# names the caller asks for, returned as bytes), by their case-folded names. Anything else is refused: the
# loader finds entries by name case-insensitively, so an entry the inspection does not read as what it is might
# still be opened as something (a legacy model.json, say, which sends the archive to the legacy importer).
_TORCHSCRIPT_DATA = re.compile(
    r"(data|constants|traced_inputs)/[0-9]+|\.data/version|version|byteorder|\.data/serialization_id|extra/.+"
)


def inspect_torchscript(path: Path) -> None:
    _regular_file(path, path)
    archive, names = _zip_entries(path, path)
    _, entries = _strip_prefix(names, path)
    with archive:
        for rel, name in entries.items():
            key = _loader_key(rel)
            if key.endswith("pkl"):  # data.pkl, constants.pkl, code/**.debug_pkl (bytecode.pkl: mobile)
                data = _read_entry(archive, name, path)
                _check_pickle(data, path, name, _torchscript_global_allowed, "torch.jit.load")
            elif key.endswith(".py"):  # code/**.py, found case-insensitively: code/x.PY and CODE/ are code too
                _check_torchscript_code(_read_entry(archive, name, path), path, name)
            elif not _TORCHSCRIPT_DATA.fullmatch(key) and not key.endswith("/"):
                raise _refuse(path, f"archive entry {_show(name)} is not one the inspection knows how torch.jit.load "
                              "reads (code, a pickle, a tensor record or a version record)")  # fmt: skip


# --- torch.export (.pt2) -----------------------------------------------------------------------------------------

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
        raise _refuse(file, f"{_show(entry)} is not a torch.export payload config")
    for fqn, meta in config["config"].items():
        if not isinstance(meta, dict):
            raise _refuse(file, f"{_show(entry)}: payload {_show(fqn)} is not described")
        name = meta.get("path_name")
        if meta.get("use_pickle"):
            raise _refuse(
                file, f"{_show(fqn)} is stored as a pickle, which torch.export.load unpickles with weights_only=False"
            )
        if folder == "data/constants/" and not str(name).startswith("tensor_"):
            raise _refuse(file, f"constant {_show(fqn)} ({_show(name)}) is an object torch.export.load unpickles")
        if (
            not isinstance(name, str)
            or "/" in name
            or name in ("", ".", "..")
            or _loader_key(folder + name) not in files
        ):
            raise _refuse(file, f"{_show(entry)}: payload path {_show(name)} is not an entry of the archive")


# The records torch.export.load reads as plain bytes or strings (torch/export/pt2_archive/_package.py), by their
# case-folded names; the payload entries of data/weights/ and data/constants/ too (raw tensor bytes).
_PT2_RECORDS = re.compile(r"archive_format|archive_version|\.data/version|version|byteorder|\.data/serialization_id|"
                          r"extra/.+")  # fmt: skip


def inspect_pt2(path: Path) -> None:
    _regular_file(path, path)
    archive, names = _zip_entries(path, path)
    _, entries = _strip_prefix(names, path)
    files = {_loader_key(rel) for rel in entries}
    with archive:
        # torch.export.load takes every entry whose name starts with "models/" (case-sensitively: a listing) as a
        # program, whatever its suffix: "models/x.JSON" is program "x", and its data/sample_inputs/x.pt, weights
        # and constants are then read by name, case-insensitively. So every such entry is read as a program,
        # and every other entry by its case-folded name.
        if not any(rel.startswith("models/") for rel in entries):
            raise _refuse(path, "it is not a torch.export archive of the current format (no models/*.json); an old "
                          "archive is loaded through torch.load(weights_only=False)")  # fmt: skip
        for rel, name in sorted(entries.items()):
            key = _loader_key(rel)
            last = key.rsplit("/", 1)[-1]
            suffix = last.rsplit(".", 1)[-1] if "." in last else ""
            if key.startswith("data/aotinductor/") or suffix in ("so", "dll", "dylib", "cpp", "pyd"):
                raise _refuse(path, f"{_show(name)} is compiled code (AOTInductor) that torch.export.load would run")
            if rel.startswith("models/"):
                _check_pt2_program(_load_json(_read_entry(archive, name, path), path, name), path, name)
            elif key.startswith(("data/weights/", "data/constants/")) and key.endswith("_config.json"):
                config = _load_json(_read_entry(archive, name, path), path, name)
                _check_pt2_payloads(config, path, name, files, key.rsplit("/", 1)[0] + "/")
            elif key.startswith(("data/weights/", "data/constants/")) and suffix == "pt":
                raise _refuse(path, f"{_show(name)} is a legacy pickled payload torch.export.load would unpickle")
            elif key.startswith("data/sample_inputs/") or suffix in ("pt", "pkl", "pth"):
                _check_pt2_pickled(_read_entry(archive, name, path), path, name)
            elif not (key.startswith(("data/weights/", "data/constants/")) or _PT2_RECORDS.fullmatch(key)):
                raise _refuse(path, f"archive entry {_show(name)} is not one the inspection knows how "
                              "torch.export.load reads (a program, a payload, its config, the sample inputs or a "
                              "version record)")  # fmt: skip


def _check_pt2_pickled(data: bytes, file: Path, entry: str) -> None:
    """A torch.save file inside the archive (the example inputs): a zip whose pickles are scanned (torch.load
    finds its entries case-insensitively too), or a pickle."""
    if data[:4] == b"PK\x03\x04":
        inner, names = _zip_entries(file, file, data)
        with inner:
            for name in names:
                if _loader_key(name).endswith(".pkl"):
                    data_pkl = _read_entry(inner, name, file)
                    _check_pickle(data_pkl, file, f"{entry}/{name}", _pt2_pickle_allowed, "torch.export.load")
    else:
        _check_pickle(data, file, entry, _pt2_pickle_allowed, "torch.export.load")


def _check_pt2_program(program: Any, file: Path, entry: str) -> None:
    targets, sympy, guards = _pt2_program_facts(program)
    if guards:
        raise _refuse(file, f"{_show(entry)} carries guards_code {_show(guards[0])}, Python that "
                      "ExportedProgram.module() executes")  # fmt: skip
    for name in sorted(sympy):
        if name not in PT2_SYMPY_NAMES:
            raise _refuse(file, f"{_show(entry)} has a shape expression with {_show(name)}, which sympy would "
                          "evaluate as Python")  # fmt: skip
    for target in sorted(targets):
        problem = _pt2_target_problem(target)
        if problem:
            raise _refuse(file, f"{_show(entry)} calls {_show(target)}, which {problem}")


# --- TensorFlow SavedModel ---------------------------------------------------------------------------------------


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
        return f"op {_show(op)} {why}"
    if allowed is not None:
        return f"op {_show(op)} is not one a checkpoint function of tf.saved_model.save holds"
    return f"op {_show(op)} is not an op of TensorFlow {TENSORFLOW_VERSION}'s registry"


def _inspect_meta_graph(meta_graph: Any, file: Path, folder: Path) -> None:
    functions, save, restore = _saved_model_roles(meta_graph)
    graph = meta_graph.graph_def
    saver = meta_graph.saver_def
    saver_nodes = {t.split(":")[0].lstrip("^") for t in (saver.save_tensor_name, saver.restore_op_name) if t}
    both = save & restore
    if both:
        raise _refuse(file, f"function {_show(sorted(both)[0])} is both the checkpoint save and restore function")
    # The model part: every main-graph node but the saver's two, and every function not the saver's.
    for node in graph.node:
        if node.op in functions:
            continue
        problem = _tf_op_problem(node.op)
        if problem:
            raise _refuse(file, f"{problem} (node {_show(node.name)} of the main graph)")
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
            raise _refuse(file, f"its object graph holds a {_show(node.user_object.identifier)} object, which "
                          "an RVM SavedModel does not")  # fmt: skip
        if node.registered_saver:
            raise _refuse(file, f"it restores through the registered saver {_show(node.registered_saver)}")
    model_roots.update(meta_graph.object_graph_def.concrete_functions.keys())
    called = _tf_reach(model_roots, functions) & (save | restore)
    if called:
        raise _refuse(file, f"function {_show(sorted(called)[0])}, a checkpoint function, is called by the model")
    for name, function in functions.items():
        allowed = TF_SAVE_OPS if name in save else TF_RESTORE_OPS if name in restore else None
        for node in function.node_def:
            if node.op in functions:
                continue
            problem = _tf_op_problem(node.op, allowed)
            if problem:
                raise _refuse(file, f"{problem} (in function {_show(name)})")
        if name in restore:  # RestoreV2 reads the checkpoint the loader names: the function's first argument
            first = function.signature.input_arg[0].name if function.signature.input_arg else None
            for node in function.node_def:
                if node.op == "RestoreV2" and (not node.input or node.input[0] != first):
                    raise _refuse(file, f"{_show(node.name)} in {_show(name)} restores from "
                                  f"{_show(node.input[0] if node.input else '')}, not the loader's variables path")  # fmt: skip
    assets = folder / "assets"
    for asset in meta_graph.asset_file_def:
        _confined(assets, asset.filename, file, "asset")
    for key, collection in meta_graph.collection_def.items():
        for value in collection.any_list.value:
            if value.type_url.endswith("tensorflow.AssetFileDef"):
                from tensorflow.core.protobuf import meta_graph_pb2

                asset = meta_graph_pb2.AssetFileDef()
                asset.ParseFromString(value.value)
                _confined(assets, asset.filename, file, f"asset (collection {_show(key)})")


def _read_saved_model(folder: Path, file: Path) -> Any:
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    pb, pbtxt = folder / "saved_model.pb", folder / "saved_model.pbtxt"
    try:
        if pb.exists():
            saved.ParseFromString(_read_limited(pb, file, 2 << 30))
        elif pbtxt.exists():
            from google.protobuf import text_format

            text_format.Parse(_read_limited(pbtxt, file).decode("utf-8"), saved)
        else:
            raise _refuse(file, "it has no saved_model.pb")
    except RunnerError:
        raise
    except Exception as exc:  # protobuf's DecodeError, text_format.ParseError, UnicodeDecodeError
        raise _refuse(file, f"its saved_model.pb is not a readable SavedModel ({exc.__class__.__name__})")
    return saved


def inspect_tensorflow(path: Path) -> None:
    if not path.is_dir():
        raise _refuse(path, "a SavedModel is a folder")
    folder = _check_folder(path, path)
    for meta_graph in _read_saved_model(folder, path).meta_graphs:
        _inspect_meta_graph(meta_graph, path, folder)


# --- TF.js ---------------------------------------------------------------------------------------------------------


def inspect_tfjs(path: Path) -> None:
    folder = path.parent if path.name == "model.json" else path
    model_json = folder / "model.json"
    root = _check_folder(folder, path)
    _confined(root, "model.json", path, "model.json")
    _regular_file(model_json, path)
    model = _load_json(_read_limited(model_json, path), path, "model.json")
    if not isinstance(model, dict) or not isinstance(model.get("modelTopology"), dict):
        raise _refuse(path, "model.json is not a TF.js graph model")
    manifest = model.get("weightsManifest", [])
    if not isinstance(manifest, list):
        raise _refuse(path, "model.json's weightsManifest is not a list")
    for group in manifest:
        paths = group.get("paths", []) if isinstance(group, dict) else None
        if not isinstance(paths, list):
            raise _refuse(path, "a weightsManifest group has no list of paths")
        for name in paths:
            _confined(root, name, path, "weights path", plain=True)


# --- ONNX --------------------------------------------------------------------------------------------------------


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


def inspect_onnx(path: Path) -> None:
    import onnx

    _regular_file(path, path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and friends: a damaged file
        raise _refuse(path, f"it is not a readable ONNX model ({exc.__class__.__name__})")
    folder = path.parent
    for opset in model.opset_import:
        if opset.domain not in ONNX_DOMAINS:
            raise _refuse(path, f"it imports the custom op domain {_show(opset.domain)}, which ONNX Runtime "
                          "implements only through a custom op library")  # fmt: skip
    if model.functions:
        function = model.functions[0]
        raise _refuse(path, f"it defines the function {_show(function.domain + '::' + function.name)}; an RVM "
                      "graph defines none")  # fmt: skip
    for graph in _onnx_graphs(model):
        for node in graph.node:
            op = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
            if node.domain not in ONNX_DOMAINS:
                raise _refuse(path, f"node {_show(node.name)} is {_show(op)}, a custom op ONNX Runtime runs only "
                              "from a custom op library")  # fmt: skip
            if node.op_type in ONNX_REFUSED_OPS:
                raise _refuse(path, f"node {_show(node.name)} is {_show(op)}, which loads or runs code from "
                              "outside the graph")  # fmt: skip
        for tensor in _onnx_tensors(graph):
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                continue
            entries = {e.key: e.value for e in tensor.external_data}
            _confined(folder, entries.get("location"), path, f"external data of {_show(tensor.name)} at")


# --- CoreML ------------------------------------------------------------------------------------------------------


def _coreml_models(spec: Any) -> Iterator[Any]:
    """The model and every model of its pipelines."""
    stack = [spec]
    while stack:
        model = stack.pop()
        yield model
        kind = model.WhichOneof("Type")
        if kind in ("pipeline", "pipelineClassifier", "pipelineRegressor"):
            stack.extend(getattr(model, kind).pipeline.models if kind != "pipeline" else model.pipeline.models)


def _coreml_ops(spec: Any) -> Tuple[Set[str], Set[str], Set[str]]:
    """An ML Program's op types (nested blocks included), a NeuralNetwork's layer kinds, and the ML Program's
    weight file names (its blobFileValue fileNames)."""
    ops: Set[str] = set()
    layers: Set[str] = set()
    blobs: Set[str] = set()
    for model in _coreml_models(spec):
        kind = model.WhichOneof("Type")
        if kind == "mlProgram":
            blocks = [b for f in model.mlProgram.functions.values() for b in f.block_specializations.values()]
            while blocks:
                block = blocks.pop()
                for op in block.operations:
                    ops.add(op.type)
                    blocks.extend(op.blocks)
                    values = list(op.attributes.values()) + [
                        a.value for arg in op.inputs.values() for a in arg.arguments if a.HasField("value")
                    ]
                    blobs.update(v.blobFileValue.fileName for v in values if v.WhichOneof("value") == "blobFileValue")
        elif kind and kind.startswith("neuralNetwork"):
            layers.update(layer.WhichOneof("layer") for layer in getattr(model, kind).layers)
    return ops, layers, blobs


def _read_coreml_spec(model_file: Path, file: Path) -> Any:
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    try:
        spec.ParseFromString(_read_limited(model_file, file, 2 << 30))
    except RunnerError:
        raise
    except Exception as exc:  # protobuf's DecodeError
        raise _refuse(file, f"{model_file.name} is not a readable CoreML spec ({exc.__class__.__name__})")
    return spec


def _inspect_coreml_spec(spec: Any, file: Path, model_dir: Optional[Path], package: Optional[Path]) -> None:
    for model in _coreml_models(spec):
        kind = model.WhichOneof("Type")
        if kind == "neuralNetwork":
            for layer in model.neuralNetwork.layers:
                if layer.WhichOneof("layer") == "custom":
                    raise _refuse(file, f"layer {_show(layer.name)} is a custom layer (class "
                                  f"{_show(layer.custom.className)}) CoreML would load code for")  # fmt: skip
        elif kind == "customModel":
            raise _refuse(file, f"it is a custom model (class {_show(model.customModel.className)}) CoreML would "
                          "load code for")  # fmt: skip
        elif kind not in COREML_MODEL_TYPES:
            raise _refuse(file, f"it holds a {_show(kind)} model, not a neural network or ML Program")
    ops, layers, blobs = _coreml_ops(spec)
    for blob in sorted(blobs):
        if package is None or model_dir is None or not blob.startswith("@model_path/"):
            raise _refuse(file, f"weight file {_show(blob)} is not inside the model package (@model_path/...)")
        resolved = _confined(model_dir, blob[len("@model_path/") :], file, "weight file")
        if not _inside(package, resolved):
            raise _refuse(file, f"weight file {_show(blob)} resolves to {resolved}, outside the model package")


def inspect_coreml(path: Path) -> None:
    if path.is_dir():
        package = _check_folder(path, path)
        manifest_file = path / "Manifest.json"
        _confined(package, "Manifest.json", path, "Manifest.json")
        _regular_file(manifest_file, path)
        manifest = _load_json(_read_limited(manifest_file, path), path, "Manifest.json")
        items = manifest.get("itemInfoEntries") if isinstance(manifest, dict) else None
        if not isinstance(items, dict):
            raise _refuse(path, "Manifest.json has no itemInfoEntries")
        data = package / "Data"
        for key, item in items.items():
            where = item.get("path") if isinstance(item, dict) else None
            resolved = _confined(data, where, path, f"Manifest.json entry {_show(key)} path")
            if not _inside(package, resolved):
                raise _refuse(path, f"Manifest.json entry {_show(key)} resolves outside the package")
        root = items.get(manifest.get("rootModelIdentifier"))
        if not isinstance(root, dict):
            raise _refuse(path, "Manifest.json's rootModelIdentifier names no entry")
        model_file = _real(data / root["path"])
        _regular_file(model_file, path)
        _inspect_coreml_spec(_read_coreml_spec(model_file, path), path, model_file.parent, package)
    else:
        _regular_file(path, path)
        _inspect_coreml_spec(_read_coreml_spec(path, path), path, None, None)


# --- OpenVINO ----------------------------------------------------------------------------------------------------

_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_XML_ENCODING = re.compile(r"""<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")


def _utf8_xml(xml: bytes) -> str:
    """The XML's text when it is UTF-8 (or ASCII), refused (ValueError) otherwise: OpenVINO's reader (pugixml)
    also takes UTF-16, UTF-32 and Latin-1 by their byte-order mark or declaration, in which a byte search for
    ``<!DOCTYPE`` sees nothing; only UTF-8 is accepted, and the DTD check reads the decoded text."""
    if xml.startswith((b"\xfe\xff", b"\xff\xfe")) or b"\0" in xml:
        raise ValueError("it is not UTF-8 (a UTF-16 or UTF-32 byte-order mark or NUL bytes)")
    try:
        text = xml.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 (byte {exc.start})")
    declared = _XML_ENCODING.match(text.lstrip("\ufeff"))
    if declared and declared.group(1).lower() not in ("utf-8", "utf8", "us-ascii", "ascii"):
        raise ValueError(f"it declares the encoding {declared.group(1)!r}; only UTF-8 is accepted")
    return text


def _openvino_layers(xml: bytes) -> List[Tuple[str, str, Dict[str, str]]]:
    """(type, version, data attributes) of every layer of an IR, nested bodies included. Refuses (ValueError)
    an XML that is not UTF-8 or declares a DTD or entities, before parsing it."""
    import xml.etree.ElementTree as ElementTree

    text = _utf8_xml(xml)
    if _DTD.search(text):
        raise ValueError("it declares a DTD or entities")
    root = ElementTree.fromstring(xml)
    if root.tag != "net":
        raise ValueError(f"its root element is <{root.tag}>, not <net>")
    layers = []
    for layer in root.iter("layer"):
        data = layer.find("data")
        layers.append((layer.get("type", ""), layer.get("version", ""), dict(data.attrib) if data is not None else {}))
    return layers


# Bits per element of OpenVINO's element types (openvino/core/type/element_type.hpp), for the bytes a constant of
# a shape needs; a type outside it is not checked that way (its offset and size still are).
_OV_ELEMENT_BITS = {
    "boolean": 8, "bf16": 16, "f16": 16, "f32": 32, "f64": 64, "i4": 4, "i8": 8, "i16": 16, "i32": 32, "i64": 64,
    "u1": 1, "u2": 2, "u3": 3, "u4": 4, "u6": 6, "u8": 8, "u16": 16, "u32": 32, "u64": 64, "nf4": 4,
    "f8e4m3": 8, "f8e5m2": 8, "f8e8m0": 8, "f4e2m1": 4,
}  # fmt: skip


def _check_openvino_weights(path: Path, kind: str, data: Dict[str, str], size: int) -> None:
    """A layer's ``offset``/``size`` into the .bin: plain decimal numbers, ``offset + size`` within the file (in
    Python's integers, so no overflow), and at least the bytes its shape and element type need. OpenVINO looks
    layer types up case-insensitively and reads ``Const`` and any case of ``Constant`` alike (the latter without
    its own shape check: tried), so this runs for every layer that has either attribute, whatever its type."""
    shown = f"layer type {_show(kind)}"
    values = {k: data[k] for k in ("offset", "size") if k in data}
    if not all(re.fullmatch(r"[0-9]{1,20}", v.strip()) for v in values.values()):
        raise _refuse(path, f"a {shown}'s offset/size {_show(values)} are not plain numbers")
    offset, length = int(values.get("offset", "0")), int(values.get("size", "0"))
    if offset + length > size:
        raise _refuse(path, f"a {shown} reads bytes {offset}..{offset + length} of {path.stem}.bin, which holds {size}")
    bits = _OV_ELEMENT_BITS.get(data.get("element_type", "").strip().lower())
    dims = [d.strip() for d in data.get("shape", "").split(",") if d.strip()]
    if bits and all(re.fullmatch(r"[0-9]{1,20}", d) for d in dims):
        count = 1
        for d in dims:
            count *= int(d)
        needed = (count * bits + 7) // 8
        if needed > length:
            raise _refuse(path, f"a {shown} of shape [{', '.join(dims)}] needs {needed} bytes and its size is {length}")


def _companion_bin_size(path: Path) -> int:
    """Bytes of the ``.bin`` beside ``path`` (OpenVINO, ncnn), refused when it resolves outside the model's folder
    or is not a regular file; 0 when there is none."""
    weights = path.with_suffix(".bin")
    if weights.exists() or weights.is_symlink():
        if not _inside(_real(path).parent, _real(weights)):
            raise _refuse(path, f"{weights.name} resolves to {_real(weights)}, outside the model's folder")
        _regular_file(weights, path)
    return weights.stat().st_size if weights.exists() else 0


def inspect_openvino(path: Path) -> None:
    _regular_file(path, path)
    size = _companion_bin_size(path)
    try:
        layers = _openvino_layers(_read_limited(path, path))
    except ValueError as exc:  # our refusal of a DTD, or ElementTree's ParseError (a ValueError... not always)
        raise _refuse(path, f"the IR's XML is refused: {exc}")
    except Exception as exc:  # xml.etree.ElementTree.ParseError
        raise _refuse(path, f"the IR's XML is not readable ({exc.__class__.__name__}: {exc})")
    for kind, version, data in layers:
        if not re.fullmatch(r"opset[0-9]+", version):
            raise _refuse(path, f"layer type {_show(kind)} comes from {_show(version)}, not a standard opset: "
                          "an extension OpenVINO would load code for")  # fmt: skip
        if "offset" in data or "size" in data:
            _check_openvino_weights(path, kind, data, size)


# --- LiteRT ------------------------------------------------------------------------------------------------------


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


def inspect_tflite(path: Path) -> None:
    _regular_file(path, path)
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise _refuse(path, f"it is not a LiteRT flatbuffer (identifier {head[4:8]!r}, expected b'TFL3')")
    schema = _tflite_schema()
    if schema is None:  # nothing to read the op codes with: the identifier is all that is checked
        return
    try:
        data = _read_limited(path, path, 2 << 30)
        codes = _tflite_ops(data, schema)
        problem = _tflite_buffer_problem(data, schema)
    except RunnerError:
        raise
    except Exception as exc:  # a damaged flatbuffer: struct.error, IndexError...
        raise _refuse(path, f"its flatbuffer is not readable ({exc.__class__.__name__})")
    if problem:
        raise _refuse(path, problem)
    for name, custom in codes:
        if name == "<external buffers>":
            raise _refuse(path, f"its weights are in external buffer group {_show(custom)}, a file outside the "
                          "flatbuffer; an RVM model keeps them inside")  # fmt: skip
        if name == "CUSTOM" or custom is not None:
            raise _refuse(path, f"custom op {_show(custom)} needs code LiteRT would have to load (a custom op "
                          "resolver or the Flex delegate)")  # fmt: skip


# --- ncnn --------------------------------------------------------------------------------------------------------

# ncnn's built-in layers (src/CMakeLists.txt's ncnn_add_layer list, ncnn 1.0.20261020). A type outside it loads
# only when the app registers a custom layer: code of its own that the artifact would then pick.
NCNN_LAYERS = frozenset(
    """AbsVal ArgMax BatchNorm Bias BNLL Concat Convolution Crop Deconvolution Dropout Eltwise ELU Embed Exp Flatten
    InnerProduct Input Log LRN MemoryData MVN Pooling Power PReLU Proposal Reduction ReLU Reshape ROIPooling Scale
    Sigmoid Slice Softmax Split SPP TanH Threshold Tile RNN LSTM BinaryOp UnaryOp ConvolutionDepthWise Padding Squeeze
    ExpandDims Normalize Permute PriorBox DetectionOutput Interp DeconvolutionDepthWise ShuffleChannel InstanceNorm
    Clip Reorg YoloDetectionOutput Quantize Dequantize Yolov3DetectionOutput PSROIPooling ROIAlign Packing Requantize
    Cast HardSigmoid SELU HardSwish Noop PixelShuffle DeepCopy Mish StatisticsPooling Swish Gemm GroupNorm LayerNorm
    Softplus GRU MultiHeadAttention GELU Convolution1D Pooling1D ConvolutionDepthWise1D Convolution3D
    ConvolutionDepthWise3D Pooling3D MatMul Deconvolution1D DeconvolutionDepthWise1D Deconvolution3D
    DeconvolutionDepthWise3D Einsum DeformableConv2D GLU Fold Unfold GridSample CumulativeSum CopyTo Erf Diag CELU
    Shrink RMSNorm Spectrogram InverseSpectrogram Flip SDPA RotaryEmbed""".split()
)
NCNN_MAX_LAYERS = 100_000
# Layers whose weights are in the .bin, and the parameter that gives their element count (weight_data_size):
# each is at least 2 bytes an element (fp16), so a count the .bin cannot hold is refused before ncnn allocates it.
NCNN_WEIGHT_COUNT = {"Convolution": "6", "ConvolutionDepthWise": "6", "Deconvolution": "6",
                     "DeconvolutionDepthWise": "6", "InnerProduct": "2", "Gemm": None}  # fmt: skip


def inspect_ncnn(path: Path) -> None:
    from rvm_export.contract import ncnn_param

    _regular_file(path, path)
    size = _companion_bin_size(path)
    try:
        param = ncnn_param.parse(_read_limited(path, path).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _refuse(path, f"its .param is not one ncnn reads as rvm-export writes it ({exc})")
    if len(param.layers) > NCNN_MAX_LAYERS:
        raise _refuse(path, f"it declares {len(param.layers)} layers, more than any RVM graph")
    extra = [line for line in param.trailer if not line.startswith(ncnn_param.METADATA_PREFIX)]
    if extra or len(param.trailer) > 1:
        raise _refuse(path, "text after the last layer that is not one rvm metadata line")
    made: Set[str] = set()
    read: Set[str] = set()
    weight_bytes = 0
    for layer in param.layers:
        if layer.type not in NCNN_LAYERS:
            raise _refuse(path, f"layer type {_show(layer.type)} is not one of ncnn's built-in layers: a custom "
                          "layer the app would have to register code for")  # fmt: skip
        for blob in layer.bottoms:
            if blob not in made:
                raise _refuse(
                    path, f"layer {_show(layer.name)} reads blob {_show(blob)}, which no earlier layer writes"
                )
            if blob in read:  # ncnn gives a blob one consumer (Split makes copies); two crash it (SIGSEGV)
                raise _refuse(path, f"blob {_show(blob)} is read by two layers; ncnn needs a Split between them")
            read.add(blob)
        for blob in layer.tops:
            if blob in made:
                raise _refuse(path, f"blob {_show(blob)} is written twice")
            made.add(blob)
        for key in layer.params:
            number = -int(key) - 23300 if int(key) <= -23300 else int(key)
            if not 0 <= number < 32:  # NCNN_MAX_PARAM_COUNT
                raise _refuse(path, f"layer {_show(layer.name)} has parameter {key}, outside ncnn's 0..31")
        try:
            key = NCNN_WEIGHT_COUNT.get(layer.type, "")
            if key:
                weight_bytes += 2 * max(layer.integer(key), 0)
            if layer.type == "MemoryData":
                dims = [max(layer.integer(k), 1) for k in ("0", "1", "11", "2")]
                weight_bytes += 4 * dims[0] * dims[1] * dims[2] * dims[3]
        except ValueError as exc:
            raise _refuse(path, str(exc))
    if len(made) != param.blob_count:
        raise _refuse(path, f"it declares {param.blob_count} blobs and its layers write {len(made)}")
    if weight_bytes > size:
        raise _refuse(path, f"its layers declare {weight_bytes} bytes of weights and {path.stem}.bin holds {size}")


# --- ExecuTorch (.pte) ---------------------------------------------------------------------------------------------

# ExecuTorch runs only the kernels and backends the app (here: the pip wheel) linked: an operator is looked up by
# name in the kernel registry, a delegate's payload is handed to the backend its id names. So what is checked is
# that the program names nothing but what our lowering writes: methods `forward` and the constant `rvm_metadata`,
# the XNNPACK delegate, and the portable operators it leaves outside the delegate (collected from our exports).
PTE_METHODS = frozenset({"forward", "rvm_metadata"})
PTE_DELEGATES = frozenset({"XnnpackBackend"})
# The operators and the EValue kinds of each one's arguments (its ATen ``.out`` schema, then the out tensor again
# as the emitter writes it): a portable kernel reads an argument with ``toInt()``, ``toTensor()``... and aborts the
# process when the kind is another (found by fuzzing). Kinds are the KernelTypes tags of program.fbs.
_N, _I, _B, _D, _T, _IL, _TL = 1, 2, 3, 4, 5, 7, 10
PTE_CALLS: Dict[str, Tuple[frozenset, ...]] = {
    name: tuple(frozenset(kinds) for kinds in args)
    for name, args in {
        "aten::alias_copy.out": ([_T], [_T], [_T]),
        "aten::avg_pool2d.out": ([_T], [_IL], [_IL], [_IL], [_B], [_B], [_I, _N], [_T], [_T]),
        "aten::convolution.out": ([_T], [_T], [_T, _N], [_IL], [_IL], [_IL], [_B], [_IL], [_I], [_T], [_T]),
        "aten::expand_copy.out": ([_T], [_IL], [_B], [_T], [_T]),
        "aten::full.out": ([_IL], [_I, _D, _B], [_T], [_T]),
        "aten::mean.out": ([_T], [_IL, _N], [_B], [_I, _N], [_T], [_T]),
        "aten::split_with_sizes_copy.out": ([_T], [_IL], [_I], [_TL], [_TL]),
        "dim_order_ops::_to_dim_order_copy.out": ([_T], [_B], [_IL, _N], [_T], [_T]),
    }.items()
}
PTE_OPERATORS = frozenset(PTE_CALLS)


def inspect_executorch(path: Path) -> None:
    from .pte_format import PteError, read_pte

    _regular_file(path, path)
    data = _read_limited(path, path, 2 << 30)
    try:
        program = read_pte(data)
    except PteError as exc:
        raise _refuse(path, str(exc))
    for name, method in program.methods.items():
        if name not in PTE_METHODS:
            raise _refuse(path, f"method {_show(name)} is not one an RVM program has (forward, rvm_metadata)")
        for delegate in method.delegates:
            if delegate not in PTE_DELEGATES:
                raise _refuse(path, f"delegate {_show(delegate)} is not XnnpackBackend, the only backend an RVM "
                              "program is lowered to")  # fmt: skip
        for operator in method.operators:
            if operator not in PTE_OPERATORS:
                raise _refuse(path, f"operator {_show(operator)} is not one our ExecuTorch programs call")
        for callee, kinds in method.calls:
            expected = PTE_CALLS.get(callee)
            if expected is None:  # a delegate: XNNPACK takes tensors only
                if any(kind != _T for kind in kinds):
                    raise _refuse(path, f"a call of delegate {_show(callee)} passes a value that is not a tensor")
            elif len(kinds) != len(expected) or any(k not in e for k, e in zip(kinds, expected, strict=True)):
                raise _refuse(path, f"a call of {_show(callee)} passes arguments of kinds {list(kinds)}, not its "
                              "schema's")  # fmt: skip
    base, end = program.header["segment_base_offset"], len(data)
    for offset, size in program.segments:
        if base + offset + size > end:
            raise _refuse(path, f"a data segment ({size} bytes at {base + offset}) runs past the end of the file")


# --- MNN ------------------------------------------------------------------------------------------------------

# The op types (MNN.fbs OpType values) that MNN 3.6.1's converter writes for our ONNX export, read from one
# conversion (rvm_export/runtimes/mnn_format.py names them). Plugin (256) and Extra (512) are outside it: they run
# ops that the app registers code for; While (600) too (our graph's only control flow is the refiner's If).
MNN_OPS = frozenset({7, 10, 11, 12, 13, 31, 34, 35, 39, 45, 47, 66, 68, 70, 73, 80, 83, 90, 91, 101, 107, 112, 120,
                     129, 257, 601})  # fmt: skip
MNN_GRAPHS = 4  # the main graph and the If's two branches, with room for a converter that splits one more


def inspect_mnn(path: Path) -> None:
    from rvm_export.contract import INPUT_NAMES, OUTPUT_NAMES

    from .mnn_format import OP_TYPES, MnnError, read_mnn

    _regular_file(path, path)
    try:
        net = read_mnn(_read_limited(path, path, 2 << 30))
    except MnnError as exc:
        raise _refuse(path, f"it is not an MNN model read as rvm-export writes it ({exc})")
    if len(net.subgraphs) + 1 > MNN_GRAPHS:
        raise _refuse(path, f"it has {len(net.subgraphs)} subgraphs; an RVM model has two (the refiner's If)")
    for graph in [net.main, *net.subgraphs]:
        where = f"subgraph {_show(graph.name)}" if graph.name else "the main graph"
        for op in graph.ops:
            if op.type in (256, 512):
                raise _refuse(path, f"op {_show(op.name)} in {where} is a {OP_TYPES[op.type]} op: it runs code the "
                              "app registers, which no RVM model needs")  # fmt: skip
            if op.type not in MNN_OPS:
                raise _refuse(path, f"op {_show(op.name)} in {where} has type {_show(op.type_name)}, not one MNN's "
                              "converter writes for our ONNX export")  # fmt: skip
            for index in op.inputs + op.outputs:
                if not 0 <= index < len(graph.tensors):  # MNN indexes its tensor table with them unchecked
                    raise _refuse(path, f"op {_show(op.name)} in {where} refers to tensor {index}, but the graph "
                                  f"has {len(graph.tensors)}")  # fmt: skip
        for index in graph.inputs + graph.outputs:
            if not 0 <= index < len(graph.tensors):
                raise _refuse(path, f"{where} has input or output tensor {index} of {len(graph.tensors)}")
    names = set(net.main.tensors)
    missing = [n for n in (*INPUT_NAMES, *OUTPUT_NAMES) if n not in names]
    if missing:
        raise _refuse(path, f"it has no tensors named {', '.join(missing)}; it is not RVM's contract")


# --- Entry point ---------------------------------------------------------------------------------------------------


def inspect_artifact(path: Path, kind: str) -> None:
    """Check the ``kind`` artifact (a target name of ``rvm_export/targets.py``) at ``path`` before anything of
    it runs; raises :class:`RunnerError` (one line naming the file and the op or path it refuses) when it holds
    something no RVM graph written by rvm-export holds. Reads the artifact's files as data only."""
    path = Path(path)
    if kind not in TARGETS:
        raise RunnerError(f"cannot inspect {path}: unknown artifact kind {kind!r}")
    inspector = load_entry(TARGETS[kind].inspector)
    if not path.exists():
        raise RunnerError(f"artifact not found: {path}")
    inspector(path)


__all__ = ["inspect_artifact"]
