"""The speed-restated ONNX graph (export/onnx_fast.py) against the canonical model, every combination
the exporter offers: variant x refiner x precision x dynamic/static, through the verifier."""

from pathlib import Path
from typing import Optional, Tuple

import pytest
import torch

from model import seeded_random_model
from model.decoder import upsample2x_to
from rvm_export.export.base import at_precision, load_source
from rvm_export.export.onnx import export_onnx
from rvm_export.export.onnx_fast import CHANNEL_BLOCK, FastDecoder, padded_conv, upsample2x_like
from rvm_export.verify.api import verify_artifact

# With tests/verify/test_onnxruntime_runner.py (real MobileNetV3 + fast guided filter fp32/fp16 dynamic and fp32
# static; seeded ResNet50 + deep guided filter fp32 dynamic) every variant, refiner, precision and mode is covered.
CASES = [
    # (variant, refiner, precision, static (W, H, ratio) or None)
    ("mobilenetv3", "deep_guided_filter", "fp16", (97, 75, 0.5)),
    ("mobilenetv3", "deep_guided_filter", "fp32", None),
    ("resnet50", "fast_guided_filter", "fp16", None),
    ("resnet50", "fast_guided_filter", "fp32", (97, 75, 0.375)),
]


def export_seeded(
    tmp_path: Path, variant: str, refiner: str, precision: str, static: Optional[Tuple[int, int, float]]
) -> Path:
    source = load_source(None, variant, refiner, seed=3)
    size, ratio = (static[:2], static[2]) if static else (None, None)
    options = {"opset": 12, "static": list(size) if size else None, "downsample_ratio": ratio}
    metadata = source.metadata("onnx", precision, **options)
    model = at_precision(source.model, precision)
    return export_onnx(model, tmp_path / f"{variant}_{refiner}_{precision}.onnx", metadata, 12, size, ratio)


@pytest.mark.parametrize("variant, refiner, precision, static", CASES)
def test_every_combination_passes_the_verifier(
    tmp_path: Path, variant: str, refiner: str, precision: str, static: Optional[Tuple[int, int, float]]
) -> None:
    path = export_seeded(tmp_path, variant, refiner, precision, static)
    ratios = [] if static else [1.0, 0.375]
    report = verify_artifact(path, frames=2, sizes=[] if static else [(97, 75)], ratios=ratios)
    assert report.passed, report.table()


def test_padded_convolution_gives_the_same_numbers_and_aligned_channels() -> None:
    net = seeded_random_model("mobilenetv3", "fast_guided_filter", 0).eval()
    block = net.decoder.decode1.conv  # 40 + 16 + 3 = 59 input channels
    extra = -block[0].in_channels % CHANNEL_BLOCK
    wide = padded_conv(block, extra)
    assert wide[0].in_channels == 64
    x = torch.rand(1, 59, 20, 24)
    with torch.no_grad():
        torch.testing.assert_close(wide(torch.cat([x, torch.zeros(1, extra, 20, 24)], 1)), block(x), atol=1e-6, rtol=0)


def test_fast_decoder_is_the_canonical_decoder() -> None:
    net = seeded_random_model("mobilenetv3", "fast_guided_filter", 0).eval()
    src = torch.rand(1, 3, 75, 97)
    with torch.no_grad():
        feats = net.backbone(src)
        feats = [*feats[:3], net.aspp(feats[3])]
        states = [torch.zeros(1, 1, 1, 1)] * 4
        want = net.decoder(src, *feats, *states)
        got = FastDecoder(net)(src, *feats, *states)
    for w, g in zip(want, got, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=0)


def test_one_slice_crop_matches_the_canonical_upsampling() -> None:
    x = torch.rand(1, 4, 19, 25)
    like = torch.zeros(1, 1, 37, 49)
    torch.testing.assert_close(upsample2x_like(x, like), upsample2x_to(x, 37, 49), atol=0, rtol=0)
