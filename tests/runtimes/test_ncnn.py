"""ncnn beyond the conformance suite: the conversion at fp32 (what x86 computes), the phone's fp16 gate with the
refiner's feature mask, the fixed ratio, sizes off the ratio's grid, and the inspector.

The artifact is the conformance suite's (the session's ``artifacts`` cache, real weights, ratio 0.5)."""

from pathlib import Path

import numpy as np
import pytest

from rvm_export.contract import ncnn_param
from tests.helpers import ArtifactCache, copy_artifact, encode_clip, leftovers, read_video, require
from tests.runtimes.ncnn_edits import ncnn_without_featmask

NAME = "rvm_mobilenetv3_fp32_s0.5.ncnn.param"


@pytest.fixture()
def good(artifacts: ArtifactCache) -> Path:
    require("ncnn")
    require("pnnx")
    return artifacts.export("ncnn", NAME, "--downsample-ratio", "0.5")


def test_the_param_carries_the_contract(good: Path) -> None:
    param = ncnn_param.parse(good.read_text())
    inputs = [layer.tops[0] for layer in param.inputs()]
    assert inputs == ["src", "r1i", "r2i", "r3i", "r4i"]
    written = {top for layer in param.layers for top in layer.tops}
    assert {"fgr", "pha", "r1o", "r2o", "r3o", "r4o"} <= written
    head = ncnn_param.projection_split(param)
    refiner = ncnn_param.refiner_layers(param, head)
    assert refiner and all(layer.featmask == ncnn_param.FP32_FEATMASK for layer in refiner)
    assert sum(layer.featmask != 0 for layer in param.layers) == len(refiner)  # the network keeps fp16 on phones
    metadata = param.metadata_text()
    assert metadata is not None and '"downsample_ratio": 0.5' in metadata


def test_the_conversion_is_exact_at_fp32(good: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Judged at what x86 computes (fp32), the fp32 gate: the conversion itself adds only float noise."""
    from rvm_export.verify.api import verify_artifact

    monkeypatch.setenv("RVM_NCNN_JUDGE", "fp32")
    report = verify_artifact(good, frames=3, sizes=[(128, 96)])
    assert report.passed, report.table()
    assert report.precision == "fp32" and report.worst()["pha"]["max_abs"] < 2e-3


def test_off_the_ratio_grid_the_verifier_shows_ncnns_resampling(good: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """97x65 at 0.5: ncnn samples with 97/48, PyTorch with 2; the fp32 gate catches it from frame 0."""
    from rvm_export.verify.api import verify_artifact

    monkeypatch.setenv("RVM_NCNN_JUDGE", "fp32")
    report = verify_artifact(good, frames=2, sizes=[(97, 65)])
    assert not report.passed and min(f.frame for f in report.failures) == 0, report.table()


def test_without_the_feature_mask_the_phone_gate_fails(good: Path, tmp_path: Path) -> None:
    from rvm_export.verify.api import verify_artifact

    report = verify_artifact(ncnn_without_featmask(good, tmp_path), frames=2, sizes=[(96, 64)])
    assert not report.passed
    assert any("guided filter in fp16" in f.message() for f in report.failures), report.table()


def test_another_ratio_is_one_line(good: Path) -> None:
    from rvm_export.runtimes import RunnerError
    from rvm_export.verify.api import verify_artifact

    with pytest.raises(RunnerError, match="exported for downsample_ratio 0.5 only"):
        verify_artifact(good, frames=2, sizes=[(96, 64)], ratios=[0.25])


@pytest.mark.parametrize(
    "edit, refused",
    [
        (lambda text: text.replace("Convolution ", "MyConv ", 1), "not one of ncnn's built-in layers"),
        (lambda text: text + "junk after the layers\n", "text after the last layer"),
        (lambda text: text.replace(" src ", " nowhere ", 2), "which no earlier layer writes"),
        (lambda text: text.replace(" 0=", " stray 0=", 1), "not key=value"),
    ],
)
def test_inspection_refuses(good: Path, tmp_path: Path, edit, refused: str) -> None:
    from rvm_export.runtimes import RunnerError, open_runner

    path = copy_artifact(good, tmp_path)
    path.write_text(edit(path.read_text()))
    with pytest.raises(RunnerError, match=refused) as caught:
        open_runner(path)
    assert "\n" not in str(caught.value)


def test_inspection_refuses_weights_outside_the_folder(good: Path, tmp_path: Path) -> None:
    from rvm_export.runtimes import RunnerError, open_runner

    (tmp_path / "inside").mkdir()
    path = copy_artifact(good, tmp_path / "inside")
    path.with_suffix(".bin").unlink()
    path.with_suffix(".bin").symlink_to(good.with_suffix(".bin"))
    with pytest.raises(RunnerError, match="outside the model's folder"):
        open_runner(path)


def test_state_shapes_match_the_graph(good: Path) -> None:
    """The runner's zero states are the shapes the graph writes back (odd low-resolution sizes included)."""
    from rvm_export.runtimes.ncnn import NcnnRunner

    with NcnnRunner(good) as runner:  # in this process, to read its zero states
        src = np.random.default_rng(0).random((1, 3, 90, 134), np.float32)  # 45x67 at 0.5: odd both ways
        _, state = runner.infer(src, runner.initial_state(1), 0.5)
        assert [s.shape for s in state[0]] == [z.shape for z in runner._zeros(90, 134)]


def test_convert_video_refuses_frames_off_the_grid_and_mattes_them_resized(good: Path, tmp_path: Path) -> None:
    """A 97x65 clip at ratio 0.5 would be resampled unlike PyTorch (fgr off by 0.9): refused before any output
    exists, naming the input_resize that fixes it; with that resize the run completes."""
    from fractions import Fraction

    from rvm_export.contract.errors import InferenceError
    from rvm_export.inference.convert import convert_video

    clip = tmp_path / "clip.mp4"
    encode_clip(clip, 97, 65, 2, Fraction(25))
    alpha = tmp_path / "pha.mp4"
    with pytest.raises(InferenceError, match=r"97x65 frames are off the grid .* input_resize=\(98, 66\)"):
        convert_video(str(good), input_source=str(clip), output_alpha=str(alpha), progress=False)
    assert not alpha.exists() and not leftovers(tmp_path)
    convert_video(str(good), input_source=str(clip), input_resize=(98, 66), output_alpha=str(alpha), progress=False)
    assert read_video(alpha)[0].shape[:3] == (2, 66, 98)


def test_fp16_weights_pass_the_phone_gate_and_rounding_the_refiner_too_fails(
    good: Path, artifacts: ArtifactCache, tmp_path: Path
) -> None:
    """--precision fp16 halves the .bin and passes (measured pha 9.3e-3 at 320x192, 0.9x the floor); the same
    rewrite with the refiner's box-filter taps rounded as well (what pnnx's fp16=1 does) fails."""
    from rvm_export.export.ncnn import fp16_weights
    from rvm_export.verify.api import verify_artifact

    half = artifacts.export("ncnn", "rvm_mobilenetv3_fp16_s0.5.ncnn.param", "--downsample-ratio", "0.5",
                            "--precision", "fp16")  # fmt: skip
    assert half.with_suffix(".bin").stat().st_size < 0.55 * good.with_suffix(".bin").stat().st_size
    report = verify_artifact(half, frames=2, sizes=[(128, 96)])
    assert report.passed and report.metadata.precision == "fp16", report.table()
    rounded = copy_artifact(half, tmp_path, "rounded.ncnn.param")
    param = ncnn_param.parse(good.read_text())
    rounded.with_suffix(".bin").write_bytes(fp16_weights(param, good.with_suffix(".bin").read_bytes(), set()))
    report = verify_artifact(rounded, frames=2, sizes=[(128, 96)])
    assert not report.passed and "pha" in {f.output for f in report.failures}, report.table()
