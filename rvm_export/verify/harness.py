"""Closed-loop parity: run the reference and an artifact in lock-step over a sequence, each
carrying its own recurrent state, and compare every frame."""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from model import MattingNetwork

from ..runtimes.base import Outputs
from ..runtimes.rollout import ClosedLoop, StepFailure, rollout
from ..runtimes.torch_runner import TorchReference
from .compare import (
    AlphaStat,
    Failure,
    OutputStat,
    alpha_stats,
    alpha_values,
    check_alpha,
    check_stat,
    difference_stats,
    error_stats,
    structural_failures,
)
from .noise import Floor, NoiseFloor, load_floors, save_floors
from .sequence import Case, build_sequence
from .tolerances import PrecisionTolerance, tolerance_for

DEFAULT_FRAMES = 4
NOISE_WINDOW = 2  # frames either side whose noise floors bound a frame's (see ``envelope``)
# Sizes include an odd one (crops after upsampling), batch 1 and 2, ratio 1.0 (no refiner) and < 1.
DEFAULT_CASES = (
    (320, 192, 1, 0.5),
    (257, 319, 2, 1.0),
    (257, 319, 1, 0.375),
)


@dataclass
class CaseResult:
    case: Case
    stats: List[OutputStat] = field(default_factory=list)
    alpha: List[AlphaStat] = field(default_factory=list)
    failures: List[Failure] = field(default_factory=list)
    worst_alpha: Optional[Tuple[int, np.ndarray]] = None  # (frame, |alpha error| map of batch item 0)
    # The artifact's own run-to-run difference on frame 0 (output -> statistics), counted in the noise floor.
    jitter: Dict[str, Dict[str, float]] = field(default_factory=dict)


def default_cases(frames: int = DEFAULT_FRAMES) -> List[Case]:
    return [Case(w, h, b, r, frames) for w, h, b, r in DEFAULT_CASES]


def exception_summary(exc: BaseException) -> str:
    """First and last line of an exception's message: runtimes such as TorchScript put the cause last."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [""]
    summary = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    return summary[:400]


def noise_floor_of(ref_out: Outputs, noise_out: Outputs) -> Floor:
    """One frame's noise floor: the statistics of how far the reference moved at the artifact's precision."""
    floor: Floor = {name: difference_stats(value, noise_out[name]) for name, value in ref_out.items()}
    floor["alpha_mad_1e3"] = float(np.mean(np.abs(noise_out["pha"] - ref_out["pha"].astype(np.float64))) * 1e3)
    return floor


def runtime_jitter(runner: Any, src: np.ndarray, first: Outputs, case: Case) -> Dict[str, Dict[str, float]]:
    """How far the artifact's own runtime moves between two runs of frame 0 from the first-frame state.

    A runtime whose kernels split sums across threads (as PyTorch's CPU kernels, ONNX Runtime's or
    XNNPACK's can) gives bytes that depend on thread timing; its error against the reference is then
    only known to within this difference, which the gate adds to what it allows (never past the absolute
    ceiling, so nondeterminism cannot excuse garbage). Zero for a deterministic runtime. A second run
    that fails is left to the main loop to report."""
    try:
        again = ClosedLoop(runner, case.batch).step(src, case.ratio)
    except Exception:
        return {}
    return {name: difference_stats(value, again[name]) for name, value in first.items() if name in again}


def envelope(floors: List[Floor], t: int, window: int = NOISE_WINDOW) -> Floor:
    """Frame ``t``'s noise floor: the per-frame floors' maximum over frames t-window..t+window.

    One frame's floor is one realisation of rounding: the worst alpha pixel of the fast guided filter
    moves by 7e-5 in one frame and 7e-4 in the next, on nearly the same content. What float32 (or fp16)
    can do to an output at this point of the sequence is the envelope over neighbouring frames."""
    near = floors[max(t - window, 0) : t + window + 1]
    out: Floor = {}
    for name, value in near[0].items():
        if isinstance(value, dict):
            out[name] = {m: max(f[name][m] for f in near) for m in value}
        else:
            out[name] = max(f[name] for f in near)
    return out


def run_case(
    reference: TorchReference,
    noise: NoiseFloor,
    runner: Any,
    case: Case,
    tolerance: PrecisionTolerance,
) -> CaseResult:
    """Lock-step closed loop over one sequence: the fp32 reference and the artifact, each carrying
    its own state, every frame of every output compared, beside the noise floor at that frame (from
    the cache, or from PyTorch at the artifact's precision run in the same loop with its own state)."""
    result = CaseResult(case)
    frames = build_sequence(case)
    key = noise.key(case.label)
    floors = load_floors(key, case.frames)
    # The fp32 reference, PyTorch at the artifact's precision (when its floors are not cached) and the
    # artifact, stepped in lock-step by the one rollout, each with its own state; the artifact runs last.
    runners = [reference] + ([noise.runner()] if floors is None else []) + [runner]
    measured: List[Floor] = []
    errors: List[Dict[str, Dict[str, float]]] = []  # per frame: output -> statistics of the artifact's error
    alphas: list = []
    prev_ref = prev_test = None
    worst = -1.0
    first_test: Optional[Outputs] = None
    try:
        for t, _, outputs in rollout(runners, frames, case.ratio, case.batch):
            ref_out, test_out = outputs[0], outputs[-1]
            if len(outputs) == 3:
                measured.append(noise_floor_of(ref_out, outputs[1]))
            broken = structural_failures(case.label, t, ref_out, test_out)
            if broken:
                result.failures += broken
                break
            if t == 0:
                first_test = {name: value.copy() for name, value in test_out.items()}
            errors.append({name: difference_stats(value, test_out[name]) for name, value in ref_out.items()})
            alphas.append(alpha_values(ref_out["pha"], test_out["pha"], prev_ref, prev_test))
            pha_error = np.abs(test_out["pha"][0, 0].astype(np.float64) - ref_out["pha"][0, 0])
            if pha_error.max() > worst:  # kept for the picture (--plot)
                worst, result.worst_alpha = float(pha_error.max()), (t, pha_error.astype(np.float32))
            prev_ref, prev_test = ref_out["pha"], test_out["pha"]
    except StepFailure as failure:
        if failure.index != len(runners) - 1:  # PyTorch itself failed: a bug, not the artifact's fault
            raise failure.cause
        detail = f"the artifact failed to run: {type(failure.cause).__name__}: {exception_summary(failure.cause)}"
        result.failures.append(Failure(case.label, failure.frame, "*", "run", 1, 0, detail))
    if first_test is not None:
        result.jitter = runtime_jitter(runner, frames[0], first_test, case)
    per_frame = floors if floors is not None else measured
    for t, (error, alpha) in enumerate(zip(errors, alphas, strict=True)):
        floor = envelope(per_frame[: len(errors)], t)
        for name, stats in error.items():
            stat = error_stats(case.label, t, name, stats, floor[name], tolerance, result.jitter.get(name))
            result.stats.append(stat)
            result.failures += check_stat(stat, tolerance)
        jitter_mad = result.jitter["pha"]["mean_abs"] * 1e3 if "pha" in result.jitter else 0.0
        alpha_stat = alpha_stats(case.label, t, alpha, floor["alpha_mad_1e3"], tolerance, jitter_mad)
        result.alpha.append(alpha_stat)
        result.failures += check_alpha(alpha_stat, tolerance)
    result.failures.sort(key=lambda f: f.frame)
    if measured and len(measured) == case.frames:
        save_floors(key, measured)
    return result


def verify_runner(
    runner: Any,
    reference_net: MattingNetwork,
    cases: Sequence[Case],
    precision: Optional[str] = None,
) -> List[CaseResult]:
    precision = precision or runner.metadata.precision
    tolerance = tolerance_for(precision)
    reference = TorchReference(reference_net)
    noise = NoiseFloor(reference_net, precision)
    return [run_case(reference, noise, runner, case, tolerance) for case in cases]
