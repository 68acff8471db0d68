"""inspect_artifact: a good artifact of each format, exported by rvm-export with seeded random weights, passes;
a malicious or escaping copy is refused with one line naming the op or the path, and nothing of it has run.

Nothing here loads a malicious artifact: each is only built (by hand, or by editing a good file's bytes) and
inspected. The good exports are made once per module (~40 s together on two cores). The slowest three (pt2
~26 s, LiteRT ~15 s, CoreML ~14 s more) run only in CI or with RVM_INSPECT_SLOW=1; their malicious copies are
built from small hand-made or tiny torch.export files and always run.
"""

import io
import json
import os
import shutil
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Callable, Dict, Optional

import pytest

from rvm_export.contract.errors import RunnerError
from rvm_export.runtimes.inspection import inspect_artifact
from tests.helpers import copy_artifact, export_artifact

SLOW = pytest.mark.skipif(
    not (os.environ.get("CI") == "true" or os.environ.get("RVM_INSPECT_SLOW")),
    reason="slow export (set RVM_INSPECT_SLOW=1; runs in CI)",
)


def refused(path: Path, kind: str, *expected: str) -> str:
    """inspect_artifact's one-line refusal of ``path``, checked to name the file and each of ``expected``."""
    with pytest.raises(RunnerError) as info:
        inspect_artifact(path, kind)
    message = str(info.value)
    assert "\n" not in message and message.startswith("refusing to run "), message
    assert str(path) in message, message
    for text in expected:
        assert text in message, message
    return message


def rewrite_zip(
    src: Path, dst: Path, edit: Callable[[str, bytes], Optional[bytes]], add: Optional[Dict[str, bytes]] = None
) -> Path:
    """A copy of the zip ``src`` whose entries pass through ``edit(name, data)`` (None drops one); ``add``: more."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return dst


def zip_bytes(data: bytes, edit: Callable[[str, bytes], bytes]) -> bytes:
    """The zip archive ``data`` (bytes) with its entries passed through ``edit(name, data)``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for name in zin.namelist():
            zout.writestr(name, edit(name, zin.read(name)))
    return out.getvalue()


def os_system_pickle(marker: Path, protocol: int = 2) -> bytes:
    """A pickle that would call ``os.system("touch MARKER")`` if unpickled (it never is here), written opcode by
    opcode: GLOBAL 'os system' (protocol 2), or STACK_GLOBAL of two strings (protocol 4)."""
    command = f"touch {marker}".encode()
    argument = b"X" + len(command).to_bytes(4, "little") + command  # BINUNICODE
    if protocol == 2:
        callable_ = b"cos\nsystem\n"  # GLOBAL
    else:
        callable_ = b"\x8c\x02os\x94\x8c\x06system\x94\x93"  # SHORT_BINUNICODE x2 (memoized), STACK_GLOBAL
    return bytes([0x80, protocol]) + callable_ + argument + b"\x85R."  # TUPLE1, REDUCE, STOP


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``exports(target)``: that target's artifact, exported once per module with --seed 0."""
    folder = tmp_path_factory.mktemp("exports")
    names = {
        "torchscript": "rvm.torchscript",
        "onnx": "rvm.onnx",
        "openvino": "rvm.xml",
        "tensorflow": "rvm_tf",
        "tfjs": "rvm_tfjs",
        "tflite": "rvm.tflite",
        "pt2": "rvm.pt2",
        "coreml": "rvm.mlpackage",
    }
    extra = {"coreml": ["--resolution", "64", "48", "--downsample-ratio", "0.5"]}
    done: Dict[str, Path] = {}

    def get(target: str) -> Path:
        if target not in done:
            path = folder / names[target]
            export_artifact(target, "--seed", "0", *extra.get(target, []), "--output", path)
            done[target] = path
        return done[target]

    return get


# --- Good artifacts pass --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "torchscript",
        "onnx",
        "openvino",
        "tensorflow",
        "tfjs",
        pytest.param("tflite", marks=SLOW),
        pytest.param("pt2", marks=SLOW),
        pytest.param("coreml", marks=SLOW),
    ],
)
def test_our_export_passes(exports: Callable[[str], Path], target: str) -> None:
    inspect_artifact(exports(target), target)


def test_tfjs_model_json_path_passes(exports: Callable[[str], Path]) -> None:
    inspect_artifact(exports("tfjs") / "model.json", "tfjs")


def test_unknown_kind_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match="unknown artifact kind"):
        inspect_artifact(tmp_path, "caffe")


# --- TensorFlow SavedModel --------------------------------------------------------------------------------------


def test_savedmodel_writing_a_file_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    import tensorflow as tf

    written = tmp_path / "written_by_the_model"

    class Exfiltrate(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
        def serve(self, x: tf.Tensor) -> Dict[str, tf.Tensor]:
            tf.io.write_file(str(written), tf.io.read_file("/etc/hostname"))
            return {"y": x + 1.0}

    module = Exfiltrate()
    folder = tmp_path / "bad_tf"
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    assert not written.exists()  # tracing and saving ran nothing either
    message = refused(folder, "tensorflow", "reads or writes files", "__inference_serve")
    assert "'ReadFile'" in message or "'WriteFile'" in message  # the first of the two in the graph is named
    assert not written.exists()


def test_savedmodel_symlink_out_of_the_folder_is_refused(exports: Callable[[str], Path], tmp_path: Path) -> None:
    bad = copy_artifact(exports("tensorflow"), tmp_path)
    (tmp_path / "elsewhere.json").write_text("{}")
    asset = bad / "assets" / "rvm_metadata.json"
    asset.unlink()
    asset.symlink_to(tmp_path / "elsewhere.json")
    refused(bad, "tensorflow", "assets/rvm_metadata.json", "outside the artifact's folder")


def test_savedmodel_checkpoint_op_outside_the_saver_is_refused(exports: Callable[[str], Path], tmp_path: Path) -> None:
    from tensorflow.core.protobuf import saved_model_pb2

    bad = copy_artifact(exports("tensorflow"), tmp_path)
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((bad / "saved_model.pb").read_bytes())
    function = next(f for f in saved.meta_graphs[0].graph_def.library.function if "serve" in f.signature.name)
    node = next(n for n in function.node_def if n.op == "Conv2D")
    node.op = "SaveV2"  # allowed in the checkpoint save function only
    (bad / "saved_model.pb").write_bytes(saved.SerializeToString())
    refused(bad, "tensorflow", "'SaveV2'", "reads or writes files", function.signature.name)


@pytest.mark.parametrize(
    "op, expected",
    [
        ("Elu", None),  # an op of TensorFlow's registry that our graphs never hold: compute, passes
        ("Einsum", None),
        ("DebugIdentityV2", "prints or sends debug data"),
        ("PyFunc", "calls Python"),
        ("RpcCall", "talks to other processes"),
        ("TFRecordDataset", "reads or writes files"),
        ("WriteScalarSummary", "writes summaries"),
        ("NoSuchOp", "not an op of TensorFlow"),  # a custom op library's: TensorFlow's registry lacks it
    ],
)
def test_savedmodel_op_allowed_unless_it_can_act(
    exports: Callable[[str], Path], tmp_path: Path, op: str, expected: Optional[str]
) -> None:
    """Issue 26, item 5: the ops of TensorFlow's registry less the I/O, Python, RPC, summary, dataset and debug
    families, not the 47 our export writes."""
    from tensorflow.core.protobuf import saved_model_pb2

    bad = copy_artifact(exports("tensorflow"), tmp_path)
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((bad / "saved_model.pb").read_bytes())
    function = next(f for f in saved.meta_graphs[0].graph_def.library.function if "serve" in f.signature.name)
    next(n for n in function.node_def if n.op == "Relu").op = op
    (bad / "saved_model.pb").write_bytes(saved.SerializeToString())
    if expected is None:
        inspect_artifact(bad, "tensorflow")
    else:
        refused(bad, "tensorflow", repr(op), expected, function.signature.name)


# --- TF.js ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weights_path, expected",
    [
        ("../outside_weights.bin", "not a plain path"),
        ("/etc/hostname", "not a plain path"),
        ("http://example.com/x.bin", "not a plain path"),
        ("%2e%2e/outside_weights.bin", "not a plain path"),
    ],
)
def test_tfjs_weights_path_out_of_the_folder_is_refused(
    exports: Callable[[str], Path], tmp_path: Path, weights_path: str, expected: str
) -> None:
    bad = copy_artifact(exports("tfjs"), tmp_path)
    (tmp_path / "outside_weights.bin").write_bytes(b"\0" * 16)
    model = json.loads((bad / "model.json").read_text())
    model["weightsManifest"][0]["paths"][0] = weights_path
    (bad / "model.json").write_text(json.dumps(model))
    refused(bad, "tfjs", repr(weights_path), expected)
    refused(bad / "model.json", "tfjs", repr(weights_path))


def test_tfjs_weights_symlinked_out_of_the_folder_is_refused(exports: Callable[[str], Path], tmp_path: Path) -> None:
    bad = copy_artifact(exports("tfjs"), tmp_path)
    shard = sorted(bad.glob("*.bin"))[0]
    shutil.move(shard, tmp_path / shard.name)
    shard.symlink_to(tmp_path / shard.name)
    refused(bad, "tfjs", shard.name, "is a symlink to")


def test_tfjs_op_another_converter_writes_is_left_to_the_runtime(
    exports: Callable[[str], Path], tmp_path: Path
) -> None:
    """TF.js gives a graph no file or process op: an op ours never writes (the official release's fused ops) is
    not a danger, and passes inspection; TF.js itself runs or rejects it."""
    other = copy_artifact(exports("tfjs"), tmp_path)
    model = json.loads((other / "model.json").read_text())
    next(n for n in model["modelTopology"]["node"] if n["op"] == "Tanh")["op"] = "_FusedConv2D"
    (other / "model.json").write_text(json.dumps(model))
    inspect_artifact(other, "tfjs")


# --- ONNX ---------------------------------------------------------------------------------------------------------


def _edited_onnx(good: Path, bad: Path, edit: Callable) -> Path:
    import onnx

    model = onnx.load(str(good), load_external_data=False)
    edit(model)
    bad.write_bytes(model.SerializeToString())  # not onnx.save: that would write external data files
    return bad


@pytest.mark.parametrize("location", ["../x.bin", "/etc/hostname"])
def test_onnx_external_data_out_of_the_folder_is_refused(
    exports: Callable[[str], Path], tmp_path: Path, location: str
) -> None:
    import onnx

    def external(model: "onnx.ModelProto") -> None:
        tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
        size = len(tensor.raw_data)
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", str(size))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value

    (tmp_path / "sub").mkdir()
    bad = _edited_onnx(exports("onnx"), tmp_path / "sub" / "bad.onnx", external)
    refused(bad, "onnx", repr(location), "external data")


def test_onnx_custom_domain_is_refused(exports: Callable[[str], Path], tmp_path: Path) -> None:
    from onnx import helper

    def custom_node(model) -> None:
        model.graph.node.append(helper.make_node("Exfiltrate", ["src"], ["unused"], name="evil", domain="my.ops"))

    def custom_opset(model) -> None:
        model.opset_import.append(helper.make_opsetid("my.ops", 1))

    refused(_edited_onnx(exports("onnx"), tmp_path / "node.onnx", custom_node), "onnx", "'my.ops::Exfiltrate'")
    refused(_edited_onnx(exports("onnx"), tmp_path / "opset.onnx", custom_opset), "onnx", "'my.ops'", "custom op")


def test_onnx_epcontext_is_refused(exports: Callable[[str], Path], tmp_path: Path) -> None:
    from onnx import helper

    def epcontext(model) -> None:
        node = helper.make_node("EPContext", ["src"], ["ctx"], name="ctx", domain="com.microsoft")
        model.graph.node.append(node)

    refused(_edited_onnx(exports("onnx"), tmp_path / "ep.onnx", epcontext), "onnx", "EPContext", "loads or runs")


# --- OpenVINO ------------------------------------------------------------------------------------------------------


def _edited_openvino(good: Path, folder: Path, edit: Callable[[str], str]) -> Path:
    folder.mkdir()
    bad = copy_artifact(good, folder)
    bad.write_text(edit(bad.read_text()))
    return bad


def test_openvino_extension_layer_is_refused(exports: Callable[[str], Path], tmp_path: Path) -> None:
    good = exports("openvino")
    other_opset_op = _edited_openvino(good, tmp_path / "a", lambda x: x.replace('type="Tanh"', 'type="Elu"', 1))
    inspect_artifact(other_opset_op, "openvino")  # a standard-opset op ours never writes: the runtime's to run
    extension = _edited_openvino(
        good, tmp_path / "b", lambda x: x.replace('type="Tanh" version="opset1"', 'type="Tanh" version="my_ext"', 1)
    )
    refused(extension, "openvino", "'my_ext'", "extension")


def test_openvino_dtd_and_weights_outside_are_refused(exports: Callable[[str], Path], tmp_path: Path) -> None:
    good = exports("openvino")
    entity = '<?xml version="1.0"?>\n<!DOCTYPE net [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n'
    dtd = _edited_openvino(good, tmp_path / "a", lambda x: entity + x.split("\n", 1)[1])
    refused(dtd, "openvino", "DTD")
    (tmp_path / "b").mkdir()
    outside = copy_artifact(good, tmp_path / "b")
    weights = outside.with_suffix(".bin")
    shutil.move(weights, tmp_path / "weights.bin")
    weights.symlink_to(tmp_path / "weights.bin")
    refused(outside, "openvino", weights.name, "outside the model's folder")


# --- CoreML ---------------------------------------------------------------------------------------------------------


def test_mlpackage_manifest_pointing_outside_is_refused(tmp_path: Path) -> None:
    package = tmp_path / "bad.mlpackage"
    (package / "Data" / "com.apple.CoreML").mkdir(parents=True)
    (tmp_path / "outside.mlmodel").write_bytes(b"")
    manifest = {
        "fileFormatVersion": "1.0.0",
        "itemInfoEntries": {
            "root": {"author": "com.apple.CoreML", "name": "model.mlmodel", "path": "../../outside.mlmodel"}
        },
        "rootModelIdentifier": "root",
    }
    (package / "Manifest.json").write_text(json.dumps(manifest))
    refused(package, "coreml", "'../../outside.mlmodel'")


def test_mlpackage_symlink_out_is_refused(tmp_path: Path) -> None:
    package = tmp_path / "bad.mlpackage"
    (package / "Data" / "com.apple.CoreML").mkdir(parents=True)
    (package / "Manifest.json").write_text("{}")
    (package / "Data" / "com.apple.CoreML" / "weights").symlink_to(tmp_path)
    refused(package, "coreml", "weights", "outside the artifact's folder")


def test_coreml_custom_layer_is_refused(tmp_path: Path) -> None:
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    spec.specificationVersion = 4
    layer = spec.neuralNetwork.layers.add()
    layer.name = "evil"
    layer.custom.className = "MyLayerThatRunsCode"
    model = tmp_path / "custom.mlmodel"
    model.write_bytes(spec.SerializeToString())
    refused(model, "coreml", "'MyLayerThatRunsCode'", "custom layer")


# --- TorchScript ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 4])  # GLOBAL 'os system', and STACK_GLOBAL
def test_torchscript_pickle_naming_os_system_is_refused(
    exports: Callable[[str], Path], tmp_path: Path, protocol: int
) -> None:
    marker = tmp_path / "ran"
    payload = os_system_pickle(marker, protocol)
    bad = rewrite_zip(exports("torchscript"), tmp_path / "bad.torchscript",
                      lambda name, data: payload if name.endswith("/data.pkl") else data)  # fmt: skip
    refused(bad, "torchscript", "data.pkl", "'os.system'")
    assert not marker.exists()


@pytest.mark.parametrize(
    "code, named",
    [
        ("def leak(path: str) -> Tensor:\n  return torch.from_file(path, True, 64)\n", "'torch.from_file'"),
        ("def leak(path: str) -> Tensor:\n  return ops.aten.from_file(path, True, 64)\n", "'ops.aten.from_file'"),
        ("def shout(x: str) -> None:\n  print(x)\n", "'print'"),
    ],
)
def test_torchscript_code_calling_an_op_that_can_act_is_refused(
    exports: Callable[[str], Path], tmp_path: Path, code: str, named: str
) -> None:
    def edit(name: str, data: bytes) -> bytes:
        return data + b"\n" + code.encode() if name.endswith("code/__torch__/model/network.py") else data

    bad = rewrite_zip(exports("torchscript"), tmp_path / "bad.torchscript", edit)
    refused(bad, "torchscript", named, "network.py")


def test_torchscript_entry_escaping_the_archive_is_refused(exports: Callable[[str], Path], tmp_path: Path) -> None:
    good = exports("torchscript")
    escaping = rewrite_zip(good, tmp_path / "a.torchscript", lambda n, d: d, {"../../evil.py": b"print(1)"})
    refused(escaping, "torchscript", "'../../evil.py'")
    first = zipfile.ZipFile(good).namelist()[0]
    with pytest.warns(UserWarning, match="Duplicate name"):
        twice = rewrite_zip(good, tmp_path / "b.torchscript", lambda n, d: d, {first: b"x"})
    refused(twice, "torchscript", "appears twice")


# --- torch.export ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torch.export archive of a conv + relu (ops RVM graphs use), in seconds: the base of the malicious copies."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.conv(x))

    path = tmp_path_factory.mktemp("pt2") / "tiny.pt2"
    torch.export.save(torch.export.export(Tiny(), (torch.zeros(1, 3, 8, 8),)), str(path))
    return path


def test_tiny_pt2_passes(tiny_pt2: Path) -> None:
    inspect_artifact(tiny_pt2, "pt2")


def _edit_pt2_program(tiny_pt2: Path, bad: Path, edit: Callable[[dict], None]) -> Path:
    def rewrite(name: str, data: bytes) -> bytes:
        if "/models/" not in name or not name.endswith(".json"):
            return data
        program = json.loads(data)
        edit(program)
        return json.dumps(program).encode()

    return rewrite_zip(tiny_pt2, bad, rewrite)


def test_pt2_example_inputs_naming_os_system_are_refused(tiny_pt2: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = os_system_pickle(marker)

    def rewrite(name: str, data: bytes) -> bytes:
        if "/data/sample_inputs/" not in name:
            return data
        return zip_bytes(data, lambda inner, d: payload if inner.endswith("data.pkl") else d)

    bad = rewrite_zip(tiny_pt2, tmp_path / "bad.pt2", rewrite)
    refused(bad, "pt2", "sample_inputs", "'os.system'")
    assert not marker.exists()


def test_pt2_guards_code_and_sympy_injection_are_refused(tiny_pt2: Path, tmp_path: Path) -> None:
    guards = _edit_pt2_program(
        tiny_pt2, tmp_path / "guards.pt2", lambda p: p.update(guards_code=["__import__('os').system('true')"])
    )
    refused(guards, "pt2", "guards_code")

    def sympy(program: dict) -> None:
        expr = {"as_expr": {"expr_str": "__import__('os').system('true')", "hint": None}}
        program["graph_module"]["graph"].setdefault("sym_int_values", {})["evil"] = expr

    refused(_edit_pt2_program(tiny_pt2, tmp_path / "sympy.pt2", sympy), "pt2", "sympy")


def test_pt2_unknown_target_pickled_weights_and_aoti_are_refused(tiny_pt2: Path, tmp_path: Path) -> None:
    def target(program: dict) -> None:
        program["graph_module"]["graph"]["nodes"][0]["target"] = "torch.ops.aten.from_file.default"

    refused(_edit_pt2_program(tiny_pt2, tmp_path / "target.pt2", target), "pt2", "'torch.ops.aten.from_file.default'")

    def pickled(name: str, data: bytes) -> bytes:
        if not name.endswith("_weights_config.json"):
            return data
        config = json.loads(data)
        next(iter(config["config"].values()))["use_pickle"] = True
        return json.dumps(config).encode()

    refused(rewrite_zip(tiny_pt2, tmp_path / "pickled.pt2", pickled), "pt2", "weights_only=False")
    prefix = zipfile.ZipFile(tiny_pt2).namelist()[0].split("/")[0]
    aoti = rewrite_zip(tiny_pt2, tmp_path / "aoti.pt2", lambda n, d: d, {f"{prefix}/data/aotinductor/model/x.so": b""})
    refused(aoti, "pt2", "aotinductor", "compiled code")


# --- LiteRT ----------------------------------------------------------------------------------------------------------


def test_tflite_wrong_identifier_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x1c\x00\x00\x00XXXX" + b"\0" * 64)
    refused(bad, "tflite", "b'XXXX'", "TFL3")


def test_tflite_custom_op_is_refused(tmp_path: Path) -> None:
    import flatbuffers

    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    builder = flatbuffers.Builder(256)
    name = builder.CreateString("FlexWriteFile")
    schema.OperatorCodeStart(builder)
    schema.OperatorCodeAddBuiltinCode(builder, schema.BuiltinOperator.CUSTOM)
    schema.OperatorCodeAddDeprecatedBuiltinCode(builder, schema.BuiltinOperator.CUSTOM)
    schema.OperatorCodeAddCustomCode(builder, name)
    code = schema.OperatorCodeEnd(builder)
    schema.ModelStartOperatorCodesVector(builder, 1)
    builder.PrependUOffsetTRelative(code)
    codes = builder.EndVector()
    schema.ModelStart(builder)
    schema.ModelAddVersion(builder, 3)
    schema.ModelAddOperatorCodes(builder, codes)
    builder.Finish(schema.ModelEnd(builder), file_identifier=b"TFL3")
    bad = tmp_path / "custom.tflite"
    bad.write_bytes(bytes(builder.Output()))
    refused(bad, "tflite", "'FlexWriteFile'", "custom op")


# --- Every command that opens an artifact inspects it first ------------------------------------------------------


def _exfiltrating_savedmodel(tmp_path: Path, written: Path) -> Path:
    """A SavedModel with weights whose serving function copies /etc/hostname to ``written`` (issue 18)."""
    import tensorflow as tf

    class Exfiltrate(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weights = [tf.Variable(tf.zeros([3, 3, 3, 16])) for _ in range(8)]

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="src")])
        def serve(self, src: tf.Tensor) -> Dict[str, tf.Tensor]:
            tf.io.write_file(str(written), tf.io.read_file("/etc/hostname"))
            return {"fgr": src, "pha": src[..., :1]}

    module = Exfiltrate()
    folder = tmp_path / "evil_tf"
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def test_rvm_verify_bench_and_convert_refuse_before_running(exports: Callable[[str], Path], tmp_path: Path) -> None:
    """The issue's cases end to end: ``rvm-verify evil_tf --checkpoint W`` ran the model and the file was
    written; a TF.js model.json pointing at ../outside_weights.bin was followed and PASSed. Now each is exit 2
    with one line, for rvm-verify, rvm-bench and convert_video on the artifact, and nothing was written."""
    from click.testing import CliRunner

    from rvm_export.inference.convert import convert_video
    from rvm_export.inference.io import InferenceError
    from rvm_export.verify.bench import main as bench_main
    from rvm_export.verify.cli import main as verify_main
    from tests.helpers import WEIGHTS, encode_clip

    clip = tmp_path / "clip.mp4"
    encode_clip(clip, 64, 48, 2, Fraction(25))
    written = tmp_path / "hostname_copy"
    evil = _exfiltrating_savedmodel(tmp_path, written)
    escaping = copy_artifact(exports("tfjs"), tmp_path)
    (tmp_path / "outside_weights.bin").write_bytes((sorted(escaping.glob("*.bin"))[0]).read_bytes())
    model = json.loads((escaping / "model.json").read_text())
    model["weightsManifest"][0]["paths"][0] = "../outside_weights.bin"
    (escaping / "model.json").write_text(json.dumps(model))
    for path in (evil, escaping):
        for main, args in ((verify_main, ["--checkpoint", str(WEIGHTS)]), (bench_main, ["--size", "64x48"])):
            result = CliRunner().invoke(main, [str(path), *args, "--frames", "2"])
            assert result.exit_code == 2, result.output
            errors = [line for line in result.output.splitlines() if "error:" in line]
            assert len(errors) == 1 and "refusing to run" in errors[0], result.output
        with pytest.raises(InferenceError, match="refusing to run"):
            convert_video(str(path), input_source=str(clip), output_alpha=str(tmp_path / "a.mp4"))
    assert not written.exists(), "nothing of the artifact ran"
    expected = ["clip.mp4", "evil_tf", escaping.name, "outside_weights.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(expected), "no output was left behind either"
