"""The inspection reads names as each loader does (issue 26, item 3), and nothing of a malicious file runs.

- torch's zip reader (TorchScript, .pt2 and the torch.save files inside) finds entries case-insensitively, ASCII
  letters only: a code file, pickle or program in another case is read as what it is, names that differ only in
  case are refused, and an entry the inspection cannot place is refused;
- OpenVINO looks layer types up case-insensitively and reads `Const` and any case of `Constant` alike: every layer
  with an offset or size is checked, against the .bin and against its shape;
- only UTF-8 XML is read (a UTF-16 one hides its DTD from a byte search);
- LiteRT buffers placed by offset and size lie inside the file, whatever an overflow would make of them;
- the refusal is one line whatever the names hold.

Each malicious file is built small (a scripted conv, a tiny torch.export, a hand-made IR or flatbuffer) and only
inspected; a few benign ones are loaded by the runtime to pin the loader behaviour the checks rely on.
"""

import json
import zipfile
from pathlib import Path
from typing import Callable, Dict

import numpy as np
import pytest
import torch

from rvm_export.contract.errors import RunnerError
from rvm_export.runtimes.inspection import inspect_artifact
from tests.runtimes.test_inspection import os_system_pickle, refused, rewrite_zip

FROM_FILE = (
    '\n\ndef leak(x: Tensor) -> Tensor:\n  _p = torch.from_file("/etc/passwd", False, 64, dtype=0)\n'
    '  _q = torch.from_file("/tmp/copy", True, 64, dtype=0)\n  return torch.add(x, torch.mul(torch.sum(torch.copy_(_q, _p)), 0))\n'
)


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


@pytest.fixture(scope="module")
def tiny_ts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ts") / "tiny.torchscript"
    torch.jit.script(_Tiny()).save(str(path))
    return path


@pytest.fixture(scope="module")
def tiny_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pt2") / "tiny.pt2"
    torch.export.save(torch.export.export(_Tiny(), (torch.zeros(1, 3, 8, 8),)), str(path))
    return path


def _code_entry(archive: Path) -> str:
    return next(n for n in zipfile.ZipFile(archive).namelist() if n.endswith(".py") and "__torch__" in n)


# --- TorchScript --------------------------------------------------------------------------------------------------

RENAMES: Dict[str, Callable[[str], str]] = {
    "suffix .PY": lambda n: n[: -len(".py")] + ".PY",
    "folder CODE/": lambda n: n.replace("/code/", "/CODE/"),
    "all upper case": lambda n: n.split("/", 1)[0] + "/" + n.split("/", 1)[1].upper(),
}


@pytest.mark.parametrize("rename", RENAMES, ids=list(RENAMES))
def test_torchscripts_reader_finds_code_in_another_case(tiny_ts: Path, tmp_path: Path, rename: str) -> None:
    """What the checks rely on, pinned: torch.jit.load runs a code file renamed this way (a benign one here)."""
    code = _code_entry(tiny_ts)
    moved = rewrite_zip(tiny_ts, tmp_path / "moved.torchscript",
                        lambda n, d: None if n.endswith(".debug_pkl") else d)  # fmt: skip
    renamed = tmp_path / "renamed.torchscript"
    with zipfile.ZipFile(moved) as zin, zipfile.ZipFile(renamed, "w") as zout:
        for name in zin.namelist():
            zout.writestr(RENAMES[rename](name) if name == code else name, zin.read(name))
    inspect_artifact(renamed, "torchscript")  # benign code in another case passes, read as code
    out = torch.jit.load(str(renamed))(torch.zeros(1, 3, 8, 8))
    assert out.shape == (1, 4, 6, 6)


@pytest.mark.parametrize("rename", RENAMES, ids=list(RENAMES))
def test_torchscript_code_in_another_case_is_read_as_code(tiny_ts: Path, tmp_path: Path, rename: str) -> None:
    """Finding 2: `network.PY` (or `CODE/`) calling torch.from_file to copy /etc/passwd was unread and PASSed."""
    code = _code_entry(tiny_ts)
    bad = tmp_path / "bad.torchscript"
    with zipfile.ZipFile(tiny_ts) as zin, zipfile.ZipFile(bad, "w") as zout:
        for name in zin.namelist():
            if name.endswith(".debug_pkl"):
                continue
            data = zin.read(name)
            zout.writestr(RENAMES[rename](name) if name == code else name,
                          data + FROM_FILE.encode() if name == code else data)  # fmt: skip
    refused(bad, "torchscript", "'torch.from_file'", "maps a file", repr(RENAMES[rename](code)))


def test_torchscript_entries_differing_only_in_case_are_refused(tiny_ts: Path, tmp_path: Path) -> None:
    code = _code_entry(tiny_ts)
    twin = code[: -len(".py")] + ".Py"
    bad = rewrite_zip(
        tiny_ts, tmp_path / "twin.torchscript", lambda n, d: d, {twin: b"def f(x: int) -> int:\n  return x\n"}
    )
    refused(bad, "torchscript", repr(code), repr(twin), "differ only in case")


@pytest.mark.parametrize("extra", ["model.json", "MODEL.JSON", "code/__torch__/notes.txt", "attributes.bin"])
def test_torchscript_entry_the_inspection_cannot_place_is_refused(tiny_ts: Path, tmp_path: Path, extra: str) -> None:
    """model.json (any case) would send torch.jit.load to its legacy importer; anything unplaced is refused."""
    prefix = zipfile.ZipFile(tiny_ts).namelist()[0].split("/")[0]
    bad = rewrite_zip(tiny_ts, tmp_path / "extra.torchscript", lambda n, d: d, {f"{prefix}/{extra}": b"{}"})
    refused(bad, "torchscript", repr(f"{prefix}/{extra}"), "is not one the inspection knows")


def test_torchscript_pickle_in_another_case_is_scanned(tiny_ts: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = os_system_pickle(marker)
    bad = tmp_path / "upper.torchscript"
    with zipfile.ZipFile(tiny_ts) as zin, zipfile.ZipFile(bad, "w") as zout:
        for name in zin.namelist():
            if name.endswith("/data.pkl"):
                zout.writestr(name[: -len("data.pkl")] + "DATA.PKL", payload)
            else:
                zout.writestr(name, zin.read(name))
    refused(bad, "torchscript", "DATA.PKL", "'os.system'")
    assert not marker.exists()


# --- torch.export (.pt2) ------------------------------------------------------------------------------------------


def test_pt2_sample_inputs_in_another_case_are_scanned(tiny_pt2: Path, tmp_path: Path) -> None:
    """Finding 1: data/SAMPLE_INPUTS/model.PT holding a pickle of os.system ran it through torch's
    weights_only=False retry; it is now scanned as the pickle the loader reads."""
    marker = tmp_path / "ran"
    payload = os_system_pickle(marker)
    bad = tmp_path / "bad.pt2"
    with zipfile.ZipFile(tiny_pt2) as zin, zipfile.ZipFile(bad, "w") as zout:
        for name in zin.namelist():
            if "/data/sample_inputs/" in name:
                zout.writestr(name.replace("sample_inputs/model.pt", "SAMPLE_INPUTS/model.PT"), payload)
            else:
                zout.writestr(name, zin.read(name))
    refused(bad, "pt2", "SAMPLE_INPUTS/model.PT", "'os.system'", "torch.export.load would import and call")
    assert not marker.exists()


def test_pt2_program_with_another_suffix_is_read_as_a_program(tiny_pt2: Path, tmp_path: Path) -> None:
    """Finding 1's second route: a copy of models/model.json as models/x.JSON (torch.export.load takes every
    models/ entry as a program, whatever its suffix), whose expr_str sympify would evaluate."""
    names = zipfile.ZipFile(tiny_pt2).namelist()
    prefix = names[0].split("/")[0]
    program = json.loads(zipfile.ZipFile(tiny_pt2).read(f"{prefix}/models/model.json"))
    expr = {"as_expr": {"expr_str": "__import__('os').system('touch /tmp/rvm_sympy_ran')", "hint": None}}
    program["graph_module"]["graph"].setdefault("sym_int_values", {})["evil"] = expr
    archive = zipfile.ZipFile(tiny_pt2)
    add = {
        f"{prefix}/models/x.JSON": json.dumps(program).encode(),
        f"{prefix}/data/sample_inputs/x.pt": archive.read(f"{prefix}/data/sample_inputs/model.pt"),
        f"{prefix}/data/weights/x_weights_config.json": archive.read(
            f"{prefix}/data/weights/model_weights_config.json"
        ),
        f"{prefix}/data/constants/x_constants_config.json": archive.read(
            f"{prefix}/data/constants/model_constants_config.json"
        ),
    }
    bad = rewrite_zip(tiny_pt2, tmp_path / "x.pt2", lambda n, d: d, add)
    refused(bad, "pt2", "models/x.JSON", "sympy would evaluate")
    assert not Path("/tmp/rvm_sympy_ran").exists()


def test_pt2_case_twins_and_unplaced_entries_are_refused(tiny_pt2: Path, tmp_path: Path) -> None:
    prefix = zipfile.ZipFile(tiny_pt2).namelist()[0].split("/")[0]
    twin = rewrite_zip(tiny_pt2, tmp_path / "twin.pt2", lambda n, d: d, {f"{prefix}/MODELS/model.json": b"{}"})
    refused(twin, "pt2", "differ only in case")
    unplaced = rewrite_zip(tiny_pt2, tmp_path / "unplaced.pt2", lambda n, d: d, {f"{prefix}/data/other/x": b""})
    refused(unplaced, "pt2", "data/other/x", "is not one the inspection knows")


# --- OpenVINO ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_ir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An IR of x + c, c a 1x4 fp32 Const (16 bytes at offset 0 of the .bin)."""
    ov = pytest.importorskip("openvino")
    from openvino import opset13 as ops

    x = ops.parameter([1, 4], np.float32, name="x")
    model = ov.Model([ops.add(x, ops.constant(np.arange(4, dtype=np.float32).reshape(1, 4)))], [x], "tiny")
    path = tmp_path_factory.mktemp("ir") / "tiny.xml"
    ov.save_model(model, str(path), compress_to_fp16=False)
    assert 'type="Const"' in path.read_text() and 'offset="0" size="16"' in path.read_text()
    return path


def _edited_ir(tiny_ir: Path, folder: Path, edit: Callable[[str], str], weights: bytes = b"") -> Path:
    xml = folder / "m.xml"
    xml.write_text(edit(tiny_ir.read_text()))
    (folder / "m.bin").write_bytes(tiny_ir.with_suffix(".bin").read_bytes() + weights)
    return xml


def test_tiny_ir_passes(tiny_ir: Path) -> None:
    inspect_artifact(tiny_ir, "openvino")


@pytest.mark.parametrize("kind", ["Constant", "constant", "CONSTANT", "Const"])
def test_openvino_constant_reading_past_the_bin_is_refused(tiny_ir: Path, tmp_path: Path, kind: str) -> None:
    """Finding 3: a type="Constant" layer (OpenVINO reads every case of it, and Const) with an offset 100 bytes
    before the end of the .bin and a 921,600-byte size crashed compile_model (SIGSEGV)."""
    pad = b"\0" * 1000
    end = len(tiny_ir.with_suffix(".bin").read_bytes()) + len(pad)

    def edit(xml: str) -> str:
        xml = xml.replace('type="Const"', f'type="{kind}"')
        return xml.replace('shape="1, 4" offset="0" size="16"', f'shape="1, 230400" offset="{end - 100}" size="921600"')

    bad = _edited_ir(tiny_ir, tmp_path, edit, pad)
    refused(bad, "openvino", f"'{kind}'", f"reads bytes {end - 100}..{end - 100 + 921600}", f"which holds {end}")


@pytest.mark.parametrize(
    "attributes, expected",
    [
        ('shape="1, 4" offset="0" size="4"', "needs 16 bytes and its size is 4"),  # the shape reads past its size
        ('shape="1, 4" offset="1_0" size="16"', "not plain numbers"),  # Python's int() reads 10, C++ 1
        ('shape="1, 4" offset="-1" size="16"', "not plain numbers"),  # stoull reads 2**64 - 1
        (f'shape="1, 4" offset="{2**64 - 8}" size="16"', "reads bytes"),  # wraps around in C++
    ],
)
def test_openvino_offsets_and_sizes_are_checked(tiny_ir: Path, tmp_path: Path, attributes: str, expected: str) -> None:
    bad = _edited_ir(tiny_ir, tmp_path, lambda x: x.replace('shape="1, 4" offset="0" size="16"', attributes))
    refused(bad, "openvino", expected)


def test_openvino_xml_not_in_utf8_is_refused(tiny_ir: Path, tmp_path: Path) -> None:
    """A UTF-16 IR (pugixml reads it by its byte-order mark) hides <!DOCTYPE from a byte search."""
    entity = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE net [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n'
    text = entity + tiny_ir.read_text().split("\n", 1)[1]
    utf16 = tmp_path / "utf16.xml"
    utf16.write_bytes(text.encode("utf-16"))
    assert b"<!DOCTYPE" not in utf16.read_bytes()
    refused(utf16, "openvino", "not UTF-8")
    latin = tmp_path / "latin.xml"
    latin.write_bytes(
        tiny_ir.read_bytes().replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="ISO-8859-1"?>', 1)
    )
    assert b"ISO-8859-1" in latin.read_bytes()
    refused(latin, "openvino", "'ISO-8859-1'", "only UTF-8")


# --- LiteRT --------------------------------------------------------------------------------------------------------


def _tflite_with_buffer(path: Path, offset: int, size: int) -> Path:
    import flatbuffers

    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    builder = flatbuffers.Builder(256)
    schema.BufferStart(builder)
    empty = schema.BufferEnd(builder)
    schema.BufferStart(builder)
    schema.BufferAddOffset(builder, offset)
    schema.BufferAddSize(builder, size)
    placed = schema.BufferEnd(builder)
    schema.ModelStartBuffersVector(builder, 2)
    builder.PrependUOffsetTRelative(placed)
    builder.PrependUOffsetTRelative(empty)
    buffers = builder.EndVector()
    schema.ModelStart(builder)
    schema.ModelAddVersion(builder, 3)
    schema.ModelAddBuffers(builder, buffers)
    builder.Finish(schema.ModelEnd(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()) + b"\0" * 64)
    return path


def test_tflite_buffer_offset_that_overflows_is_refused(tmp_path: Path) -> None:
    """Finding 4: offset 2**64 - n with size n wraps LiteRT's own check; 900 KB of memory were read."""
    n = 921_600
    refused(_tflite_with_buffer(tmp_path / "wrap.tflite", 2**64 - n, n), "tflite", "buffer 1", f"offset {2**64 - n}")
    refused(_tflite_with_buffer(tmp_path / "past.tflite", 16, 4096), "tflite", "buffer 1", "outside the file")


def test_tflite_buffer_inside_the_file_passes(tmp_path: Path) -> None:
    inspect_artifact(_tflite_with_buffer(tmp_path / "inside.tflite", 8, 16), "tflite")


# --- One line whatever the names hold -------------------------------------------------------------------------------


@pytest.mark.parametrize("forged", ["\nrvm-verify: PASS", "\r\x1b[2Kok", "\u2028PASS", "\x85PASS"])
def test_refusal_is_one_line_whatever_the_names_hold(tiny_ts: Path, tmp_path: Path, forged: str) -> None:
    folder = tmp_path / f"dir{forged}"
    folder.mkdir()
    prefix = zipfile.ZipFile(tiny_ts).namelist()[0].split("/")[0]
    bad = rewrite_zip(tiny_ts, folder / f"m{forged}.torchscript", lambda n, d: d,
                      {f"{prefix}/code/__torch__/x{forged}.py": FROM_FILE.encode()})  # fmt: skip
    with pytest.raises(RunnerError) as info:
        inspect_artifact(bad, "torchscript")
    message = str(info.value)
    assert message.isprintable() and message.startswith("refusing to run "), repr(message)
    assert "torch.from_file" in message and forged not in message


def test_entry_name_with_a_nul_is_refused(tiny_ts: Path, tmp_path: Path) -> None:
    """zipfile cuts a name at its first NUL and torch's reader does not: the two would read different names."""
    prefix = zipfile.ZipFile(tiny_ts).namelist()[0].split("/")[0]
    made = rewrite_zip(tiny_ts, tmp_path / "nul.torchscript", lambda n, d: d, {f"{prefix}/extra/aQZQb": b""})
    bad = tmp_path / "nul2.torchscript"
    bad.write_bytes(made.read_bytes().replace(b"aQZQb", b"a\0ZQb"))  # in the local header and the directory
    assert zipfile.ZipFile(bad).namelist()[-1] == f"{prefix}/extra/a"
    refused(bad, "torchscript", "is not a relative path inside the archive", "\\x00")
