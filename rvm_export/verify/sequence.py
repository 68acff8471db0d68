"""Test sequences: a camera that keeps moving over a real photograph (scikit-image's ``astronaut``).

Real image content matters: random noise gives the matting network nothing to segment, so
precision problems in the alpha (e.g. the guided filter in fp16) stay hidden. The motion is a
function of the frame index alone, not of the sequence's length: a pan and a zoom that oscillate
with periods of 40 to 60 frames around the person, so a 300-frame sequence keeps moving and keeps
the person in view (alpha covers a substantial part of every frame: ``alpha_coverage`` in the
tests), and the first N frames of every longer sequence are the N-frame sequence.
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

SEQUENCE_VERSION = 2  # part of the noise cache key: bump when the frames change


@dataclass(frozen=True)
class Case:
    """One closed-loop run: frame size, batch, downsample ratio and number of frames."""

    width: int
    height: int
    batch: int
    ratio: float
    frames: int

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height} b{self.batch} r{self.ratio:g} t{self.frames}"


@lru_cache(maxsize=1)
def photograph() -> np.ndarray:
    """The astronaut photograph, HxWx3 uint8."""
    from skimage import data

    return data.astronaut()


def camera(t: int, direction: int) -> tuple:
    """(centre x, centre y, crop height) as fractions of the photograph, for frame ``t``."""
    cx = 0.5 + direction * 0.06 * math.sin(2 * math.pi * t / 40)
    cy = 0.5 + 0.03 * math.sin(2 * math.pi * t / 60 + 1.0)
    crop_h = 0.82 + 0.08 * math.sin(2 * math.pi * t / 50 + 0.5)
    return cx, cy, crop_h


def build_sequence(case: Case) -> np.ndarray:
    """[T, B, 3, H, W] float32 in 0..1 (8-bit pixel values). Batch item b moves in the opposite
    direction to b-1, so batch items differ."""
    image = Image.fromarray(photograph())
    full_w, full_h = image.size
    frames = np.empty((case.frames, case.batch, 3, case.height, case.width), np.float32)
    aspect = case.width / case.height
    for t in range(case.frames):
        for b in range(case.batch):
            fx, fy, fh = camera(t, 1 if b % 2 == 0 else -1)
            crop_h = full_h * fh
            crop_w = min(crop_h * aspect, 0.95 * full_w)
            crop_h = crop_w / aspect
            cx = min(max(fx * full_w, crop_w / 2), full_w - crop_w / 2)
            cy = min(max(fy * full_h, crop_h / 2), full_h - crop_h / 2)
            box = (cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2)
            crop = image.resize((case.width, case.height), Image.Resampling.BILINEAR, box=box)
            frames[t, b] = np.asarray(crop, np.float32).transpose(2, 0, 1) / 255.0
    return frames
