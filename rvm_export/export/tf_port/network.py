"""The channels-last TensorFlow MattingNetwork, mirroring ``model/network.py``.

``downsample_ratio`` is a runtime tensor. There is no Python branch on it: at ratio 1 the
downsample is an exact copy and the refined result is discarded by a ``tf.where``, so the
graph has no control flow (which TF.js and graph freezing handle less well)."""

from typing import Dict, List

import tensorflow as tf

from model import REFINERS, VARIANTS

from .decoder import LRASPP, RecurrentDecoder
from .encoders import MobileNetV3LargeEncoder, ResNet50Encoder
from .guided_filter import DeepGuidedFilterRefiner, FastGuidedFilterRefiner
from .layers import Conv2d, Registry, resize_by_ratio, resize_to


class TFMattingNetwork(tf.Module):
    """``model(src, [r1..r4], ratio) -> (fgr, pha, [r1..r4])`` on [B,H,W,3] RGB in 0..1."""

    def __init__(self, variant: str = "mobilenetv3", refiner: str = "deep_guided_filter") -> None:
        super().__init__(name="matting_network")
        if variant not in VARIANTS or refiner not in REFINERS:
            raise ValueError(f"unknown variant/refiner {variant!r}/{refiner!r}")
        self.variant, self.refiner_name = variant, refiner
        self.registry = Registry()
        reg = self.registry
        if variant == "mobilenetv3":
            self.backbone = MobileNetV3LargeEncoder(reg)
            self.aspp = LRASPP(reg, 960, 128)
            self.decoder = RecurrentDecoder(reg, [16, 24, 40, 128], [80, 40, 32, 16])
        else:
            self.backbone = ResNet50Encoder(reg)
            self.aspp = LRASPP(reg, 2048, 256)
            self.decoder = RecurrentDecoder(reg, [64, 256, 512, 256], [128, 64, 32, 16])
        self.project_mat = Conv2d(reg, "project_mat.conv", 16, 4, 1)
        # Carried so the state_dict transfers strictly; the exported graph has no segmentation output.
        self.project_seg = Conv2d(reg, "project_seg.conv", 16, 1, 1)
        if refiner == "deep_guided_filter":
            self.refiner = DeepGuidedFilterRefiner(reg)
        else:
            self.refiner = FastGuidedFilterRefiner(reg)

    def __call__(
        self, src: tf.Tensor, states: List[tf.Tensor], downsample_ratio: tf.Tensor
    ) -> "tuple[tf.Tensor, tf.Tensor, List[tf.Tensor]]":
        ratio = tf.reshape(tf.cast(downsample_ratio, tf.float32), [])
        states = [tf.cast(r, tf.float32) for r in states]
        src_sm = resize_by_ratio(src, ratio)
        f1, f2, f3, f4 = self.backbone(src_sm)
        hid, states = self.decoder(src_sm, [f1, f2, f3, self.aspp(f4)], states)
        out = self.project_mat(hid)
        fgr_residual, pha = out[..., :3], out[..., 3:]
        fine_fgr, fine_pha = self.refiner(src, src_sm, fgr_residual, pha, hid)
        # At ratio 1 the coarse result already has the full size; resizing it to that size is an
        # exact copy, needed only so both branches of the select have one shape.
        size = tf.shape(src)
        refine = tf.not_equal(ratio, 1.0)
        fgr_residual = tf.where(refine, fine_fgr, resize_to(fgr_residual, size[1], size[2]))
        pha = tf.where(refine, fine_pha, resize_to(pha, size[1], size[2]))
        fgr = tf.clip_by_value(fgr_residual + src, 0.0, 1.0)
        return fgr, tf.clip_by_value(pha, 0.0, 1.0), states

    def outputs(self, src: tf.Tensor, states: List[tf.Tensor], downsample_ratio: tf.Tensor) -> Dict[str, tf.Tensor]:
        """The contract's named outputs: fgr, pha, r1o..r4o."""
        fgr, pha, (r1, r2, r3, r4) = self(src, states, downsample_ratio)
        return {"fgr": fgr, "pha": pha, "r1o": r1, "r2o": r2, "r3o": r3, "r4o": r4}
