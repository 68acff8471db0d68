"""rvm-verify on SavedModels: passes on a faithful export, fails on broken ones."""

import shutil
from pathlib import Path

import pytest

from ..conftest import require  # noqa: E402

tf = require("tensorflow")

from rvm_export.export.base import load_source  # noqa: E402
from rvm_export.export.tensorflow import export_saved_model  # noqa: E402
from rvm_export.export.tf_port import from_torch  # noqa: E402
from rvm_export.runtimes import RunnerError, open_runner  # noqa: E402
from rvm_export.verify.api import verify_artifact  # noqa: E402

WEIGHTS = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"
SIZES = [(97, 65)]
RATIOS = [1.0, 0.5]


@pytest.fixture(scope="module")
def source():
    return load_source(WEIGHTS)


def export(source, path, tamper=None):
    net = from_torch(source.model)
    if tamper:
        tamper(net)
    metadata = source.metadata("tensorflow", "fp32")
    metadata.layout = "NHWC"
    return export_saved_model(net, path, metadata)


@pytest.fixture(scope="module")
def saved_model(source, tmp_path_factory):
    return export(source, tmp_path_factory.mktemp("tf") / "good_tf")


def test_faithful_saved_model_passes(saved_model):
    report = verify_artifact(saved_model, frames=3, sizes=SIZES, ratios=RATIOS)
    assert report.passed, report.table()
    assert report.worst()["pha"]["max_abs"] < 1e-3


def test_perturbed_weight_fails(source, tmp_path):
    def tamper(net):
        var, _ = net.registry.entries["decoder.decode1.conv.0.weight"]
        var.assign(var * 1.05)

    report = verify_artifact(export(source, tmp_path / "bad_tf", tamper), frames=2, sizes=SIZES, ratios=[0.5])
    assert not report.passed
    first = report.failures[0]  # a numeric mismatch on the first frame, not a crash
    assert first.frame == 0 and first.output in ("fgr", "pha") and first.metric == "max_abs", first.message()


def test_ignored_recurrent_state_fails(source, tmp_path):
    """A model that resets its memory every frame matches frame 0 only."""

    def tamper(net):
        faithful = net.outputs
        net.outputs = lambda src, states, ratio: faithful(src, [tf.zeros_like(s) for s in states], ratio)

    report = verify_artifact(export(source, tmp_path / "forgetful_tf", tamper), frames=3, sizes=SIZES, ratios=[0.5])
    assert not report.passed
    first = report.failures[0]
    assert first.frame == 1 and first.metric in ("max_abs", "q999", "mean_abs"), first.message()


def test_without_metadata_needs_the_checkpoint_and_then_passes(saved_model, tmp_path):
    copy = tmp_path / "copy_tf"
    shutil.copytree(saved_model, copy)
    (copy / "assets" / "rvm_metadata.json").unlink()
    with pytest.raises(RunnerError, match="pass --checkpoint"):
        verify_artifact(copy, frames=2, sizes=SIZES, ratios=[0.5])
    report = verify_artifact(copy, WEIGHTS, frames=2, sizes=SIZES, ratios=[0.5])
    assert report.passed, report.table()
    assert report.metadata.inferred and report.metadata.precision == "fp32"


def test_damaged_saved_model_is_a_runner_error(saved_model, tmp_path):
    copy = tmp_path / "damaged_tf"
    shutil.copytree(saved_model, copy)
    (copy / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(RunnerError, match="not a loadable SavedModel"):
        open_runner(copy)
