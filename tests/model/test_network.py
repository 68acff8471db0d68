"""Behaviour of the canonical network: the documented calling conventions and numerics."""

import pytest
import torch

from model import MattingNetwork, half_precision, seeded_random_model
from model.guided_filter import FastGuidedFilterRefiner


@pytest.fixture(scope="module")
def small(astronaut: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(astronaut, size=(97, 131), mode="bilinear", align_corners=False)


def test_real_weights_matte_the_astronaut(real_model: MattingNetwork, astronaut: torch.Tensor) -> None:
    with torch.inference_mode():
        fgr, pha, *rec = real_model(astronaut, downsample_ratio=0.5)
    pha = pha[0, 0]
    assert pha[40:120, 170:280].mean() > 0.95, "head should be opaque"
    assert pha[260:440, 60:250].mean() > 0.95, "torso should be opaque"
    assert pha[:60, :60].max() < 0.05 and pha[:60, -60:].max() < 0.05, "top corners are background"
    assert 0.25 < pha.mean() < 0.6
    assert fgr.shape == astronaut.shape and [r.dim() for r in rec] == [4, 4, 4, 4]


def test_documented_loop_with_time_dimension(real_model: MattingNetwork, small: torch.Tensor) -> None:
    """[B,T,C,H,W] in one call equals T single-frame calls; states are 4-D, from the last frame."""
    clip = torch.stack([small, small.flip(-1), small * 0.9], dim=1)  # [1,3,3,H,W]
    with torch.inference_mode():
        fgr_t, pha_t, *rec_t = real_model(clip, downsample_ratio=0.5)
        rec = [None] * 4
        for t in range(3):
            fgr, pha, *rec = real_model(clip[:, t], *rec, downsample_ratio=0.5)
            torch.testing.assert_close(pha, pha_t[:, t], atol=1e-5, rtol=0)
    assert pha_t.shape == (1, 3, 1, 97, 131) and fgr_t.shape == (1, 3, 3, 97, 131)
    for a, b in zip(rec, rec_t, strict=True):
        assert b.dim() == 4
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_recurrent_state_changes_the_output(real_model: MattingNetwork, small: torch.Tensor) -> None:
    with torch.inference_mode():
        _, pha1, *rec = real_model(small)
        _, pha2, *_ = real_model(small, *rec)
    assert (pha1 - pha2).abs().max() > 1e-3


def test_zero_state_tensor_equals_none(real_model: MattingNetwork, small: torch.Tensor) -> None:
    zeros = [torch.zeros(1, 1, 1, 1)] * 4
    with torch.inference_mode():
        a = real_model(small, downsample_ratio=0.5)
        b = real_model(small, *zeros, downsample_ratio=0.5)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)


def test_ratio_one_skips_the_refiner(real_model: MattingNetwork, small: torch.Tensor, monkeypatch) -> None:
    calls = []
    original = FastGuidedFilterRefiner.forward
    monkeypatch.setattr(FastGuidedFilterRefiner, "forward", lambda self, *a: calls.append(1) or original(self, *a))
    with torch.inference_mode():
        real_model(small, downsample_ratio=1.0)
        assert calls == []
        real_model(small, downsample_ratio=0.5)
        assert calls == [1]


@pytest.mark.parametrize("size", [(97, 131), (64, 64), (33, 17)])
def test_any_size_and_clamped_outputs(size: tuple, astronaut: torch.Tensor) -> None:
    model = seeded_random_model("mobilenetv3", "deep_guided_filter")
    src = torch.nn.functional.interpolate(astronaut, size=size)
    with torch.inference_mode():
        fgr, pha, *_ = model(src, downsample_ratio=0.4)
    assert fgr.shape[-2:] == size and pha.shape[-2:] == size
    assert fgr.min() >= 0 and fgr.max() <= 1 and pha.min() >= 0 and pha.max() <= 1


def test_segmentation_pass(real_model: MattingNetwork, small: torch.Tensor) -> None:
    with torch.inference_mode():
        seg, *rec = real_model(small, segmentation_pass=True)
    assert seg.shape == (1, 1, 97, 131) and len(rec) == 4


def test_fp16_keeps_the_worst_alpha_pixel_accurate(weights_path, astronaut: torch.Tensor) -> None:
    """The fast guided filter divides by var + 1e-5: naive fp16 breaks single pixels, ours must not."""
    from model import load_checkpoint

    src = torch.nn.functional.interpolate(astronaut, size=(192, 192), mode="bilinear", align_corners=False)
    with torch.inference_mode():
        ref = load_checkpoint(weights_path)(src, downsample_ratio=0.5)[1]
        ours = half_precision(load_checkpoint(weights_path))(src.half(), downsample_ratio=0.5)[1]
    assert ours.dtype == torch.float16
    assert (ours.float() - ref).abs().max() < 0.1


def test_resnet50_encoder_takes_the_source_unnormalised() -> None:
    """The official ResNet50 encoder feeds RGB 0..1 straight to conv1 (only MobileNetV3 normalises)."""
    model = seeded_random_model("resnet50", "fast_guided_filter")
    seen = []
    model.backbone.conv1.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    src = torch.rand(1, 3, 64, 48)
    with torch.inference_mode():
        model(src)
    assert torch.equal(seen[0], src)
