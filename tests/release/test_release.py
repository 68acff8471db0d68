"""make export-all as a release (issue 29 items 2, 4, 5): no machine paths in the manifest, unchanged artifacts
skipped (FORCE redoes them), a change to one exporter redoes only its target, JUnit for CI (read with junitparser);
and ``rvm-verify --junit``."""

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rvm_export import release as pipeline
from rvm_export import targets
from rvm_export.verify import harness, tolerances
from rvm_export.verify.cli import main as verify_main
from tests.helpers import ArtifactCache, require

junitparser = require("junitparser")
TWO_FRAMES = ["--frames", "2"]


@pytest.fixture
def one_job(monkeypatch: pytest.MonkeyPatch, weights_path: Path) -> None:
    """One fp32 TorchScript release job for the real MobileNetV3 weights, verified on one small case."""
    spec = dataclasses.replace(
        targets.TARGETS["torchscript"], release=lambda v: [((), {})], artifact_name=lambda v: f"{v}.torchscript"
    )
    monkeypatch.setattr(pipeline, "TARGETS", {"torchscript": spec})
    monkeypatch.setattr(harness, "DEFAULT_CASES", ((64, 48, 1, 0.5),))
    monkeypatch.setattr(pipeline, "find_checkpoints", lambda *a: {"mobilenetv3": weights_path})


def export_all(out: Path, *args: str):
    result = CliRunner().invoke(
        pipeline.main, ["--out", str(out), "--junit", str(out / "junit.xml"), *TWO_FRAMES, *args]
    )
    return result, json.loads((out / "manifest.json").read_text())


def test_no_machine_paths_skip_force_and_junit(tmp_path: Path, weights_path: Path, one_job: None) -> None:
    out = tmp_path / "release"
    result, manifest = export_all(out)
    assert result.exit_code == 0, result.output
    text = (out / "manifest.json").read_text()
    assert str(tmp_path) not in text and str(weights_path.parent) not in text, "a machine path in the manifest"
    (entry,) = manifest["artifacts"]
    assert entry["command"] == (
        f"rvm-export torchscript --output mobilenetv3.torchscript --checkpoint {weights_path.name}"
    )
    assert manifest["checkpoints"]["mobilenetv3"]["file"] == weights_path.name
    assert entry["metadata"]["checkpoint"] == weights_path.name and entry["metadata"]["created"] is None
    xml = junitparser.JUnitXml.fromfile(str(out / "junit.xml"))
    cases = [case for suite in xml for case in suite]
    assert [c.name for c in cases] == ["artifact checks", "64x48 b1 r0.5 t2"] and all(c.is_passed for c in cases)

    again, manifest2 = export_all(out)
    assert (
        again.exit_code == 0
        and "mobilenetv3.torchscript: unchanged (inputs and files as in the manifest), skipped" in again.output
    )
    assert manifest2["artifacts"] == manifest["artifacts"]
    skipped = [case for suite in junitparser.JUnitXml.fromfile(str(out / "junit.xml")) for case in suite]
    assert len(skipped) == 2 and all(c.is_skipped for c in skipped)

    forced, _ = export_all(out, "--force")
    assert forced.exit_code == 0 and "skipped" not in forced.output and "PASS" in forced.output

    (out / "mobilenetv3.torchscript").write_bytes(b"tampered")  # its files no longer hash to the manifest
    redone, manifest3 = export_all(out)
    assert "skipped" not in redone.output and manifest3["artifacts"][0]["sha256"] == manifest["artifacts"][0]["sha256"]


def test_a_changed_exporter_redoes_its_target_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The inputs hash the exporter module and the export modules it imports: ONNX's do not include the TensorFlow
    port, tfjs's do; the shared model/contract/registry are in every target's."""
    onnx = {p.relative_to(pipeline.REPO).as_posix() for p in pipeline.exporter_sources("onnx")}
    tfjs = {p.relative_to(pipeline.REPO).as_posix() for p in pipeline.exporter_sources("tfjs")}
    torchscript = {p.relative_to(pipeline.REPO).as_posix() for p in pipeline.exporter_sources("torchscript")}
    assert "rvm_export/export/onnx.py" in onnx and "rvm_export/export/onnx.py" not in torchscript
    assert any(p.startswith("rvm_export/export/tf_port/") for p in tfjs)
    assert not any(p.startswith("rvm_export/export/tf_port/") for p in onnx)
    assert {"model/network.py", "rvm_export/contract/metadata.py", "rvm_export/export/base.py"} <= torchscript
    job = targets.TARGETS["onnx"].jobs("mobilenetv3")[0]
    before = pipeline.job_inputs(job, "0" * 64)
    digests = {"onnx": "changed"}
    real = pipeline.exporter_digest
    monkeypatch.setattr(pipeline, "exporter_digest", lambda t: digests.get(t) or real(t))
    assert pipeline.job_inputs(job, "0" * 64) != before
    ts_job = targets.TARGETS["torchscript"].jobs("mobilenetv3")[0]
    assert pipeline.job_inputs(ts_job, "0" * 64)["exporter_sha256"] == real("torchscript")


def test_rvm_verify_junit(artifacts: ArtifactCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One test case per case plus the artifact's own checks; a failure's message is the one the table prints."""
    good = artifacts.export("torchscript", "rvm_mobilenetv3_fp32.torchscript")
    args = ["--frames", "2", "--size", "64x48", "--ratio", "0.5", "--ratio", "1"]
    ok = CliRunner().invoke(verify_main, [str(good), *args, "--junit", str(tmp_path / "ok.xml")])
    assert ok.exit_code == 0, ok.output
    xml = junitparser.JUnitXml.fromfile(str(tmp_path / "ok.xml"))
    assert xml.tests == 3 and xml.failures == 0
    assert [c.name for s in xml for c in s] == ["artifact checks", "64x48 b1 r0.5 t2", "64x48 b1 r1 t2"]

    impossible = tolerances.Tolerance(-1, -1, -1)  # even an exact match fails
    gate = tolerances.PrecisionTolerance(-1, impossible, impossible, impossible, impossible, -1, -1)
    monkeypatch.setitem(tolerances.TOLERANCES, "fp32", gate)
    failed = CliRunner().invoke(verify_main, [str(good), *args, "--junit", str(tmp_path / "fail.xml")])
    assert failed.exit_code == 1
    xml = junitparser.JUnitXml.fromfile(str(tmp_path / "fail.xml"))
    assert xml.failures == 2
    first = next(c for s in xml for c in s if not c.is_passed)
    message = first.result[0].message
    assert f"first: {message}" in failed.output

    bad = CliRunner().invoke(verify_main, [str(good), *args, "--junit", "/proc/junit.xml"])
    assert bad.exit_code == 2 and "choose another --junit path" in bad.output
