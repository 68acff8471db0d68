"""convert_video on other backends: TorchScript (file, loaded, frozen) and the verify runner interface."""

from pathlib import Path
from typing import Any, Optional, Tuple

import numpy as np
import pytest
import torch

from inference import convert_video
from rvm_export.export.base import load_source
from rvm_export.export.torchscript import export_torchscript
from rvm_export.inference.io import InferenceError
from rvm_export.runtimes.base import Runner, to_numpy_outputs
from tests.helpers import read_pngs, read_video, reference_alpha, require

RATIO = 0.5


@pytest.fixture(scope="module")
def torchscript_file(weights_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = load_source(weights_path)
    path = tmp_path_factory.mktemp("ts") / "rvm.torchscript"
    return export_torchscript(source.model, path, source.metadata("torchscript", "fp32", freeze=False), freeze=False)


@pytest.fixture(scope="module")
def expected_alpha(real_model, clip: Path) -> np.ndarray:
    decoded, _ = read_video(clip)
    return reference_alpha(real_model, decoded, RATIO)


def _alpha(model: Any, clip: Path, out: Path, **kwargs: Any) -> np.ndarray:
    convert_video(
        model,
        str(clip),
        downsample_ratio=RATIO,
        output_type="png_sequence",
        output_alpha=str(out),
        progress=False,
        **kwargs,
    )
    return read_pngs(out).astype(int)


def test_torchscript_artifact_path_matches_pytorch(
    torchscript_file: Path, clip: Path, expected_alpha, tmp_path
) -> None:
    alpha = _alpha(str(torchscript_file), clip, tmp_path / "pha", seq_chunk=4)
    assert np.abs(alpha - expected_alpha).max() <= 1


def test_frozen_torchscript_needs_device_and_dtype(
    torchscript_file: Path, clip: Path, expected_alpha, tmp_path
) -> None:
    frozen = torch.jit.freeze(torch.jit.load(str(torchscript_file)).eval())
    with pytest.raises(InferenceError, match="device= and dtype="):
        _alpha(frozen, clip, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    alpha = _alpha(frozen, clip, tmp_path / "b", device="cpu", dtype=torch.float32, seq_chunk=5)
    assert np.abs(alpha - expected_alpha).max() <= 1


class DictStateRunner(Runner):
    """A runner with its own state convention (a dict, frame-counting), like ONNX/TF runners have theirs."""

    kind = "test"

    def __init__(self, model: torch.nn.Module, fixed: Optional[Tuple[int, int, float]] = None) -> None:
        self.model, self.fixed, self.calls = model, fixed, 0

    @classmethod
    def read_metadata(cls, path: Path) -> Any:
        raise NotImplementedError

    def initial_state(self, batch: int) -> Any:
        return {"rec": [torch.zeros(batch, 1, 1, 1)] * 4, "frames": 0}

    def fixed_case(self) -> Optional[Tuple[int, int, float]]:
        return self.fixed

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Any, Any]:
        assert src.dtype == np.float32 and src.ndim == 4 and src.shape[1] == 3 and 0 <= src.min() <= src.max() <= 1
        self.calls += 1
        with torch.inference_mode():
            out = self.model(torch.from_numpy(src), *state["rec"], downsample_ratio)
        return to_numpy_outputs([t.numpy() for t in out]), {"rec": out[2:], "frames": state["frames"] + 1}


def test_runner_interface_carries_the_runners_own_state(real_model, clip: Path, expected_alpha, tmp_path) -> None:
    runner = DictStateRunner(real_model)
    alpha = _alpha(runner, clip, tmp_path / "pha", seq_chunk=4)
    assert runner.calls == 10  # one infer per frame, even with seq_chunk=4
    assert np.abs(alpha - expected_alpha).max() <= 1


def test_fixed_shape_runner_sets_size_and_refuses_others(real_model, clip: Path, tmp_path) -> None:
    runner = DictStateRunner(real_model, fixed=(128, 80, 0.5))
    result = convert_video(runner, str(clip), output_alpha=str(tmp_path / "pha.mp4"), progress=False)
    assert (result.width, result.height, result.downsample_ratio) == (128, 80, 0.5)
    assert read_video(tmp_path / "pha.mp4")[0].shape == (10, 80, 128, 3)
    with pytest.raises(InferenceError, match="only takes 128x80"):
        convert_video(runner, str(clip), input_resize=(160, 96), output_alpha=str(tmp_path / "x.mp4"), progress=False)


def test_unknown_model_types_are_refused(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(InferenceError, match="cannot run a dict"):
        convert_video({}, str(clip), output_alpha=str(tmp_path / "x.mp4"), progress=False)
    with pytest.raises(InferenceError, match="cannot tell what kind of artifact"):
        convert_video(str(clip), str(clip), output_alpha=str(tmp_path / "x.mp4"), progress=False)


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_onnx_artifact_path_matches_pytorch(weights_path, clip, expected_alpha, tmp_path, static: bool) -> None:
    """An ONNX artifact runs through the ONNX Runtime runner; a static one sets size and ratio itself."""
    require("onnxruntime")
    from click.testing import CliRunner

    from rvm_export.export.cli import main as rvm_export

    artifact = tmp_path / "rvm.onnx"
    args = ["onnx", "--checkpoint", str(weights_path), "--output", str(artifact)]
    args += ["--static", "160x96", "--downsample-ratio", str(RATIO)] if static else []
    exported = CliRunner().invoke(rvm_export, args)
    assert exported.exit_code == 0, exported.output
    result = convert_video(
        str(artifact),
        str(clip),
        downsample_ratio=None if static else RATIO,
        output_type="png_sequence",
        output_alpha=str(tmp_path / "pha"),
        seq_chunk=4,
        progress=False,
    )
    assert (result.width, result.height, result.downsample_ratio) == (160, 96, RATIO)
    assert np.abs(read_pngs(tmp_path / "pha").astype(int) - expected_alpha).max() <= 1
