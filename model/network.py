"""MattingNetwork: the canonical RVM model, the single source of truth for every export target."""

from typing import List, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._frames import fold_time, unfold_time
from .decoder import Projection, RecurrentDecoder
from .guided_filter import DeepGuidedFilterRefiner, FastGuidedFilterRefiner
from .lraspp import LRASPP
from .mobilenetv3 import MobileNetV3LargeEncoder
from .resnet import ResNet50Encoder

VARIANTS = ("mobilenetv3", "resnet50")
REFINERS = ("deep_guided_filter", "fast_guided_filter")


def resize_by_ratio(x: Tensor, ratio: float) -> Tensor:
    """Bilinear resize by ``ratio`` exactly as RVM does it: the output size is floor(size * ratio)
    but sampling uses the given ratio itself (``recompute_scale_factor=False``)."""
    x, t = fold_time(x)
    x = F.interpolate(x, scale_factor=ratio, mode="bilinear", align_corners=False, recompute_scale_factor=False)
    return unfold_time(x, t)


class MattingNetwork(nn.Module):
    """Robust Video Matting.

    ``forward(src, r1, r2, r3, r4, downsample_ratio, segmentation_pass)`` takes ``src`` as
    [B,3,H,W] or [B,T,3,H,W] RGB in 0..1 and returns ``[fgr, pha, r1, r2, r3, r4]`` (or
    ``[seg, r1, r2, r3, r4]``). Pass the returned states back in with the next frame.
    """

    def __init__(self, variant: str = "mobilenetv3", refiner: str = "deep_guided_filter") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        if refiner not in REFINERS:
            raise ValueError(f"unknown refiner {refiner!r}; choose one of {', '.join(REFINERS)}")
        self.variant = variant
        self.refiner_name = refiner
        if variant == "mobilenetv3":
            self.backbone: nn.Module = MobileNetV3LargeEncoder()
            self.aspp = LRASPP(960, 128)
            self.decoder = RecurrentDecoder([16, 24, 40, 128], [80, 40, 32, 16])
        else:
            self.backbone = ResNet50Encoder()
            self.aspp = LRASPP(2048, 256)
            self.decoder = RecurrentDecoder([64, 256, 512, 256], [128, 64, 32, 16])
        self.project_mat = Projection(16, 4)
        self.project_seg = Projection(16, 1)
        if refiner == "deep_guided_filter":
            self.refiner: nn.Module = DeepGuidedFilterRefiner()
        else:
            self.refiner = FastGuidedFilterRefiner()

    def forward(
        self,
        src: Tensor,
        r1: Optional[Tensor] = None,
        r2: Optional[Tensor] = None,
        r3: Optional[Tensor] = None,
        r4: Optional[Tensor] = None,
        downsample_ratio: float = 1.0,
        segmentation_pass: bool = False,
    ) -> List[Tensor]:
        src_sm = src if downsample_ratio == 1 else resize_by_ratio(src, downsample_ratio)
        f1, f2, f3, f4 = self.backbone(src_sm)
        f4 = self.aspp(f4)
        hid, r1, r2, r3, r4 = self.decoder(src_sm, f1, f2, f3, f4, r1, r2, r3, r4)
        if segmentation_pass:
            return [self.project_seg(hid), r1, r2, r3, r4]
        fgr_residual, pha = self.project_mat(hid).split([3, 1], dim=-3)
        if downsample_ratio != 1:
            fgr_residual, pha = self.refiner(src, src_sm, fgr_residual, pha, hid)
        fgr = (fgr_residual + src).clamp(0.0, 1.0)
        return [fgr, pha.clamp(0.0, 1.0), r1, r2, r3, r4]


def half_precision(model: MattingNetwork, dtype: torch.dtype = torch.float16) -> MattingNetwork:
    """Convert to fp16 (or ``dtype``: bfloat16) for export, keeping the refiner in fp32 (see ``guided_filter``).

    Plain ``model.half()`` also works; it just leaves the deep guided filter in fp16."""
    model.to(dtype)
    model.refiner.float()
    return model


def param_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the backbone's weights: the model's working precision."""
    return next(model.parameters()).dtype
