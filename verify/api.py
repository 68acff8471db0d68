"""``verify_artifact``: the whole parity check for one artifact file, as a function."""

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from .harness import DEFAULT_FRAMES, default_cases, reference_model, verify_runner
from .report import Report
from .runners import artifact_kind, open_runner
from .sequence import Case
from .tolerances import tolerance_for


def plan_cases(
    runner: object,
    frames: int = DEFAULT_FRAMES,
    sizes: Sequence[Tuple[int, int]] = (),
    ratios: Sequence[float] = (),
    batch: int = 1,
) -> List[Case]:
    """The cases to run: the defaults, the user's sizes x ratios, or the one a fixed-shape artifact allows."""
    fixed = runner.fixed_case()  # type: ignore[attr-defined]
    if fixed is not None:
        width, height, ratio = fixed
        return [Case(width, height, 1, ratio, frames)]
    if not sizes and not ratios:
        return default_cases(frames)
    sizes = sizes or [(320, 192)]
    ratios = ratios or [1.0, 0.5]
    return [Case(w, h, batch, r, frames) for (w, h) in sizes for r in ratios]


def verify_artifact(
    path: str | Path,
    checkpoint: Optional[str | Path] = None,
    frames: int = DEFAULT_FRAMES,
    sizes: Sequence[Tuple[int, int]] = (),
    ratios: Sequence[float] = (),
    batch: int = 1,
    device: Optional[str] = None,
    tfjs_backend: Optional[str] = None,
) -> Report:
    """Closed-loop parity of the artifact at ``path`` against the PyTorch fp32 reference (on the CPU)."""
    runner = open_runner(path, device, tfjs_backend)
    reference = reference_model(runner.metadata, checkpoint)
    runner.bind_reference(reference)
    cases = plan_cases(runner, frames, sizes, ratios, batch)
    precision = runner.judged_precision()
    results = verify_runner(runner, reference, cases, precision)
    report = Report(str(path), artifact_kind(path), runner.metadata, tolerance_for(precision), results)
    report.runtime, report.precision = runner.describe(), precision
    return report
