"""Helpers for the inference tests: real clips encoded with PyAV directly (not with the code under
test) and a plain reference loop."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from model import MattingNetwork
from rvm_export.verify.sequence import Case, build_sequence

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO.parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"
GREEN = np.array([120, 255, 155], np.float32) / 255


def encode_clip(path: Path, width: int, height: int, frames: int, rate: Fraction) -> np.ndarray:
    """Write a pan over the astronaut as near-lossless H.264; return the RGB uint8 frames [T,H,W,3]."""
    import av

    sequence = build_sequence(Case(width, height, 1, 1.0, frames))[:, 0]
    arrays = (sequence.transpose(0, 2, 3, 1) * 255 + 0.5).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv444p"  # any size, little chroma loss
        stream.options = {"crf": "12"}
        for array in arrays:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    return arrays


def reference_alpha(model: MattingNetwork, frames: np.ndarray, ratio: float) -> np.ndarray:
    """Alpha as uint8 [T,H,W] from a plain frame-by-frame loop that carries the recurrent state."""
    src = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)
    rec, out = [None] * 4, []
    with torch.inference_mode():
        for t in range(len(src)):
            _, pha, *rec = model(src[t : t + 1], *rec, ratio)
            out.append(pha)
    return (torch.cat(out)[:, 0] * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


def read_video(path: Path) -> tuple[np.ndarray, Fraction]:
    """Decode a video with PyAV directly: RGB uint8 frames [T,H,W,3] and the average frame rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    return frames, rate


def read_pngs(folder: Path) -> np.ndarray:
    """All images of a folder in name order, as a uint8 array [T,H,W(,C)]."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.iterdir())])


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders a conversion may have left behind."""
    return [p.name for p in folder.iterdir() if ".partial-" in p.name]
