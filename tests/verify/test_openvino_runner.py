"""OpenVINO IR specifics: the fp16 artifact, the CPU precision the runner pins (and why: bf16 and OpenVINO's
own fp16 compression fail), and clear errors. (The fp32 artifact passing, broken ones failing and the doc
snippet: tests/test_conformance.py.)"""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import ArtifactCache, require

require("openvino")
import openvino as ov  # noqa: E402

from rvm_export.contract import METADATA_KEY  # noqa: E402
from rvm_export.export.cli import main as export_main  # noqa: E402
from rvm_export.runtimes import open_runner  # noqa: E402
from rvm_export.runtimes.openvino import OpenVinoRunner  # noqa: E402
from rvm_export.verify.api import verify_artifact  # noqa: E402
from rvm_export.verify.harness import verify_runner  # noqa: E402
from rvm_export.verify.sequence import Case  # noqa: E402


@pytest.fixture(scope="module")
def ir(artifacts: ArtifactCache) -> dict:
    """fp32 (the conformance suite's) and fp16, exported once per session."""
    return {
        "fp32": artifacts.export("openvino", "rvm_mobilenetv3_fp32.xml"),
        "fp16": artifacts.export("openvino", "rvm_mobilenetv3_fp16.xml", "--precision", "fp16"),
    }


def test_fp16_ir_passes(ir: dict) -> None:
    report = verify_artifact(ir["fp16"], frames=3, sizes=[(96, 64)], ratios=[1.0, 0.5])
    assert report.passed, report.table()
    assert report.metadata.precision == "fp16" and report.metadata.options["inference_precision"] == "f32"
    assert report.worst()["pha"]["max_abs"] < 0.1


def test_fp16_weights_are_stored_as_fp16(ir: dict) -> None:
    fp32, fp16 = (ir[p].with_suffix(".bin").stat().st_size for p in ("fp32", "fp16"))
    assert fp16 < 0.55 * fp32


def test_runner_pins_f32_where_the_cpu_default_is_bf16(ir: dict) -> None:
    runner = OpenVinoRunner(ir["fp32"])
    assert runner.inference_precision == "f32"
    core = ov.Core()
    if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        assert core.get_property("CPU", "INFERENCE_PRECISION_HINT").to_string() == "bf16", "the reason for pinning"


def test_bf16_run_of_an_fp32_artifact_fails(ir: dict, real_model) -> None:
    runner = OpenVinoRunner(ir["fp32"], inference_precision="bf16")
    if runner.inference_precision != "bf16":
        pytest.skip("this CPU has no bf16: OpenVINO computes in f32 at the bf16 setting")
    results = verify_runner(runner, real_model, [Case(96, 64, 1, 0.5, 2)])
    failures = [f for r in results for f in r.failures]
    assert failures and "pha" in {f.output for f in failures}


def test_bf16_setting_from_the_environment(ir: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RVM_OPENVINO_PRECISION", "bf16")
    supported = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert OpenVinoRunner(ir["fp32"]).inference_precision == ("bf16" if supported else "f32")
    monkeypatch.setenv("RVM_OPENVINO_PRECISION", "int3")
    with pytest.raises(Exception, match="not one of f32, bf16, f16"):
        open_runner(ir["fp32"])  # the setting reaches the runtime's child process


def test_openvino_own_fp16_compression_fails_the_fp16_bound(ir: dict, tmp_path: Path) -> None:
    """Why the exporter compresses the weights itself: save_model(compress_to_fp16=True) also rounds
    the guided filter's box constants, and alpha moves beyond the fp16 tolerance."""
    model = ov.Core().read_model(str(ir["fp32"]))
    meta = model.get_rt_info([METADATA_KEY]).astype(str).replace('"precision": "fp32"', '"precision": "fp16"')
    model.set_rt_info(meta, [METADATA_KEY])
    path = tmp_path / "ov_compressed.xml"
    ov.save_model(model, str(path), compress_to_fp16=True)
    report = verify_artifact(path, frames=2, sizes=[(320, 192)], ratios=[0.5])  # measured: pha 0.181 at frame 0
    assert not report.passed and {f.output for f in report.failures} >= {"pha"}


def test_missing_bin_is_a_one_line_error(ir: dict, tmp_path: Path) -> None:
    path = tmp_path / "lonely.xml"
    shutil.copy(ir["fp32"], path)
    with pytest.raises(Exception, match=r"lonely\.bin is missing|refusing to run .*lonely"):
        open_runner(path)


def test_export_refuses_an_output_that_is_not_xml(tmp_path: Path, weights_path: Path) -> None:
    out = tmp_path / "model.bin"
    result = CliRunner().invoke(export_main, ["openvino", "--checkpoint", str(weights_path), "--output", str(out)])
    assert result.exit_code == 2 and "must end in .xml" in result.output
    assert not list(tmp_path.iterdir())
