"""Fixtures for the inference API tests: short real clips (a pan over scikit-image's astronaut
photograph). The real weights come from the shared ``real_model`` / ``weights_path`` fixtures."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rvm_export.verify.sequence import Case, build_sequence
from tests.helpers import encode_clip

FRAMES = 10


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """160x96, 10 frames at 25 fps."""
    path = tmp_path_factory.mktemp("clips") / "astronaut.mp4"
    encode_clip(path, 160, 96, FRAMES, Fraction(25))
    return path


@pytest.fixture(scope="session")
def odd_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """161x97 (odd), 8 frames at 30000/1001 fps."""
    path = tmp_path_factory.mktemp("clips") / "astronaut_odd.mp4"
    encode_clip(path, 161, 97, 8, Fraction(30000, 1001))
    return path


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 PNG frames of the pan, 160x96, zero-padded names."""
    folder = tmp_path_factory.mktemp("frames")
    sequence = build_sequence(Case(160, 96, 1, 1.0, 6))[:, 0]
    for i, frame in enumerate(sequence):
        Image.fromarray((frame.transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)).save(folder / f"{i:05d}.png")
    return folder


@pytest.fixture(autouse=True, scope="package")
def single_torch_thread():
    """Run the model on one thread here: the conversion's own decode/encode threads plus OpenMP's
    spin-waiting workers on a 2-core machine under load made these tests ~20x slower (62 s vs 3 s)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
