"""The SavedModel contract: the documented ways of loading and calling it beyond docs/tensorflow.md's snippet
(that one runs as written in tests/test_conformance.py), and bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ArtifactCache, require

tf = require("tensorflow")

from click.testing import CliRunner  # noqa: E402

from rvm_export.export.cli import main  # noqa: E402

OUTPUTS = {"fgr", "pha", "r1o", "r2o", "r3o", "r4o"}


@pytest.fixture(scope="module")
def saved_model(artifacts: ArtifactCache):
    return artifacts.export("tensorflow", "rvm_mobilenetv3_tf")


def frames(batch=1, height=65, width=97, count=2):
    rng = np.random.default_rng(0)
    return [tf.constant(rng.random((batch, height, width, 3), dtype=np.float32)) for _ in range(count)]


def test_metadata_asset(saved_model):
    meta = json.loads((saved_model / "assets" / "rvm_metadata.json").read_text())
    assert meta["format"] == "tensorflow" and meta["layout"] == "NHWC" and meta["refiner"] == "fast_guided_filter"


def test_serving_default_signature_named_io(saved_model):
    fn = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    assert set(fn.structured_input_signature[1]) == {"src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio"}
    assert set(fn.structured_outputs) == OUTPUTS
    src = frames(height=48, width=64, count=1)[0]
    zero = tf.zeros([1, 1, 1, 1])
    out = fn(src=src, r1i=zero, r2i=zero, r3i=zero, r4i=zero, downsample_ratio=tf.constant(1.0))
    assert out["pha"].shape == (1, 48, 64, 1)


def test_keras3_tfsmlayer_default_endpoint(saved_model):
    keras = require("keras")
    layer = keras.layers.TFSMLayer(str(saved_model))  # endpoint "serve"
    model = tf.saved_model.load(str(saved_model))
    src = frames(count=1)[0]
    args = [src, *[tf.constant(0.0)] * 4, tf.constant(0.25)]
    np.testing.assert_allclose(layer(args)["pha"].numpy(), model(args)["pha"].numpy(), atol=1e-6)


def test_legacy_tf_keras_load_model_as_documented(saved_model):
    """The documentation's exact code, with tf_keras installed and TF_USE_LEGACY_KERAS=1."""
    require("tf_keras")
    code = f"""
import os
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow as tf
model = tf.keras.models.load_model({str(saved_model)!r})
model = tf.function(model)
rec = [tf.constant(0.)] * 4
downsample_ratio = tf.constant(0.25)
for src in [tf.random.uniform([1, 72, 128, 3])] * 2:
    out = model([src, *rec, downsample_ratio])
    fgr, pha, *rec = out['fgr'], out['pha'], out['r1o'], out['r2o'], out['r3o'], out['r4o']
print("SHAPE", tuple(pha.shape))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "SHAPE (1, 72, 128, 1)" in run.stdout, run.stderr[-2000:]


def test_bad_checkpoint_writes_nothing(tmp_path):
    out = tmp_path / "m_tf"
    result = CliRunner().invoke(main, ["tensorflow", "--checkpoint", str(tmp_path / "nope.pth"), "--output", str(out)])
    assert result.exit_code == 2 and "checkpoint not found" in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(main, ["tensorflow", "--output", str(tmp_path)])
    assert result.exit_code == 2 and "not an artifact" in result.output
    assert (tmp_path / "keep.txt").read_text() == "mine"
