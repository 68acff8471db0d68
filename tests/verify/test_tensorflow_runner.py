"""rvm-verify on SavedModels without their metadata or damaged. (A faithful export passing and broken ones
failing: tests/test_conformance.py.)"""

import shutil

import pytest

from tests.helpers import WEIGHTS, ArtifactCache, require

require("tensorflow")

from rvm_export.runtimes import RunnerError, open_runner  # noqa: E402
from rvm_export.verify.api import verify_artifact  # noqa: E402

SIZES = [(97, 65)]


@pytest.fixture(scope="module")
def saved_model(artifacts: ArtifactCache):
    return artifacts.export("tensorflow", "rvm_mobilenetv3_tf")


def test_without_metadata_needs_the_checkpoint_and_then_passes(saved_model, tmp_path):
    copy = tmp_path / "copy_tf"
    shutil.copytree(saved_model, copy)
    (copy / "assets" / "rvm_metadata.json").unlink()
    with pytest.raises(RunnerError, match="pass the checkpoint it was exported from"):
        verify_artifact(copy, frames=2, sizes=SIZES, ratios=[0.5])
    report = verify_artifact(copy, WEIGHTS, frames=2, sizes=SIZES, ratios=[0.5])
    assert report.passed, report.table()
    assert report.metadata.inferred and report.metadata.precision == "fp32"


def test_damaged_saved_model_is_a_runner_error(saved_model, tmp_path):
    copy = tmp_path / "damaged_tf"
    shutil.copytree(saved_model, copy)
    (copy / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(RunnerError, match="not a loadable SavedModel|refusing to run .*damaged_tf"):
        open_runner(copy)
