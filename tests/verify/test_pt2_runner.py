"""torch.export (.pt2) specifics: the tensor-ratio resize and the ceil pool the program is traced with, and a
program without metadata is bad input. (Passing, broken artifacts and the doc snippet: tests/test_conformance.py.)"""

from pathlib import Path
from typing import Tuple

import pytest
import torch
from click.testing import CliRunner

from model.network import resize_by_ratio
from rvm_export.contract import METADATA_KEY
from rvm_export.export.pt2 import CeilAvgPool, resize_by_ratio_tensor
from rvm_export.verify.cli import main as verify_main
from tests.helpers import ArtifactCache, rewrite_zip


@pytest.mark.parametrize("size, ratio", [((64, 96), 0.5), ((257, 319), 0.375), ((45, 67), 1.0), ((90, 160), 0.3)])
def test_tensor_ratio_resize_matches_interpolate(size: Tuple[int, int], ratio: float) -> None:
    x = torch.rand(2, 3, *size)
    want = resize_by_ratio(x, ratio)
    got = resize_by_ratio_tensor(x, torch.tensor([ratio]))
    assert got.shape == want.shape
    assert (got - want).abs().max() <= (0 if ratio == 1 else 1e-6)


def test_ceil_pool_matches_the_model_pool() -> None:
    x = torch.rand(2, 3, 45, 67)
    want = torch.nn.AvgPool2d(2, 2, count_include_pad=False, ceil_mode=True)(x)
    assert torch.equal(CeilAvgPool()(x), want)


def test_program_without_metadata_is_bad_input(artifacts: ArtifactCache, tmp_path: Path) -> None:
    """The exported program with its metadata entry taken out of the archive is refused, not guessed at."""
    left_out = []

    def without_metadata(name: str, data: bytes):
        if name.endswith(f"/extra/{METADATA_KEY}"):
            left_out.append(name)
            return None
        return data

    bare = rewrite_zip(artifacts.export("pt2", "rvm_mobilenetv3_fp32.pt2"), tmp_path / "bare.pt2", without_metadata)
    assert len(left_out) == 1
    result = CliRunner().invoke(verify_main, [str(bare)])
    assert result.exit_code == 2 and "carries no rvm_metadata.json" in result.output
