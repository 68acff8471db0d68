"""LiteRT (.tflite): the converted model passes rvm-verify at frame sizes other than the first one the
interpreter ran, broken ones fail, and the documented snippet runs as written."""

from pathlib import Path

import numpy as np
import pytest

from ..conftest import export_artifact, last_reference_pha, require, run_documented_snippet

require("ai_edge_litert")
tf = require("tensorflow")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from rvm_export.export.base import load_source  # noqa: E402
from rvm_export.export.tf_port import from_torch  # noqa: E402
from rvm_export.export.tflite import export_tflite  # noqa: E402
from rvm_export.verify.api import verify_artifact  # noqa: E402
from rvm_export.verify.sequence import Case, build_sequence  # noqa: E402

# One interpreter runs these in order: it is first sized for 96x64, then resized for the others.
SMALL = dict(frames=3, sizes=[(96, 64), (67, 45), (128, 96)], ratios=[1.0, 0.5])
BROKEN = dict(frames=2, sizes=[(96, 64)], ratios=[0.5])


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory, weights_path: Path) -> Path:
    path = tmp_path_factory.mktemp("tflite") / "rvm_mobilenetv3_fp32.tflite"
    export_artifact("tflite", "--checkpoint", str(weights_path), "--output", str(path))
    return path


def test_converted_model_passes_at_several_frame_sizes(artifact: Path) -> None:
    report = verify_artifact(artifact, **SMALL)
    assert report.passed, report.table()
    assert report.metadata.format == "tflite" and report.metadata.layout == "NHWC"
    assert len(report.results) == 6 and report.worst()["pha"]["max_abs"] < 2e-3


def test_only_builtin_ops_and_the_contract_signature(artifact: Path) -> None:
    interpreter = Interpreter(model_path=str(artifact))
    signature = interpreter.get_signature_list()["serving_default"]
    assert sorted(signature["inputs"]) == ["downsample_ratio", "r1i", "r2i", "r3i", "r4i", "src"]
    assert sorted(signature["outputs"]) == ["fgr", "pha", "r1o", "r2o", "r3o", "r4o"]
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(name.startswith("Flex") for name in ops), ops


def test_perturbed_weight_in_the_flatbuffer_fails(artifact: Path, tmp_path: Path) -> None:
    interpreter = Interpreter(model_path=str(artifact))
    data = bytearray(artifact.read_bytes())
    # decoder.decode1.gru.ih's conv weight: the only [32,3,3,32] constant (TFLite names weights Conv2D_N).
    weights = []
    for detail in interpreter.get_tensor_details():
        if tuple(detail["shape"]) == (32, 3, 3, 32) and detail["dtype"] == np.float32:
            weights.append(interpreter.get_tensor(detail["index"]))
    assert len(weights) == 1
    target = weights[0]
    raw = target.astype(np.float32).tobytes()
    offset = data.find(raw)
    assert offset >= 0 and data.find(raw, offset + 1) < 0
    data[offset : offset + len(raw)] = (target * np.float32(1.02)).astype(np.float32).tobytes()
    path = tmp_path / "perturbed.tflite"
    path.write_bytes(bytes(data))
    report = verify_artifact(path, **BROKEN)
    assert not report.passed and "pha" in {f.output for f in report.failures}


class IgnoresState(tf.Module):
    """Broken: takes the recurrent inputs but always runs as on a first frame."""

    def __init__(self, net) -> None:
        super().__init__()
        self.net = net

    def outputs(self, src, states, ratio):
        return self.net.outputs(src, [tf.zeros([1, 1, 1, 1])] * 4, ratio)


def test_ignored_recurrent_input_fails_after_the_first_frame(tmp_path: Path, weights_path: Path) -> None:
    source = load_source(weights_path)
    metadata = source.metadata("tflite", "fp32")
    metadata.layout = "NHWC"
    path = export_tflite(IgnoresState(from_torch(source.model)), tmp_path / "stateless.tflite", metadata, "fp32")
    report = verify_artifact(path, **BROKEN)
    assert not report.passed
    assert min(f.frame for f in report.failures) == 1, "frame 0 is identical; the drift starts at frame 1"


def test_documented_snippet_runs_as_written(artifact: Path, tmp_path: Path, monkeypatch, real_model) -> None:
    (tmp_path / "rvm_mobilenetv3_fp32.tflite").symlink_to(artifact)
    frames = build_sequence(Case(128, 96, 1, 0.25, 3))
    video = [np.ascontiguousarray(f.transpose(0, 2, 3, 1)) for f in frames]
    scope = run_documented_snippet("tflite.md", video, tmp_path, monkeypatch)
    assert scope["pha"].shape == (1, 96, 128, 1)
    assert np.abs(scope["pha"].transpose(0, 3, 1, 2) - last_reference_pha(real_model, frames, 0.25)).max() < 2e-3
