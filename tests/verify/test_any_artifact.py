"""rvm-verify on artifacts that carry no metadata (official release files, other converters):
variant and refiner from --checkpoint, precision and fixed sizes from the artifact itself, and other
exporters' known behaviours judged, not excused."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from rvm_export.verify.api import verify_artifact
from rvm_export.verify.cli import main as verify_main
from tests.helpers import COREML_CASE, WEIGHTS, ArtifactCache, always_refine, export_artifact, require, rewrite_onnx

SMALL = ["--frames", "3", "--size", "97x75"]


def run_verify(path: Path, *args: str):
    return CliRunner().invoke(verify_main, [str(path), *args])


def strip_onnx(source: Path, path: Path, edit=None) -> Path:
    return rewrite_onnx(source, path, edit, strip_metadata=True)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_onnx_without_metadata_verifies_with_checkpoint(
    tmp_path: Path, artifacts: ArtifactCache, precision: str
) -> None:
    path = strip_onnx(artifacts.onnx(precision), tmp_path / f"other_{precision}.onnx")
    result = run_verify(path, "--checkpoint", str(WEIGHTS), *SMALL, "--ratio", "0.5")
    assert result.exit_code == 0, result.output
    assert "metadata  NONE in the artifact" in result.output
    assert f"mobilenetv3, fast_guided_filter, {precision}]" in result.output
    assert "precision from src is " in result.output


def test_without_metadata_or_checkpoint_is_bad_input(tmp_path: Path, artifacts: ArtifactCache) -> None:
    path = strip_onnx(artifacts.onnx("fp32"), tmp_path / "bare.onnx")
    result = run_verify(path)
    assert result.exit_code == 2
    assert (
        "carries no rvm_metadata.json" in result.output
        and "pass the checkpoint it was exported from to verify it (--checkpoint)" in result.output
    )


def test_official_like_onnx_fails_at_ratio_one_and_passes_below(tmp_path: Path, artifacts: ArtifactCache) -> None:
    """The official ONNX export runs the refiner at ratio 1.0 too, where PyTorch skips it."""
    path = strip_onnx(artifacts.onnx("fp32"), tmp_path / "official_like.onnx", always_refine)
    at_one = run_verify(path, "--checkpoint", str(WEIGHTS), *SMALL, "--ratio", "1")
    assert at_one.exit_code == 1, at_one.output
    first = next(line for line in at_one.output.splitlines() if line.startswith("FAIL"))
    assert first.split("first: ")[1].split(",")[0] in ("fgr", "pha"), first
    below = run_verify(path, "--checkpoint", str(WEIGHTS), *SMALL, "--ratio", "0.5")
    assert below.exit_code == 0, below.output


def test_torchscript_without_metadata_reads_its_precision(tmp_path: Path) -> None:
    from rvm_export.export.base import at_precision, load_source
    from rvm_export.export.torchscript import export_torchscript

    source = load_source(WEIGHTS)
    ours = export_torchscript(
        at_precision(source.model, "fp16"),
        tmp_path / "ours.torchscript",
        source.metadata("torchscript", "fp16", freeze=True),
        True,
    )
    other = tmp_path / "other.torchscript"
    torch.jit.save(torch.jit.load(str(ours)), str(other))  # saved without our _extra_files
    report = verify_artifact(other, WEIGHTS, frames=2, sizes=[(96, 64)], ratios=[0.5])
    assert report.passed, report.table()
    assert report.metadata.precision == "fp16"
    assert "frozen graph constants" in report.metadata.inferred["precision"]


def test_static_onnx_without_metadata_needs_its_ratio(tmp_path: Path, artifacts: ArtifactCache) -> None:
    path = strip_onnx(artifacts.onnx("fp32", 12, (161, 97), 0.5), tmp_path / "static.onnx")
    result = run_verify(path, "--checkpoint", str(WEIGHTS), "--frames", "2")
    assert result.exit_code == 2 and "pass that ratio (--ratio)" in result.output
    result = run_verify(path, "--checkpoint", str(WEIGHTS), "--frames", "2", "--ratio", "0.5")
    assert result.exit_code == 0, result.output
    assert "161x97 b1 r0.5 t2" in result.output


def test_coreml_without_metadata_verifies_at_its_fixed_size(tmp_path: Path, artifacts: ArtifactCache) -> None:
    require("coremltools")
    import coremltools as ct

    spec = ct.utils.load_spec(str(artifacts.coreml("neuralnetwork", "int8")))
    spec.description.metadata.userDefined.clear()
    for feature in [*spec.description.input, *spec.description.output]:
        feature.shortDescription = ""
    path = tmp_path / "other.mlmodel"
    ct.utils.save_spec(spec, str(path))
    result = run_verify(path, "--checkpoint", str(WEIGHTS), "--frames", "2", "--ratio", str(COREML_CASE[2]))
    assert result.exit_code == 0, result.output
    assert "coreml, mobilenetv3, fast_guided_filter, int8]" in result.output


def test_tfjs_box_filter_padded_unlike_pytorch_fails_below_ratio_one(tmp_path: Path, monkeypatch) -> None:
    """A converter whose box filter averages over the valid pixels only (TF's 'SAME' average pool)
    instead of PyTorch's zero-padded mean: right at ratio 1 (no refiner), wrong at the borders below it."""

    tf = require("tensorflow")
    from rvm_export.export.tf_port import guided_filter

    def valid_mean(x, radius):
        return tf.nn.avg_pool2d(x, 2 * radius + 1, 1, "SAME")

    monkeypatch.setattr(guided_filter, "box_filter", valid_mean)
    out = tmp_path / "other_tfjs"
    export_artifact("tfjs", "--checkpoint", str(WEIGHTS), "--output", str(out))
    model_json = out / "model.json"
    content = json.loads(model_json.read_text())
    content.pop("userDefinedMetadata")
    model_json.write_text(json.dumps(content))
    args = ["--checkpoint", str(WEIGHTS), "--frames", "2", "--size", "64x48"]
    below = run_verify(out, *args, "--ratio", "0.5")
    assert below.exit_code == 1, below.output
    assert "metadata  NONE" in below.output
    first = next(line for line in below.output.splitlines() if line.startswith("FAIL"))
    assert first.split("first: ")[1].split(",")[0] in ("fgr", "pha"), first
    at_one = run_verify(out, *args, "--ratio", "1")
    assert at_one.exit_code == 0, at_one.output
    shutil.rmtree(out)


@pytest.mark.parametrize("route", ["script", "frozen"])
def test_torchscript_of_the_eager_model_by_other_routes_verifies(tmp_path: Path, route: str) -> None:
    """As the official TorchScript release is made (torch.jit.script of the model with its weights), frozen or
    not: the inspection lets it through (its operators cannot act) and the confined child runs it to a PASS.
    (A torch.jit.trace of RVM bakes its ratio in and takes no ratio argument: inspected in test_inspection_*.)"""
    from model import load_checkpoint

    module = torch.jit.script(load_checkpoint(WEIGHTS).eval())
    if route == "frozen":
        module = torch.jit.freeze(module)
    path = tmp_path / f"{route}.torchscript"
    module.save(str(path))
    args = ["--checkpoint", str(WEIGHTS), "--frames", "2", "--size", "64x96", "--ratio", "0.5", "--require-sandbox"]
    result = run_verify(path, *args)
    assert result.exit_code == 0, result.output
    assert "sandbox   Landlock" in result.output and "PASS" in result.output, result.output
