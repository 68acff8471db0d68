"""make export-all's pipeline: checkpoint discovery, manifest, failure exit code."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from rvm_export import release as pipeline
from rvm_export import targets
from rvm_export.export import checkpoints
from rvm_export.verify import harness

TWO_FRAMES = ["--frames", "2"]


def one_torchscript_job(monkeypatch: pytest.MonkeyPatch, name: str = "{v}.torchscript") -> None:
    """The registry with one fp32 TorchScript release job per variant, named ``name``."""
    spec = dataclasses.replace(
        targets.TARGETS["torchscript"], release=lambda v: [((), {})], artifact_name=lambda v: name.format(v=v)
    )
    monkeypatch.setattr(pipeline, "TARGETS", {"torchscript": spec})


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """One fp32 TorchScript job per variant, verified on one small case."""
    one_torchscript_job(monkeypatch)
    monkeypatch.setattr(harness, "DEFAULT_CASES", ((64, 48, 1, 0.5),))


def test_finds_checkpoints_and_labels_random_weights(weights_path: Path) -> None:
    found = pipeline.find_checkpoints(None, None)
    assert found["mobilenetv3"] is not None and found["mobilenetv3"].name in ("rvm_mobilenetv3.pth", weights_path.name)
    given = pipeline.find_checkpoints(str(weights_path), None)
    assert given["mobilenetv3"] == weights_path


def test_export_all_writes_a_verified_manifest(
    tmp_path: Path, weights_path: Path, tiny: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(checkpoints.DEFAULT_CHECKPOINTS, "resnet50", [tmp_path / "absent.pth"])
    result = CliRunner().invoke(pipeline.main, ["--checkpoint", str(weights_path), "--out", str(tmp_path), *TWO_FRAMES])
    assert result.exit_code == 0, result.output
    assert f"checkpoint for mobilenetv3: {weights_path}" in result.output
    assert "checkpoint for resnet50: NONE FOUND: seeded random initialisation" in result.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entries = {e["name"]: e for e in manifest["artifacts"]}
    mobile = entries["mobilenetv3.torchscript"]
    assert mobile["status"] == "verified" and mobile["verification"]["passed"]
    assert len(mobile["sha256"]) == 64 and mobile["size_bytes"] > 1_000_000
    assert mobile["metadata"]["checkpoint_sha256"].startswith("b70425a1")
    resnet = entries["resnet50.torchscript"]
    assert resnet["status"] == "verified" and manifest["checkpoints"]["resnet50"] is None
    assert resnet["metadata"]["checkpoint_sha256"] is None and resnet["metadata"]["seed"] == 0


def test_bad_checkpoint_and_unknown_target_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    torch.save({"nothing": torch.zeros(1)}, bad)
    result = CliRunner().invoke(pipeline.main, ["--checkpoint", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "not an RVM MattingNetwork checkpoint" in result.output
    result = CliRunner().invoke(pipeline.main, ["--only", "tensorrt", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown target(s) tensorrt" in result.output


def test_failed_parity_makes_export_all_fail(
    tmp_path: Path, weights_path: Path, tiny: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rvm_export.verify import tolerances

    impossible = tolerances.Tolerance(-1, -1, -1)  # even an exact match fails
    gate = tolerances.PrecisionTolerance(-1, impossible, impossible, impossible, impossible, -1, -1)
    monkeypatch.setitem(tolerances.TOLERANCES, "fp32", gate)
    one_torchscript_job(monkeypatch, "m.torchscript")
    monkeypatch.setattr(pipeline, "find_checkpoints", lambda *a: {"mobilenetv3": weights_path})
    result = CliRunner().invoke(pipeline.main, ["--out", str(tmp_path), *TWO_FRAMES])
    assert result.exit_code == 1, result.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [e["status"] for e in manifest["artifacts"]] == ["parity failed"]
    assert "1 failed" in result.output


def test_openvino_artifact_counts_its_bin_and_new_targets_have_jobs(tmp_path: Path) -> None:
    xml, weights = tmp_path / "m.xml", tmp_path / "m.bin"
    xml.write_bytes(b"x" * 10)
    weights.write_bytes(b"w" * 90)
    assert pipeline.size_bytes(xml) == 100
    only_xml = pipeline.sha256(xml)
    weights.write_bytes(b"v" * 90)
    assert pipeline.sha256(xml) != only_xml, "a changed .bin is a changed artifact"
    names = [job.name for target in ("pt2", "openvino") for job in targets.TARGETS[target].jobs("mobilenetv3")]
    assert names == [
        "rvm_mobilenetv3_fp32.pt2",
        "rvm_mobilenetv3_fp32_openvino.xml",
        "rvm_mobilenetv3_fp16_openvino.xml",
    ]
