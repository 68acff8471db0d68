"""VideoReader / VideoWriter / ImageSequenceReader / ImageSequenceWriter as the RVM docs use them."""

import gc
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from rvm_export.inference.io import ImageSequenceReader, ImageSequenceWriter, InferenceError, VideoReader, VideoWriter
from tests.helpers import leftovers, read_pngs, read_video


def test_video_reader_gives_rgb_float_tensors(clip: Path) -> None:
    reader = VideoReader(str(clip))
    assert len(reader) == 10 and reader.frame_rate == 25 and reader.size == (160, 96)
    frames = list(reader)
    assert len(frames) == 10
    first = frames[0]
    assert first.dtype == torch.float32 and first.shape == (3, 96, 160) and 0 <= first.min() < first.max() <= 1
    decoded, _ = read_video(clip)
    assert torch.equal(first, torch.from_numpy(decoded[0]).permute(2, 0, 1).float() / 255)
    assert torch.equal(reader[3], frames[3]) and torch.equal(reader[1], frames[1])  # going back re-opens


def test_video_reader_passes_pil_images_to_a_transform(clip: Path) -> None:
    reader = VideoReader(clip, transform=lambda image: (image.mode, image.size))
    assert reader[0] == ("RGB", (160, 96))


def test_docs_full_example_runs_as_written(real_model, clip: Path, tmp_path: Path) -> None:
    """The RVM docs' loop: DataLoader(reader), model per frame, writer.write(...) and no close()."""
    reader = VideoReader(str(clip), transform=None)
    writer = VideoWriter(str(tmp_path / "output.mp4"), frame_rate=30)
    bgr = torch.tensor([0.47, 1, 0.6]).view(3, 1, 1)
    rec = [None] * 4
    with torch.no_grad():
        for src in DataLoader(reader):
            fgr, pha, *rec = real_model(src, *rec, downsample_ratio=0.5)
            writer.write(fgr * pha + bgr * (1 - pha))
    assert writer.pix_fmt == "yuv420p"
    del writer
    gc.collect()  # the docs never call close(); the writer finishes when collected
    frames, rate = read_video(tmp_path / "output.mp4")
    assert frames.shape == (10, 96, 160, 3) and rate == 30
    assert leftovers(tmp_path) == []


def test_writer_odd_size_uses_yuv444p_at_exact_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 97, 161, 3), dtype=np.uint8)
    with VideoWriter(tmp_path / "odd.mkv", frame_rate=Fraction(30000, 1001), bit_rate=20_000_000) as writer:
        writer.write_array(frames)
        assert writer.pix_fmt == "yuv444p"
    decoded, rate = read_video(tmp_path / "odd.mkv")
    assert decoded.shape == frames.shape and rate == Fraction(30000, 1001)


def test_single_channel_writer_is_monochrome_and_full_range(tmp_path: Path) -> None:
    import av

    ramp = np.tile(np.linspace(0, 255, 161).round().astype(np.uint8), (97, 1))
    with VideoWriter(tmp_path / "pha.mp4") as writer:
        writer.write(torch.from_numpy(ramp).float().div(255)[None, None].repeat(4, 1, 1, 1))  # [T,1,H,W]
        assert writer.pix_fmt == "gray"  # odd size: only a monochrome H.264 stream accepts it
    decoded, _ = read_video(tmp_path / "pha.mp4")
    assert decoded.shape == (4, 97, 161, 3)
    assert np.abs(decoded[..., 0].astype(int) - ramp).max() <= 2  # 0..255 survive: full range, not 16..235
    with av.open(str(tmp_path / "pha.mp4")) as container:
        frame = next(container.decode(video=0))
        chroma = frame.to_ndarray(format="yuv444p")[1:]
    assert np.all(chroma == 128)  # no colour information at all


def test_writer_discards_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(target) as writer:
            writer.write_array(np.zeros((2, 32, 32, 3), np.uint8))
            raise RuntimeError("boom")
    assert not target.exists() and leftovers(tmp_path) == []


def test_writer_refuses_unsupported_suffix_and_empty_close(tmp_path: Path) -> None:
    with pytest.raises(InferenceError, match="use one of"):
        VideoWriter(tmp_path / "out.gif")
    writer = VideoWriter(tmp_path / "empty.mp4")
    with pytest.raises(InferenceError, match="no frames were written"):
        writer.close()
    assert not (tmp_path / "empty.mp4").exists() and leftovers(tmp_path) == []


def test_image_sequence_reader_sorts_naturally(tmp_path: Path) -> None:
    for value, name in ((10, "f10.png"), (2, "f2.png"), (1, "f1.jpg")):
        Image.new("RGB", (8, 6), (value, value, value)).save(tmp_path / name)
    (tmp_path / ".DS_Store").write_bytes(b"ignored")
    reader = ImageSequenceReader(tmp_path)
    assert [p.name for p in reader.files] == ["f1.jpg", "f2.png", "f10.png"]
    assert reader[2].shape == (3, 6, 8) and reader[2][0, 0, 0] == pytest.approx(10 / 255)


def test_image_sequence_writer_modes_and_replacement(tmp_path: Path) -> None:
    target = tmp_path / "out"
    for _ in range(2):  # the second run replaces the first run's folder
        with ImageSequenceWriter(target) as writer:
            writer.write(torch.rand(3, 4, 10, 12))  # RGBA
    images = sorted(target.iterdir())
    assert [p.name for p in images] == ["0000.png", "0001.png", "0002.png"]
    assert Image.open(images[0]).mode == "RGBA"
    with ImageSequenceWriter(tmp_path / "gray") as writer:
        writer.write(torch.rand(2, 1, 10, 12))
    assert read_pngs(tmp_path / "gray").shape == (2, 10, 12)  # single channel: grayscale png
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(InferenceError, match="choose an empty or new folder"):
        ImageSequenceWriter(tmp_path / "mine")
    assert leftovers(tmp_path) == []
