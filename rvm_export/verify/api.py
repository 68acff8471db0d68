"""``verify_artifact``: the whole parity check for one artifact file, as a function.

``open_artifact`` is the one way to get a runner with complete metadata: the artifact's own
(written by rvm-export), or, for an artifact another tool wrote, inferred from the checkpoint
the user names (variant, refiner) and from the artifact itself (precision, baked-in size).
Either way the artifact's tensors are checked against the precision its metadata claims.
"""

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from model import MattingNetwork, infer_architecture
from rvm_export.contract import METADATA_KEY, ArtifactMetadata

from ..runtimes import Runner, RunnerError, open_runner
from ..runtimes.base import on_grid
from ..runtimes.torch_runner import checkpoint_state, read_user_checkpoint, reference_model
from .compare import Failure
from .harness import DEFAULT_FRAMES, default_cases, verify_runner
from .report import Report
from .sequence import Case
from .tolerances import tolerance_for


def infer_metadata(runner: Runner, checkpoint: Optional[str | Path], ratios: Sequence[float] = ()) -> ArtifactMetadata:
    """Metadata for an artifact that carries none: variant and refiner from ``checkpoint``'s keys,
    precision and any fixed size from the artifact itself."""
    if checkpoint is None:
        raise RunnerError(
            f"{runner.path} carries no {METADATA_KEY} (another tool wrote it); pass the checkpoint it was "
            "exported from to verify it",
            "checkpoint",
        )
    found = read_user_checkpoint(checkpoint)  # a regular file of bounded size, unpickled weights_only
    variant, refiner = infer_architecture(checkpoint_state(found))
    facts = runner.facts()
    if facts.precision is None:
        raise RunnerError(f"cannot tell the precision of {runner.path} ({facts.evidence}); it cannot be verified")
    inferred = {"variant": "checkpoint keys", "refiner": "checkpoint keys", "precision": facts.evidence}
    options: dict = {}
    if facts.fixed_size is not None and not facts.ratio_input:
        width, height = facts.fixed_size
        if len(ratios) != 1:
            raise RunnerError(
                f"{runner.path} has a fixed {width}x{height} input and no downsample_ratio input: its ratio is "
                "baked in and the file does not record it; pass that ratio",
                "ratio",
            )
        options = {"width": width, "height": height, "static": [width, height], "downsample_ratio": ratios[0]}
        inferred |= {"size": "input shapes", "downsample_ratio": "--ratio"}
    return ArtifactMetadata(
        format=runner.kind,
        variant=variant,
        refiner=refiner,
        precision=facts.precision,
        checkpoint=found.path.name,
        checkpoint_sha256=found.sha256,
        options=options,
        inferred=inferred,
    )


def artifact_failures(runner: Runner) -> List[Failure]:
    """The checks on the artifact itself, before any frame: its tensors against the precision its metadata
    claims (a mislabelled artifact fails) and what the runner's static contract checks found."""
    assert runner.metadata is not None
    failures = [Failure("artifact", 0, "*", "contract", 1, 0, problem) for problem in runner.contract_problems()]
    facts = runner.facts()
    claimed = runner.metadata.precision
    if facts.precision is None or facts.precision == claimed:
        return failures
    detail = (
        f"the metadata claims {claimed} but the artifact is {facts.precision} ({facts.evidence}): "
        "a mislabelled artifact"
    )
    return [Failure("artifact", 0, "*", "precision", 1, 0, detail)] + failures


def open_artifact(
    path: str | Path,
    checkpoint: Optional[str | Path] = None,
    device: Optional[str] = None,
    ratios: Sequence[float] = (),
    backend: Optional[str] = None,
    require_sandbox: bool = False,
    threads: Optional[int] = None,
) -> Tuple[Runner, MattingNetwork]:
    """The runner for ``path`` with complete metadata, and the fp32 reference model it is judged against.
    ``require_sandbox``: refuse where the runtime cannot be confined; ``threads``: the runtime's thread count."""
    runner = open_runner(path, device, backend, require_sandbox, threads)
    try:
        if runner.metadata is None:
            runner.adopt_metadata(infer_metadata(runner, checkpoint, ratios))
        assert runner.metadata is not None
        reference = reference_model(runner.metadata, checkpoint, artifact=path)
        runner.bind_reference(reference)
    except BaseException:
        runner.close()
        raise
    return runner, reference


def plan_cases(
    runner: Runner,
    frames: int = DEFAULT_FRAMES,
    sizes: Sequence[Tuple[int, int]] = (),
    ratios: Sequence[float] = (),
    batch: int = 1,
) -> List[Case]:
    """The cases to run: the defaults, the user's sizes x ratios, or the one a fixed-shape artifact allows."""
    fixed = runner.fixed_case()
    if fixed is not None:
        width, height, ratio = fixed
        return [Case(width, height, 1, ratio, frames)]
    ratio = runner.fixed_ratio()
    if ratio is not None:  # dynamic size, ratio baked in: the user's sizes (or the default ones) at that ratio
        if any(abs(r - ratio) > 1e-9 for r in ratios):
            raise RunnerError(
                f"{runner.path} was exported for downsample_ratio {ratio:g} only; pass --ratio {ratio:g} or omit it",
                "ratio",
            )
        defaults = [(on_grid(c.width, ratio), on_grid(c.height, ratio)) for c in default_cases(frames)]
        sizes = sizes or list(dict.fromkeys(defaults))
        return [Case(w, h, batch, ratio, frames) for (w, h) in sizes]
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
    localize: bool = False,
    backend: Optional[str] = None,
    require_sandbox: bool = False,
) -> Report:
    """Closed-loop parity of the artifact at ``path`` against the PyTorch fp32 reference (on the CPU).

    ``localize``: on a numeric failure, name the first diverging module (``Report.localization``).
    ``backend``: one of the target's runtime backends (a TF.js artifact: Node.js by default, or Chromium's).
    ``require_sandbox``: refuse (RunnerError) where the runtime cannot be run in a confined child process."""
    runner, reference = open_artifact(path, checkpoint, device, ratios, backend, require_sandbox)
    with runner:  # the runtime (a Node.js process, a Chromium page) is released when the check ends
        return _verify_opened(runner, reference, str(path), frames, sizes, ratios, batch, localize)


def _verify_opened(
    runner: Runner,
    reference: MattingNetwork,
    path: str,
    frames: int,
    sizes: Sequence[Tuple[int, int]],
    ratios: Sequence[float],
    batch: int,
    localize: bool,
) -> Report:
    assert runner.metadata is not None
    cases = plan_cases(runner, frames, sizes, ratios, batch)
    precision = runner.judged_precision()
    results = verify_runner(runner, reference, cases, precision)
    report = Report(path, runner.kind, runner.metadata, tolerance_for(precision), results, artifact_failures(runner))
    report.runtime, report.precision = runner.describe(), precision
    report.sandbox, report.confined = getattr(runner, "confinement", ""), getattr(runner, "confined", True)
    failing = [(r.case, min(f.frame for f in r.failures)) for r in results if r.failures]
    if localize and failing:
        from .localize import localize as first_divergence

        case, frame = failing[0]
        report.localization = first_divergence(runner, reference, case, frame)
    return report
