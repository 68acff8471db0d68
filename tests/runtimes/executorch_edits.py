"""Broken ExecuTorch programs for the conformance suite (tests/test_conformance.py), and the one case they share.

* :func:`executorch_perturbed`: one convolution weight x1.02 where the saved ``.pte`` stores it (the XNNPACK
  payload's constant data, raw float32, found by its bytes);
* :func:`executorch_ignoring_state`: a program that takes r1i..r4i but multiplies them by zero before any use,
  lowered like the good one (~60 s on two cores: ExecuTorch's XNNPACK lowering is the slow part).
"""

import copy
from pathlib import Path
from typing import Tuple

import numpy as np
import torch
from torch import Tensor

from tests.helpers import WEIGHTS

NAME = "rvm_mobilenetv3_128x96_s0.25_fp32.pte"  # the doc-snippet case (tests/test_conformance.DOC_CASE)
CASE = (128, 96, 0.25)
ARGS = ("--resolution", "128", "96", "--downsample-ratio", "0.25")


def executorch_perturbed(good: Path, tmp: Path) -> Path:
    """decoder.decode1.gru.ih.0.weight x1.02 in the file (XNNPACK stores convolution weights OHWI; OIHW tried too)."""
    weight = torch.load(WEIGHTS, weights_only=True)["decoder.decode1.gru.ih.0.weight"]
    data = bytearray(good.read_bytes())
    for layout in (weight.permute(0, 2, 3, 1), weight):
        values = layout.contiguous().numpy()
        raw = values.tobytes()
        if data.count(raw) == 1:
            at = data.find(raw)
            data[at : at + len(raw)] = (values * np.float32(1.02)).astype(np.float32).tobytes()
            break
    else:
        raise AssertionError("decoder.decode1.gru.ih.0.weight is not stored once in the .pte, in either layout")
    path = tmp / "perturbed.pte"
    path.write_bytes(bytes(data))
    return path


def executorch_ignoring_state(source, tmp: Path) -> Path:  # noqa: ANN001 (the session's ModelSource)
    from rvm_export.export.executorch import ExecuTorchWrapper, export_executorch, state_shapes

    class IgnoresState(ExecuTorchWrapper):
        def forward(self, src: Tensor, r1i: Tensor, r2i: Tensor, r3i: Tensor, r4i: Tensor) -> Tuple[Tensor, ...]:
            return super().forward(src, r1i * 0.0, r2i * 0.0, r3i * 0.0, r4i * 0.0)

    width, height, ratio = CASE
    reference = copy.deepcopy(source.model)  # the session's model is shared: never export (or change) it in place
    shapes = [list(s) for s in state_shapes(reference, width, height, ratio)]
    metadata = source.metadata(
        "executorch", "fp32", width=width, height=height, downsample_ratio=ratio, state_shapes=shapes
    )
    model = IgnoresState(reference, ratio)
    return export_executorch(model, tmp / "stateless.pte", metadata, width, height, ratio)


__all__ = ["ARGS", "CASE", "NAME", "executorch_ignoring_state", "executorch_perturbed"]
