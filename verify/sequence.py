"""Test sequences: a slow pan and zoom over a real photograph (scikit-image's ``astronaut``).

Real image content matters: random noise gives the matting network nothing to segment, so
precision problems in the alpha (e.g. the guided filter in fp16) stay hidden.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image


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


def build_sequence(case: Case) -> np.ndarray:
    """[T, B, 3, H, W] float32 in 0..1. Batch item b pans in the opposite direction to b-1,
    so batch items differ; each frame moves a few pixels and zooms slightly."""
    image = Image.fromarray(photograph())
    full_w, full_h = image.size
    frames = np.empty((case.frames, case.batch, 3, case.height, case.width), np.float32)
    aspect = case.width / case.height
    for t in range(case.frames):
        progress = t / max(case.frames - 1, 1)
        for b in range(case.batch):
            direction = 1 if b % 2 == 0 else -1
            crop_h = full_h * (0.9 - 0.1 * progress)
            crop_w = min(crop_h * aspect, 0.95 * full_w)
            crop_h = crop_w / aspect
            cx = full_w / 2 + direction * 0.05 * full_w * (progress - 0.5)
            cy = full_h / 2 + 0.03 * full_h * (progress - 0.5)
            cx = min(max(cx, crop_w / 2), full_w - crop_w / 2)
            cy = min(max(cy, crop_h / 2), full_h - crop_h / 2)
            box = (cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2)
            crop = image.resize((case.width, case.height), Image.Resampling.BILINEAR, box=box)
            frames[t, b] = np.asarray(crop, np.float32).transpose(2, 0, 1) / 255.0
    return frames
