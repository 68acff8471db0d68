"""Parity tolerances per artifact precision, for the closed-loop comparison against PyTorch fp32.

Derived from measurement with the real MobileNetV3 weights (see README, "Tolerances", and
``benchmarks/parity_sweep.py``), then given head-room of about 3-5x so that platform noise
passes while real breakage (a perturbed weight, a state that is ignored, swapped outputs,
a wrong precision) does not. Each bounds the worst pixel (max_abs), the tail (q999, the
99.9th percentile of |error|) and the mean, per output; alpha is also bounded in matting
terms (MAD x1e3, the RVM paper's unit).
"""

from dataclasses import dataclass
from typing import Dict


@dataclass(frozen=True)
class Tolerance:
    max_abs: float
    q999: float
    mean_abs: float


@dataclass(frozen=True)
class PrecisionTolerance:
    image: Tolerance  # fgr and pha, values in 0..1
    state: Tolerance  # r1o..r4o, values in -1..1 (GRU states)
    alpha_mad_1e3: float  # mean |alpha error| x 1e3 over one frame

    def for_output(self, name: str) -> Tolerance:
        return self.image if name in ("fgr", "pha") else self.state


TOLERANCES: Dict[str, PrecisionTolerance] = {
    # Measured (frozen TorchScript fp32, real weights): max 2.8e-5, q99.9 1.3e-5, mean 8e-7.
    # Head-room covers other runtimes' kernels (ONNX Runtime, TensorFlow), which sum in other orders.
    "fp32": PrecisionTolerance(
        image=Tolerance(max_abs=2e-3, q999=2e-4, mean_abs=2e-5),
        state=Tolerance(max_abs=2e-3, q999=2e-4, mean_abs=2e-5),
        alpha_mad_1e3=0.02,
    ),
    # Measured (TorchScript fp16 on CPU, real weights, default cases, 4 frames): pha max 0.055,
    # q99.9 0.045, mean 3.0e-3, MAD 3.0; states max 0.049, q99.9 0.030, mean 2.1e-3.
    "fp16": PrecisionTolerance(
        image=Tolerance(max_abs=0.15, q999=0.1, mean_abs=6e-3),
        state=Tolerance(max_abs=0.15, q999=0.1, mean_abs=6e-3),
        alpha_mad_1e3=6.0,
    ),
    # Measured (CoreML per-channel int8, real weights): pha max 0.32, MAD 9.9, states max 0.36 (1920x1080 s0.25).
    # TF.js per-tensor uint8 of float-trained weights is worse (pha up to 1.0, MAD up to 172 with the real
    # weights moved off the uint8 grid) and fails on purpose: the matte changes visibly. See docs/tfjs.md.
    "int8": PrecisionTolerance(
        image=Tolerance(max_abs=0.6, q999=0.2, mean_abs=0.02),
        state=Tolerance(max_abs=1.0, q999=0.5, mean_abs=0.05),
        alpha_mad_1e3=20.0,
    ),
}
TOLERANCES["uint8"] = TOLERANCES["int8"]
# TF.js per-tensor uint16 (off-grid real weights): pha max 1.8e-2, MAD 0.35: within the fp16 bounds.
TOLERANCES["uint16"] = TOLERANCES["fp16"]


def tolerance_for(precision: str) -> PrecisionTolerance:
    if precision not in TOLERANCES:
        raise KeyError(f"no tolerance is defined for precision {precision!r}")
    return TOLERANCES[precision]
