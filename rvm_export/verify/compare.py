"""The comparator: error statistics of one backend's outputs against the reference's.

Statistics per output and frame: max |e|, 99.9th percentile |e|, mean |e|, each beside the same
statistic of the reference's own noise at the artifact's precision (``verify.noise``). Alpha also
in matting terms (as the RVM paper reports): MAD and MSE x1e3, and dtSSD x1e2, which measures
temporal flicker: how much the frame-to-frame change of alpha differs from the reference's.
"""

from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from rvm_export.contract import OUTPUT_NAMES

from ..runtimes.base import Outputs
from .tolerances import METRICS, PrecisionTolerance


@dataclass
class OutputStat:
    case: str
    frame: int
    output: str
    max_abs: float
    q999: float
    mean_abs: float
    noise_floor: Dict[str, float]  # the same statistics of the reference's own noise
    limit: Dict[str, float]  # what the gate allowed (tolerances.PrecisionTolerance.allowed)

    @property
    def ratio(self) -> Dict[str, float]:
        """Each statistic as a multiple of its noise floor."""
        return {m: getattr(self, m) / max(self.noise_floor[m], 1e-12) for m in METRICS}

    def to_dict(self) -> dict:
        return asdict(self) | {"ratio": self.ratio}


@dataclass
class AlphaStat:
    case: str
    frame: int
    mad_1e3: float
    mse_1e3: float
    dtssd_1e2: Optional[float]  # None on the first frame
    noise_mad_1e3: float = 0.0
    limit_mad_1e3: float = 0.0


@dataclass
class Failure:
    case: str
    frame: int
    output: str
    metric: str
    value: float
    limit: float
    detail: str = ""

    def message(self) -> str:
        if self.detail:
            return f"{self.output}, frame {self.frame} ({self.case}): {self.detail}"
        return (
            f"{self.output}, frame {self.frame} ({self.case}): {self.metric} {self.value:.3g} exceeds {self.limit:.3g}"
        )

    def to_dict(self) -> dict:
        return asdict(self) | {"message": self.message()}


def difference_stats(ref: np.ndarray, other: np.ndarray) -> Dict[str, float]:
    """max, 99.9th percentile and mean of |other - ref|."""
    err = np.abs(other.astype(np.float64) - ref.astype(np.float64))
    return {"max_abs": float(err.max()), "q999": float(np.quantile(err, 0.999)), "mean_abs": float(err.mean())}


def error_stats(
    case: str,
    frame: int,
    name: str,
    stats: Dict[str, float],
    floor: Dict[str, float],
    tolerance: PrecisionTolerance,
    jitter: Optional[Dict[str, float]] = None,
) -> OutputStat:
    """``stats`` of the artifact's error beside the noise floor's, and the gate's limit for each (plus the
    artifact's own run-to-run ``jitter``, within the absolute ceiling)."""
    limit = {m: tolerance.allowed(name, m, floor[m], (jitter or {}).get(m, 0.0)) for m in METRICS}
    return OutputStat(case, frame, name, **stats, noise_floor=floor, limit=limit)


def alpha_values(
    ref: np.ndarray, test: np.ndarray, prev_ref: Optional[np.ndarray], prev_test: Optional[np.ndarray]
) -> Tuple[float, float, Optional[float]]:
    """(MAD x1e3, MSE x1e3, dtSSD x1e2; None on the first frame) of alpha."""
    diff = test.astype(np.float64) - ref.astype(np.float64)
    dtssd = None
    if prev_ref is not None and prev_test is not None:
        temporal = (test - prev_test).astype(np.float64) - (ref - prev_ref).astype(np.float64)
        dtssd = float(np.sqrt(np.mean(temporal**2)) * 1e2)
    return float(np.mean(np.abs(diff)) * 1e3), float(np.mean(diff**2) * 1e3), dtssd


def alpha_stats(
    case: str,
    frame: int,
    values: Tuple[float, float, Optional[float]],
    noise_mad: float,
    tolerance: PrecisionTolerance,
    jitter_mad: float = 0.0,
) -> AlphaStat:
    mad, mse, dtssd = values
    return AlphaStat(case, frame, mad, mse, dtssd, noise_mad, tolerance.allowed_mad(noise_mad, jitter_mad))


def structural_failures(case: str, frame: int, ref: Outputs, test: Outputs) -> List[Failure]:
    """Missing outputs, wrong shapes, NaN/Inf: failures no statistic can express."""
    failures = []
    for name in OUTPUT_NAMES:
        if name not in test:
            failures.append(Failure(case, frame, name, "missing", 1, 0, "output missing from the artifact"))
        elif test[name].shape != ref[name].shape:
            detail = f"shape {tuple(test[name].shape)} != reference {tuple(ref[name].shape)}"
            failures.append(Failure(case, frame, name, "shape", 1, 0, detail))
        elif not np.all(np.isfinite(test[name])):
            failures.append(Failure(case, frame, name, "nonfinite", 1, 0, "NaN or Inf in the output"))
    return failures


def _why(value: float, limit: float, noise: float, ratio: float, floor: float, ceiling: float) -> str:
    """Which bound set ``limit``: the absolute ceiling, the absolute floor, ``ratio`` x the noise floor, each
    possibly raised by the runtime's own jitter (tolerances.PrecisionTolerance.allowed)."""
    measured = value / max(noise, 1e-12)
    scaled = ratio * noise
    base = min(ceiling, max(floor, scaled))
    jitter = limit - base
    if limit >= ceiling:
        return f"exceeds the absolute ceiling {limit:.3g} (noise floor {noise:.3g}, ratio {measured:.1f})"
    if floor > scaled:
        bound = f"the absolute floor {base:.3g}"
    else:
        bound = f"{ratio:g} x the noise floor {noise:.3g} = {base:.3g}"
    if jitter > 1e-6 * max(base, 1e-30):
        return f"exceeds {limit:.3g}: {bound} + the runtime's own jitter {jitter:.3g} (ratio {measured:.1f})"
    if floor > scaled:
        return f"exceeds {bound} (noise floor {noise:.3g}, ratio {measured:.1f})"
    return f"is {measured:.1f} x the noise floor {noise:.3g} (allowed {ratio:g} x = {limit:.3g})"


def check_stat(stat: OutputStat, tolerance: PrecisionTolerance) -> List[Failure]:
    failures = []
    for metric in METRICS:
        value, limit, noise = getattr(stat, metric), stat.limit[metric], stat.noise_floor[metric]
        if not value <= limit:
            floor, ceiling = (getattr(bound, metric) for bound in tolerance.bounds(stat.output))
            detail = f"{metric} {value:.3g} {_why(value, limit, noise, tolerance.ratio, floor, ceiling)}"
            failures.append(Failure(stat.case, stat.frame, stat.output, metric, value, limit, detail))
    return failures


def check_alpha(stat: AlphaStat, tolerance: PrecisionTolerance) -> List[Failure]:
    if stat.mad_1e3 <= stat.limit_mad_1e3:
        return []
    why = _why(
        stat.mad_1e3,
        stat.limit_mad_1e3,
        stat.noise_mad_1e3,
        tolerance.ratio,
        tolerance.alpha_mad_floor,
        tolerance.alpha_mad_ceiling,
    )
    detail = f"MAD x1e3 {stat.mad_1e3:.3g} {why}"
    return [Failure(stat.case, stat.frame, "pha", "MAD x1e3", stat.mad_1e3, stat.limit_mad_1e3, detail)]
