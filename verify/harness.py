"""Closed-loop parity: run the reference and an artifact in lock-step over a sequence, each
carrying its own recurrent state, and compare every frame."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence

from contract import ArtifactMetadata
from model import MattingNetwork, load_checkpoint, seeded_random_model, sha256_file

from .compare import (
    AlphaStat,
    Failure,
    OutputStat,
    alpha_stats,
    check_alpha,
    check_stat,
    error_stats,
    structural_failures,
)
from .runners.base import RunnerError
from .runners.torch_runner import TorchReference
from .sequence import Case, build_sequence
from .tolerances import PrecisionTolerance, tolerance_for

DEFAULT_FRAMES = 4
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


def default_cases(frames: int = DEFAULT_FRAMES) -> List[Case]:
    return [Case(w, h, b, r, frames) for w, h, b, r in DEFAULT_CASES]


def reference_model(metadata: ArtifactMetadata, checkpoint: Optional[str | Path] = None) -> MattingNetwork:
    """The fp32 PyTorch model the artifact was exported from, found via its metadata."""
    if metadata.checkpoint_sha256 is None:
        if checkpoint is not None:
            raise RunnerError("the artifact holds a seeded random initialisation; do not pass --checkpoint")
        return seeded_random_model(metadata.variant, metadata.refiner, metadata.seed or 0)
    path = Path(checkpoint) if checkpoint is not None else Path(metadata.checkpoint or "")
    if not path.is_file():
        raise RunnerError(
            f"the artifact was exported from {metadata.checkpoint} (sha256 {metadata.checkpoint_sha256[:12]}), "
            "which is not found; pass --checkpoint PATH"
        )
    digest = sha256_file(path)
    if digest != metadata.checkpoint_sha256:
        raise RunnerError(
            f"{path} (sha256 {digest[:12]}) is not the checkpoint the artifact was exported from "
            f"(sha256 {metadata.checkpoint_sha256[:12]}); pass the right --checkpoint"
        )
    return load_checkpoint(path, metadata.variant, metadata.refiner)


def run_case(reference: TorchReference, runner: Any, case: Case, tolerance: PrecisionTolerance) -> CaseResult:
    """Lock-step closed loop over one sequence; every frame of every output is compared."""
    result = CaseResult(case)
    frames = build_sequence(case)
    ref_state = reference.initial_state(case.batch)
    test_state = runner.initial_state(case.batch)
    prev_ref = prev_test = None
    for t, src in enumerate(frames):
        ref_out, ref_state = reference.infer(src, ref_state, case.ratio)
        try:
            test_out, test_state = runner.infer(src, test_state, case.ratio)
        except RunnerError:
            raise
        except Exception as exc:  # the backend's own error on a broken artifact
            detail = f"the backend failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
            result.failures.append(Failure(case.label, t, "*", "run", 1, 0, detail))
            return result
        broken = structural_failures(case.label, t, ref_out, test_out)
        if broken:
            result.failures += broken
            return result
        for name, ref_value in ref_out.items():
            stat = error_stats(case.label, t, name, ref_value, test_out[name])
            result.stats.append(stat)
            result.failures += check_stat(stat, tolerance)
        alpha = alpha_stats(case.label, t, ref_out["pha"], test_out["pha"], prev_ref, prev_test)
        result.alpha.append(alpha)
        result.failures += check_alpha(alpha, tolerance)
        prev_ref, prev_test = ref_out["pha"], test_out["pha"]
    return result


def verify_runner(
    runner: Any,
    reference_net: MattingNetwork,
    cases: Sequence[Case],
    precision: Optional[str] = None,
) -> List[CaseResult]:
    tolerance = tolerance_for(precision or runner.metadata.precision)
    reference = TorchReference(reference_net)
    return [run_case(reference, runner, case, tolerance) for case in cases]
