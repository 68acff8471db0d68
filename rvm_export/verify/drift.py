"""Error growth over a long sequence: per-block worst errors and their trend.

A recurrent model that is wrong in a way that accumulates (a state scaled or offset a little
every frame) passes the first frames and fails later; the per-frame gate catches the failure,
this names it: the worst error of each block of frames, the slope of a straight-line fit
through them, and the growth from the first third of the sequence to the last.
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np

BLOCK = 10  # frames per block
GROWTH = 3.0  # last third over first third: above this (and a rising fit), the error is called drift


@dataclass
class Drift:
    case: str
    output: str
    block_max: List[float]  # worst max |e| of each block of BLOCK frames
    slope_per_100: float  # least-squares slope of max |e| over frames, per 100 frames
    growth: float  # mean of the last third of block_max over the first third

    @property
    def drifting(self) -> bool:
        return len(self.block_max) >= 3 and self.slope_per_100 > 0 and self.growth > GROWTH

    def message(self) -> str:
        first, last = self.block_max[0], self.block_max[-1]
        return (
            f"drift: {self.output} error grows {self.growth:.1f}x over the sequence ({self.case}): "
            f"max |e| {first:.3g} in frames 0-{BLOCK - 1}, {last:.3g} in the last block, "
            f"{self.slope_per_100:+.3g} per 100 frames"
        )


def drift_of(case: str, output: str, frames: Sequence[int], max_abs: Sequence[float]) -> Drift:
    values = np.asarray(max_abs, np.float64)
    frame_idx = np.asarray(frames, np.float64)
    blocks = [float(values[i : i + BLOCK].max()) for i in range(0, len(values), BLOCK)]
    slope = float(np.polyfit(frame_idx, values, 1)[0] * 100) if len(values) >= 2 else 0.0
    third = max(len(blocks) // 3, 1)
    growth = float(np.mean(blocks[-third:]) / max(np.mean(blocks[:third]), 1e-12))
    return Drift(case, output, blocks, slope, growth)


def drifts(case: str, stats: Sequence) -> Dict[str, Drift]:
    """Output -> its Drift over the frames of one case (``stats``: compare.OutputStat)."""
    by_output: Dict[str, list] = {}
    for s in stats:
        by_output.setdefault(s.output, []).append(s)
    return {
        name: drift_of(case, name, [s.frame for s in items], [s.max_abs for s in items])
        for name, items in by_output.items()
    }
