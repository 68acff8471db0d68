"""rvm-export torchscript: runtime ratio, both input ranks, metadata inside, atomic writes, clear errors."""

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from rvm_export.contract import METADATA_KEY, ArtifactMetadata
from rvm_export.export.base import ExportError, atomic_output
from rvm_export.export.cli import main


def export(args: list) -> object:
    return CliRunner().invoke(main, ["torchscript", *args])


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory, weights_path: Path) -> Path:
    out = tmp_path_factory.mktemp("ts") / "rvm.torchscript"
    result = export(["--checkpoint", str(weights_path), "--output", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_metadata_is_inside_the_file(scripted: Path, weights_path: Path) -> None:
    extra = {METADATA_KEY: ""}
    torch.jit.load(str(scripted), _extra_files=extra)
    meta = ArtifactMetadata.from_json(extra[METADATA_KEY])
    assert (meta.format, meta.variant, meta.refiner, meta.precision) == (
        "torchscript", "mobilenetv3", "fast_guided_filter", "fp32",
    )  # fmt: skip
    assert meta.checkpoint_sha256 == "b70425a1ddfe697f58bf26d2af1e5b5520fc1810ec22d0794da38400f16ca503"
    assert meta.tools["torch"].startswith("2.13")


def test_ratio_is_a_runtime_argument_and_both_ranks_work(scripted: Path, real_model, astronaut) -> None:
    module = torch.jit.load(str(scripted))
    src = torch.nn.functional.interpolate(astronaut, size=(80, 96))
    with torch.inference_mode():
        for ratio in (1.0, 0.5, 0.25):
            torch.testing.assert_close(
                module(src, downsample_ratio=ratio)[1], real_model(src, downsample_ratio=ratio)[1]
            )
        fgr, pha, *rec = module(torch.stack([src, src], 1), downsample_ratio=0.5)
    assert pha.shape == (1, 2, 1, 80, 96) and all(r.dim() == 4 for r in rec)


def test_seeded_random_export_is_labelled(tmp_path: Path) -> None:
    out = tmp_path / "r50.torchscript"
    result = export(["--variant", "resnet50", "--seed", "3", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "seeded random initialisation (seed 3), NOT trained weights" in result.output
    extra = {METADATA_KEY: ""}
    torch.jit.load(str(out), _extra_files=extra)
    meta = ArtifactMetadata.from_json(extra[METADATA_KEY])
    assert meta.checkpoint_sha256 is None and meta.seed == 3 and meta.variant == "resnet50"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--checkpoint", "/nonexistent/rvm.pth"], "checkpoint not found: /nonexistent/rvm.pth"),
        (["--variant", "resnet50"], "this is a mobilenetv3 checkpoint; pass --variant mobilenetv3"),
        (["--precision", "int4"], "Invalid value for '--precision'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, weights_path: Path, args: list, message: str) -> None:
    full = (["--checkpoint", str(weights_path)] if "--checkpoint" not in args else []) + args
    result = export([*full, "--output", str(tmp_path / "x.torchscript")])
    assert result.exit_code == 2
    assert message in result.output
    assert not list(tmp_path.iterdir()), "nothing may be written on bad input"


def test_unwritable_output_folder(tmp_path: Path, weights_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root (as in CI) passes permission checks, but not a real write to /proc.
    result = export(["--checkpoint", str(weights_path), "--output", "/proc/x.torchscript"])
    assert result.exit_code == 2 and "cannot write to /proc" in result.output
    assert not Path("/proc/x.torchscript").exists()


def test_output_inside_a_file_is_refused(tmp_path: Path, weights_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = export(["--checkpoint", str(weights_path), "--output", str(blocker / "x.torchscript")])
    assert result.exit_code == 2 and "cannot create the folder" in result.output


def test_interrupted_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "model.torchscript"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"half a model")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_existing_artifact_is_replaced_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "model.torchscript"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"new but broken")
            raise RuntimeError("exporter crashed")
    assert out.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1
    with atomic_output(out) as tmp:
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new"


def test_non_artifact_folder_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="non-empty folder"):
        with atomic_output(tmp_path / "precious"):
            pass
