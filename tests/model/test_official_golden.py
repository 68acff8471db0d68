"""Our MattingNetwork against numbers computed by the OFFICIAL RVM PyTorch implementation.

``tests/data/official_golden.npz`` was written by ``tools/make_official_golden.py`` running the
official code (see ``tests/data/README.md``); no official code is needed or imported here. The input
frames are rebuilt by the generator's own :func:`golden_frames` and checked against the recorded hash.
"""

import importlib.util

import numpy as np
import pytest
import torch

from model import load_checkpoint, sha256_file
from tests.helpers import REPO

GOLDEN = REPO / "tests" / "data" / "official_golden.npz"
GENERATOR = REPO / "tools" / "make_official_golden.py"
TOLERANCE = 1e-4


def _generator():
    spec = importlib.util.spec_from_file_location("make_official_golden", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def gen():
    return _generator()


def test_golden_file_provenance(golden, gen, weights_path):
    assert str(golden["meta/weights_sha256"]) == sha256_file(weights_path), "golden data is for other weights"
    assert str(golden["meta/input_sha256"]) == gen.array_sha256(gen.golden_frames()), "input frames changed"
    assert str(golden["meta/ratios"]) == ",".join(f"{r:g}" for r in gen.RATIOS)
    assert GOLDEN.stat().st_size < 1_000_000


@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_matches_official_closed_loop(golden, gen, weights_path, ratio):
    net = load_checkpoint(weights_path)
    frames = gen.golden_frames()
    tag = gen.ratio_tag(ratio)
    last = len(frames) - 1
    ours = {}
    rec = [None] * 4
    with torch.no_grad():
        for t, frame in enumerate(frames):
            fgr, pha, *rec = net(torch.from_numpy(frame), *rec, downsample_ratio=ratio)
            ours[f"{tag}/frame{t}/fgr"] = fgr.numpy()
            ours[f"{tag}/frame{t}/pha"] = pha.numpy()
        for name, state in zip(gen.STATE_NAMES, rec, strict=True):
            ours[f"{tag}/frame{last}/{name}"] = state.numpy()

    stored = sorted(k for k in golden if k.startswith(tag + "/"))
    assert stored == sorted(ours), "golden file and test disagree on which outputs are stored"
    diffs = {}
    for key in stored:
        expected = golden[key]
        assert expected.dtype == np.float32
        assert ours[key].shape == expected.shape, key
        diffs[key] = float(np.abs(ours[key] - expected).max())
    bad = {k: d for k, d in diffs.items() if not d < TOLERANCE}
    assert not bad, f"differs from the official implementation (max abs diff > {TOLERANCE}): {bad}"
