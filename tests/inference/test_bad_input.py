"""Every bad input gets a one-line error (exit 2 on the command line) and leaves no output behind."""

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import inference
from inference import convert_video
from rvm_export.inference.io import InferenceError
from tests.helpers import leftovers


def _zero_frame_video(path: Path) -> Path:
    """A Matroska file whose video stream has no frames (an audio stream keeps the muxer writing it)."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(audio.encode(frame))
        container.mux(audio.encode())
        container.mux(video.encode())
    return path


def _cli(weights: Path, source: Path, *extra: str) -> tuple[int, str]:
    args = ["--checkpoint", str(weights), "--device", "cpu", "--input-source", str(source), "--disable-progress"]
    result = CliRunner().invoke(inference.main, args + list(extra))
    return result.exit_code, result.stderr


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _assert_fails(weights: Path, model, source: Path, out: Path, match: str, **kwargs) -> None:
    """The API raises InferenceError; the CLI prints one line and exits 2; nothing is left in ``out``."""
    options = {"output_composition": str(out / "com.mp4"), "output_alpha": str(out / "pha.mp4")} | kwargs
    with pytest.raises(InferenceError, match=match):
        convert_video(model, str(source), progress=False, **options)
    flags = []
    for key, value in options.items():
        if value is not None:
            flags += [f"--{key.replace('_', '-')}"] + (
                [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
            )
    code, stderr = _cli(weights, source, *flags)
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rvm-convert: error:"), stderr
    assert list(out.iterdir()) == []


def test_missing_input(weights_path, real_model, tmp_path, out) -> None:
    _assert_fails(weights_path, real_model, tmp_path / "nope.mp4", out, "input not found")


def test_unreadable_input(weights_path, real_model, clip, tmp_path, out, monkeypatch) -> None:
    locked = tmp_path / "locked.mp4"
    locked.write_bytes(clip.read_bytes())
    locked.chmod(0)
    if os.geteuid() == 0:  # root reads any file: emulate the permission check's answer
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    _assert_fails(weights_path, real_model, locked, out, "permission denied")


def test_truncated_video(weights_path, real_model, clip, tmp_path, out) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # the index (moov) is at the end
    _assert_fails(weights_path, real_model, cut, out, "not a video FFmpeg can read")


def test_file_that_is_not_a_video(weights_path, real_model, tmp_path, out) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n" * 100)
    _assert_fails(weights_path, real_model, fake, out, "not a video")


def test_video_with_zero_frames(weights_path, real_model, tmp_path, out) -> None:
    empty = _zero_frame_video(tmp_path / "empty.mkv")
    _assert_fails(weights_path, real_model, empty, out, "has no frames")


def test_empty_image_folder(weights_path, real_model, tmp_path, out) -> None:
    (tmp_path / "frames").mkdir()
    _assert_fails(weights_path, real_model, tmp_path / "frames", out, "holds no images")


def test_folder_mixing_images_and_other_files(weights_path, real_model, tmp_path, out) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.new("RGB", (32, 24)).save(folder / "0000.png")
    (folder / "readme.txt").write_text("hi")
    _assert_fails(weights_path, real_model, folder, out, "mixes images with other files")


def test_images_of_differing_sizes_fail_midway_and_leave_nothing(weights_path, real_model, tmp_path, out) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        Image.new("RGB", (32, 24) if i < 4 else (40, 24), (i * 40, 80, 120)).save(folder / f"{i:04d}.png")
    _assert_fails(weights_path, real_model, folder, out, "0004.png is 40x24", seq_chunk=2)
    convert_video(real_model, str(folder), input_resize=(32, 24), output_alpha=str(out / "ok.mp4"), progress=False)
    assert (out / "ok.mp4").is_file()  # with input_resize the sizes may differ


def test_unwritable_output(weights_path, real_model, clip, tmp_path, out) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    _assert_fails(
        weights_path, real_model, clip, out, "cannot create the folder", output_alpha=str(blocker / "pha.mp4")
    )


def test_no_output_requested(weights_path, real_model, clip, out) -> None:
    _assert_fails(
        weights_path, real_model, clip, out, "no output requested", output_composition=None, output_alpha=None
    )


@pytest.mark.parametrize("ratio", [0.0, -0.25, 1.5])
def test_ratio_outside_zero_one(weights_path, real_model, clip, out, ratio) -> None:
    _assert_fails(weights_path, real_model, clip, out, r"must be in \(0, 1\]", downsample_ratio=ratio)


def test_seq_chunk_below_one(weights_path, real_model, clip, out) -> None:
    _assert_fails(weights_path, real_model, clip, out, "seq_chunk must be an integer >= 1", seq_chunk=0)


def test_failure_midway_keeps_the_previous_output(real_model, clip, tmp_path) -> None:
    """An earlier finished output survives a failed re-run untouched; no temporary files remain."""
    previous = tmp_path / "pha.mp4"
    previous.write_bytes(b"earlier result")

    class Exploding:
        def initial_state(self, batch):
            return 0

        def infer(self, src, state, ratio):
            if state == 4:
                raise RuntimeError("backend died")
            return {"fgr": np.zeros((1, 3, *src.shape[2:]), np.float32), "pha": src[:, :1]}, state + 1

    with pytest.raises(RuntimeError, match="backend died"):
        convert_video(Exploding(), str(clip), output_alpha=str(previous), seq_chunk=2, progress=False)
    assert previous.read_bytes() == b"earlier result" and leftovers(tmp_path) == []


def test_cli_needs_exactly_one_model(clip, weights_path, out) -> None:
    result = CliRunner().invoke(
        inference.main, ["--input-source", str(clip), "--output-alpha", str(out / "p.mp4"), "--disable-progress"]
    )
    assert result.exit_code == 2 and "exactly one of --checkpoint" in result.stderr


# Write errors: one line, exit 2, nothing left behind (root passes permission checks, not /proc).


def test_output_on_a_special_filesystem(weights_path, real_model, clip, out) -> None:
    _assert_fails(weights_path, real_model, clip, out, "cannot write to /proc", output_alpha="/proc/rvm_pha.mp4")
    assert not Path("/proc/rvm_pha.mp4").exists()


def test_output_path_is_a_folder(weights_path, real_model, clip, tmp_path, out) -> None:
    folder = tmp_path / "pha.mp4"
    folder.mkdir()
    _assert_fails(weights_path, real_model, clip, out, "is a folder", output_alpha=str(folder))
    assert list(folder.iterdir()) == []


def test_disk_full_while_encoding(weights_path, real_model, clip, out, monkeypatch) -> None:
    import errno

    from rvm_export.inference import io

    def full(self, array) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(io._Encoder, "encode", full)
    _assert_fails(weights_path, real_model, clip, out, "No space left on device")
