"""rvm-export without --output/--checkpoint: the names and checkpoint `make export-all` uses; random
weights only with --seed; CoreML's format from the output suffix."""

from pathlib import Path
from typing import List

import pytest
from click.testing import CliRunner

from rvm_export import release as pipeline
from rvm_export.export import checkpoints
from rvm_export.export.base import ExportError, load_source
from rvm_export.export.cli import main
from rvm_export.export.coreml import format_for
from rvm_export.targets import TARGETS, ReleaseJob, artifact_name


@pytest.fixture
def no_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder without checkpoints, and no default checkpoint anywhere."""
    monkeypatch.chdir(tmp_path)
    absent = {v: [tmp_path / "elsewhere" / f"rvm_{v}.pth"] for v in checkpoints.DEFAULT_CHECKPOINTS}
    monkeypatch.setattr(checkpoints, "DEFAULT_CHECKPOINTS", absent)
    return tmp_path


def test_refuses_without_a_checkpoint_and_names_where_it_looked(no_checkpoints: Path) -> None:
    result = CliRunner().invoke(main, ["onnx", "--precision", "fp16"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rvm-export: error: no mobilenetv3 checkpoint found")
    assert str(no_checkpoints / "checkpoints" / "rvm_mobilenetv3.pth") in lines[0]
    assert str(no_checkpoints / "elsewhere" / "rvm_mobilenetv3.pth") in lines[0]
    assert "pass --checkpoint PATH" in lines[0] and "--seed N" in lines[0]
    assert list(no_checkpoints.iterdir()) == []


def test_checkpoint_and_seed_together_are_refused(tmp_path: Path, weights_path: Path) -> None:
    args = [
        "torchscript",
        "--checkpoint",
        str(weights_path),
        "--seed",
        "1",
        "--output",
        str(tmp_path / "a.torchscript"),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "not both" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_in_the_working_folder_is_found_first(no_checkpoints: Path, weights_path: Path) -> None:
    local = no_checkpoints / "checkpoints" / "rvm_mobilenetv3.pth"
    local.parent.mkdir()
    local.symlink_to(weights_path)
    assert checkpoints.find_checkpoint("mobilenetv3") == local
    assert pipeline.find_checkpoints(None, None)["mobilenetv3"] == local  # the same discovery
    assert pipeline.find_checkpoints(None, None)["resnet50"] is None


def test_default_output_and_checkpoint_then_verify_with_no_option(
    tmp_path: Path, weights_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rvm-export torchscript --precision fp16 --freeze` then `rvm-verify <the printed path>`, from a project folder."""
    from rvm_export.verify import harness
    from rvm_export.verify.cli import main as verify_main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(checkpoints.DEFAULT_CHECKPOINTS, "mobilenetv3", [weights_path])
    result = CliRunner().invoke(main, ["torchscript", "--precision", "fp16", "--freeze"])
    assert result.exit_code == 0, result.output
    name = artifact_name("torchscript", "mobilenetv3", precision="fp16", freeze=True)
    job_names = [job.name for job in TARGETS["torchscript"].jobs("mobilenetv3")]
    assert name == "rvm_mobilenetv3_fp16_frozen.torchscript" and name in job_names
    assert f"checkpoint: {weights_path} (found" in result.output
    assert f"wrote artifacts/{name}" in result.output
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == [name]

    monkeypatch.setattr(harness, "DEFAULT_CASES", ((64, 48, 1, 0.5),))  # keep the test small
    check = CliRunner().invoke(verify_main, [f"artifacts/{name}", "--frames", "2"])
    assert check.exit_code == 0, check.output
    assert "PASS" in check.output and f"weights   {weights_path.name} (sha256" in check.output  # a name, no path


def test_random_weights_only_with_an_explicit_seed(no_checkpoints: Path) -> None:
    result = CliRunner().invoke(main, ["torchscript", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "seeded random initialisation (seed 5), NOT trained weights" in result.output
    assert (no_checkpoints / "artifacts" / "rvm_mobilenetv3_fp32.torchscript").is_file()


def _release_jobs() -> List[ReleaseJob]:
    return [job for spec in TARGETS.values() for variant in ("mobilenetv3", "resnet50") for job in spec.jobs(variant)]


@pytest.mark.parametrize("job", _release_jobs(), ids=lambda job: job.name)
def test_every_export_all_job_is_the_cli_default_name(
    job: ReleaseJob, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_sources: dict
) -> None:
    """The job's options without --output give the job's name (exporters stubbed: only the path matters)."""
    written = []

    def record(model, output, *args, **kwargs) -> Path:
        written.append(Path(output))
        return Path(output)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("rvm_export.export.cli.load_source", lambda *a, **k: tiny_sources[job.variant])
    exporter = TARGETS[job.target].exporter.split(":")[0]
    for module in [f"{exporter}.export_{job.target}", f"{exporter}.export_saved_model", f"{exporter}.from_torch"]:
        monkeypatch.setattr(module, record if "export_" in module else (lambda model: model), raising=False)
    result = CliRunner().invoke(main, [job.target, "--seed", "0", *job.args])
    assert result.exit_code == 0, result.output
    assert written == [Path("artifacts") / job.name]


@pytest.fixture(scope="module")
def tiny_sources() -> dict:
    return {variant: load_source(None, variant, seed=0) for variant in ("mobilenetv3", "resnet50")}


@pytest.mark.parametrize(
    "output, fmt, expected",
    [
        ("rvm_1920x1080_s0.25_int8.mlmodel", None, ("neuralnetwork", "rvm_1920x1080_s0.25_int8.mlmodel")),
        ("a/b.mlpackage", None, ("mlprogram", "a/b.mlpackage")),
        ("b.mlpackage", "mlprogram", ("mlprogram", "b.mlpackage")),
        ("rvm_1920x1080_s0.25_int8", None, ("mlprogram", "rvm_1920x1080_s0.25_int8.mlpackage")),
        ("model", "neuralnetwork", ("neuralnetwork", "model.mlmodel")),
        (None, None, ("mlprogram", None)),
        (None, "neuralnetwork", ("neuralnetwork", None)),
    ],
)
def test_coreml_format_follows_the_suffix(output, fmt, expected) -> None:
    got_fmt, got_output = format_for(output, fmt)
    assert (got_fmt, str(got_output) if got_output else None) == expected


@pytest.mark.parametrize(
    "output, fmt, message",
    [
        ("m.mlmodel", "mlprogram", "format mlprogram contradicts m.mlmodel"),
        ("m.mlpackage", "neuralnetwork", "format neuralnetwork contradicts m.mlpackage"),
        ("m.onnx", None, "a CoreML model is saved as *.mlpackage"),
    ],
)
def test_coreml_format_contradictions_are_refused(output, fmt, message) -> None:
    with pytest.raises(ExportError, match=message.replace("*", r"\*")):
        format_for(output, fmt)


def test_coreml_contradiction_is_one_line_on_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "m.mlmodel"
    args = ["coreml", "--seed", "0", "--resolution", "64", "48", "--downsample-ratio", "0.5"]
    result = CliRunner().invoke(main, [*args, "--format", "mlprogram", "--output", str(out)])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("rvm-export: error:")]
    assert len(errors) == 1 and "contradicts" in errors[0]
    assert list(tmp_path.iterdir()) == []
