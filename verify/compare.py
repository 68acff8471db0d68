"""The comparator: error statistics of one backend's outputs against the reference's.

Statistics per output and frame: max |e|, 99.9th percentile |e|, mean |e|. Alpha also in
matting terms (as the RVM paper reports): MAD and MSE x1e3, and dtSSD x1e2, which measures
temporal flicker: how much the frame-to-frame change of alpha differs from the reference's.
"""

from dataclasses import asdict, dataclass
from typing import List, Optional

import numpy as np

from contract import OUTPUT_NAMES

from .runners.base import Outputs
from .tolerances import PrecisionTolerance


@dataclass
class OutputStat:
    case: str
    frame: int
    output: str
    max_abs: float
    q999: float
    mean_abs: float


@dataclass
class AlphaStat:
    case: str
    frame: int
    mad_1e3: float
    mse_1e3: float
    dtssd_1e2: Optional[float]  # None on the first frame


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


def error_stats(case: str, frame: int, name: str, ref: np.ndarray, test: np.ndarray) -> OutputStat:
    err = np.abs(test.astype(np.float64) - ref.astype(np.float64))
    return OutputStat(case, frame, name, float(err.max()), float(np.quantile(err, 0.999)), float(err.mean()))


def alpha_stats(
    case: str,
    frame: int,
    ref: np.ndarray,
    test: np.ndarray,
    prev_ref: Optional[np.ndarray],
    prev_test: Optional[np.ndarray],
) -> AlphaStat:
    diff = test.astype(np.float64) - ref.astype(np.float64)
    dtssd = None
    if prev_ref is not None and prev_test is not None:
        temporal = (test - prev_test).astype(np.float64) - (ref - prev_ref).astype(np.float64)
        dtssd = float(np.sqrt(np.mean(temporal**2)) * 1e2)
    return AlphaStat(case, frame, float(np.mean(np.abs(diff)) * 1e3), float(np.mean(diff**2) * 1e3), dtssd)


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


def check_stat(stat: OutputStat, tolerance: PrecisionTolerance) -> List[Failure]:
    limit = tolerance.for_output(stat.output)
    failures = []
    for metric in ("max_abs", "q999", "mean_abs"):
        value, bound = getattr(stat, metric), getattr(limit, metric)
        if not value <= bound:
            failures.append(Failure(stat.case, stat.frame, stat.output, metric, value, bound))
    return failures


def check_alpha(stat: AlphaStat, tolerance: PrecisionTolerance) -> List[Failure]:
    if stat.mad_1e3 <= tolerance.alpha_mad_1e3:
        return []
    return [Failure(stat.case, stat.frame, "pha", "MAD x1e3", stat.mad_1e3, tolerance.alpha_mad_1e3)]
