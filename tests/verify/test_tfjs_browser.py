"""rvm-verify on TF.js graph models in headless Chromium: WebGL (float32 and float16 textures) and
WebAssembly, with the real weights. One Chromium serves each test process (BrowserSession)."""

import shutil

import pytest

from tests.helpers import WEIGHTS, ArtifactCache, perturb_tfjs_weights, require, requires_browser

tf = require("tensorflow")
require("playwright")

from click.testing import CliRunner  # noqa: E402

from rvm_export.export.base import load_source  # noqa: E402
from rvm_export.export.tf_port import from_torch  # noqa: E402
from rvm_export.export.tfjs import export_tfjs  # noqa: E402
from rvm_export.runtimes import RunnerError, open_runner  # noqa: E402
from rvm_export.runtimes.tfjs_browser import BrowserSession  # noqa: E402
from rvm_export.verify.api import verify_artifact  # noqa: E402
from rvm_export.verify.cli import main as verify_main  # noqa: E402

# Ratio 0.5 runs the guided-filter refiner, where float16 textures used to break alpha.
CASE = dict(frames=2, sizes=[(96, 64)], ratios=[0.5])


pytestmark = requires_browser()


@pytest.fixture(scope="session")
def exported(artifacts: ArtifactCache):
    """The session cache's TF.js models (session-scoped, so these tests spread over both pytest-xdist workers;
    each worker's Chromium is its own BrowserSession)."""

    def naive(path) -> None:
        # The refiner as PyTorch writes it (variance as E[x²] - E[x]²): exact in float32, broken in float16.
        source = load_source(WEIGHTS)
        net = from_torch(source.model)
        net.refiner.naive_moments = True
        metadata = source.metadata("tfjs", "fp32", quantization="none")
        metadata.layout = "NHWC"
        export_tfjs(net, path, metadata, "none")

    return {
        "fp32": artifacts.export("tfjs", "rvm_mobilenetv3_tfjs"),
        "uint16": artifacts.export("tfjs", "rvm_mobilenetv3_uint16_tfjs", "--quantize", "uint16"),
        "naive": artifacts.once(("tfjs-naive-refiner",), "naive_tfjs", naive),
    }


@pytest.mark.parametrize("backend", ["webgl", "webgl-f16", "wasm"])
@pytest.mark.parametrize("precision", ["fp32", "uint16"])
def test_real_weights_pass_in_chromium(exported, precision, backend):
    report = verify_artifact(exported[precision], backend=backend, **CASE)
    assert report.passed, report.table()
    assert f"backend {backend}" in report.runtime and "Chromium" in report.runtime
    if backend.startswith("webgl"):
        assert "renderer" in report.runtime
    # float16 textures compute an fp32 or uint16 artifact in half precision: judged against PyTorch's fp16 noise
    assert report.precision == ("fp16" if backend == "webgl-f16" else precision)


def test_naive_variance_refiner_fails_on_float16_textures(exported):
    """The same graph with E[x²] - E[x]² passes on float32 textures and breaks alpha on float16 ones."""
    assert verify_artifact(exported["naive"], backend="webgl", **CASE).passed
    report = verify_artifact(exported["naive"], backend="webgl-f16", **CASE)
    assert not report.passed
    assert any(f.output == "pha" for f in report.failures), report.table()


def test_perturbed_weight_fails_on_webgl(exported, tmp_path):
    bad = perturb_tfjs_weights(exported["fp32"], tmp_path)
    report = verify_artifact(bad, backend="webgl", **CASE)
    assert not report.passed


def test_cli_reports_backend_and_renderer(exported):
    args = [str(exported["uint16"]), "--tfjs-backend", "webgl", "--frames", "2", "--size", "64x48", "--ratio", "1"]
    result = CliRunner().invoke(verify_main, args)
    assert result.exit_code == 0, result.output
    runtime = next(line for line in result.output.splitlines() if line.startswith("runtime"))
    assert "backend webgl" in runtime and "renderer" in runtime, runtime


def test_model_that_fails_to_load_is_one_line(exported, tmp_path):
    bad = tmp_path / "noshard_tfjs"
    shutil.copytree(exported["uint16"], bad)
    next(bad.glob("*.bin")).unlink()
    result = CliRunner().invoke(verify_main, [str(bad), "--tfjs-backend", "wasm"])
    assert result.exit_code == 2
    assert "could not load" in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_missing_chromium_is_one_line(exported, monkeypatch):
    monkeypatch.setattr(BrowserSession, "_shared", None)
    monkeypatch.setenv("RVM_CHROMIUM", "/nonexistent/chromium")
    result = CliRunner().invoke(verify_main, [str(exported["uint16"]), "--tfjs-backend", "webgl"])
    assert result.exit_code == 2
    assert "install_chromium.sh" in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_no_webgl_context_is_a_runner_error(exported, monkeypatch):
    monkeypatch.setattr(BrowserSession, "_shared", None)
    monkeypatch.setenv("RVM_CHROMIUM_ARGS", "--disable-webgl")  # read in the runtime's child process
    try:
        with pytest.raises(RunnerError, match="no WebGL context"):
            open_runner(exported["uint16"], backend="webgl")
    finally:
        if BrowserSession._shared is not None:
            BrowserSession._shared.close()


def test_tfjs_backend_is_refused_for_other_artifacts(tmp_path):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"")
    with pytest.raises(RunnerError, match="a runtime backend applies to TensorFlow.js artifacts only"):
        open_runner(onnx, backend="webgl")
