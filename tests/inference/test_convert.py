"""convert_video end to end on real data with the real weights."""

import os
import sys
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from inference import auto_downsample_ratio, convert_video
from rvm_export.inference.io import InferenceError
from tests.helpers import GREEN, read_pngs, read_video, reference_alpha


@pytest.fixture(scope="module")
def video_outputs(real_model, clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("video_out")
    paths = {name: out / f"{name}.mp4" for name in ("com", "pha", "fgr")}
    result = convert_video(
        real_model,
        input_source=str(clip),
        downsample_ratio=1.0,  # at 160x96 the network needs the full resolution for a clean matte
        output_type="video",
        output_composition=str(paths["com"]),
        output_alpha=str(paths["pha"]),
        output_foreground=str(paths["fgr"]),
        output_video_mbps=4,
        seq_chunk=4,
        progress=False,
    )
    return {"result": result, "folder": out, **{k: read_video(p) for k, p in paths.items()}}


def test_video_outputs_keep_frame_count_rate_and_size(video_outputs: dict) -> None:
    assert video_outputs["result"].frames == 10
    for name in ("com", "pha", "fgr"):
        frames, rate = video_outputs[name]
        assert frames.shape == (10, 96, 160, 3), name
        assert rate == Fraction(25), name
    assert sorted(p.name for p in video_outputs["folder"].iterdir()) == ["com.mp4", "fgr.mp4", "pha.mp4"]


def test_alpha_is_a_plausible_person_matte(video_outputs: dict) -> None:
    alpha = video_outputs["pha"][0][..., 0].astype(np.float32) / 255  # [T,H,W]
    h, w = alpha.shape[1:]
    face = alpha[:, int(0.05 * h) : int(0.3 * h), int(0.36 * w) : int(0.46 * w)]
    body = alpha[:, int(0.6 * h) : int(0.9 * h), int(0.3 * w) : int(0.6 * w)]
    sky = alpha[:, : int(0.35 * h), int(0.88 * w) :]  # dark background right of the shuttle
    assert face.mean() > 0.9 and body.mean() > 0.9, (face.mean(), body.mean())
    assert sky.mean() < 0.1, sky.mean()
    assert 0.25 < alpha.mean() < 0.75
    assert ((alpha > 0.05) & (alpha < 0.95)).mean() < 0.15  # mostly decided, with soft edges


def test_composite_is_foreground_over_green(video_outputs: dict) -> None:
    com, pha, fgr = (video_outputs[k][0].astype(np.float32) / 255 for k in ("com", "pha", "fgr"))
    expected = fgr * pha[..., :1] + GREEN * (1 - pha[..., :1])
    error = np.abs(com - expected)
    # three independent lossy encodings (4:2:0 chroma at green/orange edges); a wrong
    # background or an inverted alpha gives errors of 0.3 and more
    assert error.mean() < 0.012 and np.quantile(error, 0.99) < 0.12, (error.mean(), np.quantile(error, 0.99))


def test_alpha_video_is_single_channel(video_outputs: dict) -> None:
    frames = video_outputs["pha"][0]
    assert np.array_equal(frames[..., 0], frames[..., 1]) and np.array_equal(frames[..., 0], frames[..., 2])


def test_png_sequence_matches_a_plain_stateful_loop(real_model, clip: Path, tmp_path: Path) -> None:
    """Chunked, threaded conversion == frame-by-frame loop carrying the state (within rounding)."""
    convert_video(
        real_model,
        str(clip),
        downsample_ratio=0.5,
        output_type="png_sequence",
        output_composition=str(tmp_path / "com"),
        output_alpha=str(tmp_path / "pha"),
        output_foreground=str(tmp_path / "fgr"),
        seq_chunk=3,
        progress=False,
    )
    com, pha, fgr = (read_pngs(tmp_path / n) for n in ("com", "pha", "fgr"))
    assert com.shape == (10, 96, 160, 4) and pha.shape == (10, 96, 160) and fgr.shape == (10, 96, 160, 3)
    assert np.array_equal(com[..., 3], pha)  # RGBA: alpha channel is the alpha output
    assert np.array_equal(com[..., :3], fgr * (pha[..., None] > 0))  # no colour where fully transparent
    decoded, _ = read_video(clip)
    expected = reference_alpha(real_model, decoded, 0.5)
    assert np.abs(pha.astype(int) - expected).max() <= 1


def test_odd_size_keeps_exact_size_and_rate(real_model, odd_clip: Path, tmp_path: Path) -> None:
    result = convert_video(
        real_model,
        str(odd_clip),
        output_composition=str(tmp_path / "com.mp4"),
        output_alpha=str(tmp_path / "pha.mp4"),
        progress=False,
    )
    assert result.downsample_ratio == 1.0  # automatic: 161 px is below 512
    for name in ("com", "pha"):
        frames, rate = read_video(tmp_path / f"{name}.mp4")
        assert frames.shape == (8, 97, 161, 3)
        assert rate == Fraction(30000, 1001)


def test_input_resize_and_image_folder(real_model, image_folder: Path, tmp_path: Path) -> None:
    result = convert_video(
        real_model,
        str(image_folder),
        input_resize=(120, 72),
        output_type="video",
        output_alpha=str(tmp_path / "pha.mp4"),
        num_workers=2,
        progress=False,
    )
    frames, rate = read_video(tmp_path / "pha.mp4")
    assert frames.shape == (6, 72, 120, 3) and rate == 30
    assert (result.width, result.height, result.frames) == (120, 72, 6)


def test_auto_downsample_ratio() -> None:
    assert auto_downsample_ratio(1080, 1920) == pytest.approx(512 / 1920)
    assert auto_downsample_ratio(96, 160) == 1.0


def _x264_settings(path: Path) -> str:
    """The settings string x264 writes into the stream ("... options: cabac=1 ref=1 ... subme=2 ...")."""
    data = path.read_bytes()
    start = data.index(b"options: ")
    return data[start : data.index(b"\x00", start)].decode(errors="replace")


def test_default_preset_is_applied_and_a_preset_can_be_chosen(real_model, clip: Path, tmp_path: Path) -> None:
    from inference import DEFAULT_PRESET

    assert DEFAULT_PRESET == "veryfast"
    convert_video(real_model, str(clip), output_alpha=str(tmp_path / "fast.mp4"), progress=False)
    convert_video(
        real_model, str(clip), output_alpha=str(tmp_path / "medium.mp4"), output_video_preset="medium", progress=False
    )
    # x264's presets: veryfast searches sub-pixels at subme=2 with one reference frame, medium at 7 with 3.
    assert "subme=2" in _x264_settings(tmp_path / "fast.mp4") and " ref=1 " in _x264_settings(tmp_path / "fast.mp4")
    assert "subme=7" in _x264_settings(tmp_path / "medium.mp4")


def test_crf_replaces_the_bit_rate(real_model, clip: Path, tmp_path: Path) -> None:
    convert_video(
        real_model, str(clip), output_composition=str(tmp_path / "q.mp4"), output_video_crf=30, progress=False
    )
    settings = _x264_settings(tmp_path / "q.mp4")
    assert "rc=crf" in settings and "crf=30.0" in settings
    with pytest.raises(InferenceError, match="not both"):
        convert_video(
            real_model, str(clip), output_alpha=str(tmp_path / "x.mp4"), output_video_mbps=2, output_video_crf=20
        )
    with pytest.raises(InferenceError, match="unknown x264 preset 'quick'"):
        convert_video(real_model, str(clip), output_alpha=str(tmp_path / "x.mp4"), output_video_preset="quick")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.mp4"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities are per thread on Linux")
def test_encoder_threads_run_below_the_model() -> None:
    """lower_priority lowers only the calling thread (the model's threads keep theirs)."""
    from rvm_export.inference.engine import lower_priority

    seen = {}

    def worker() -> None:
        lower_priority(3)
        seen["worker"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["worker"] == min(19, before + 3)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_rendering_rounds_clamps_and_composes_like_the_float_formula() -> None:
    import torch

    from inference import GREEN as BACKGROUND
    from rvm_export.inference.engine import to_uint8

    x = torch.tensor([-0.1, 0.0, 0.4 / 255, 0.6 / 255, 0.5, 1.0, 1.2]).view(1, 1, 1, 7).expand(2, 3, 1, 7)
    out = to_uint8(x)
    assert out.shape == (2, 1, 7, 3) and out.dtype == np.uint8
    assert out[0, 0, :, 0].tolist() == [0, 0, 0, 1, 128, 255, 255]  # rounded to nearest, clamped, channels last

    rng = torch.Generator().manual_seed(0)
    fgr, pha = torch.rand(2, 3, 5, 9, generator=rng), torch.rand(2, 1, 5, 9, generator=rng)
    expected = (fgr * pha + torch.tensor(BACKGROUND).view(1, 3, 1, 1) / 255 * (1 - pha)) * 255
    composed = to_uint8(fgr, pha, BACKGROUND).astype(np.float64)
    assert np.abs(composed - expected.permute(0, 2, 3, 1).numpy()).max() <= 0.5 + 1e-4


def test_an_artifact_with_its_ratio_baked_in_defaults_to_it_and_refuses_another() -> None:
    from rvm_export.contract.errors import InferenceError
    from rvm_export.inference.backends import Backend
    from rvm_export.inference.engine import fit_fixed_case

    class Baked(Backend):  # ncnn: dynamic size, ratio fixed at export
        def fixed_ratio(self):
            return 0.5

        def __call__(self, frames, downsample_ratio):
            raise AssertionError("not run")

    assert fit_fixed_case(Baked(), None, None) == (None, 0.5)
    assert fit_fixed_case(Baked(), (64, 48), 0.5) == ((64, 48), 0.5)
    with pytest.raises(InferenceError, match="exported for downsample_ratio 0.5"):
        fit_fixed_case(Baked(), None, 0.25)
