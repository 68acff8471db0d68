"""The one closed loop: runners stepped frame by frame over a sequence, each feeding its own recurrent
state outputs back in, exactly as a user's inference loop does.

Verification (reference, noise model and artifact in lock-step), rvm-bench (timing and accuracy),
``--localize`` and ``convert_video`` on an artifact all step runners through this module.
"""

from typing import Any, Iterable, Iterator, List, Sequence, Tuple

import numpy as np

from .base import Outputs, RunnerError


class StepFailure(Exception):
    """Runner ``index`` raised while running frame ``frame`` (its own error, not a bad input)."""

    def __init__(self, index: int, frame: int, cause: BaseException) -> None:
        super().__init__(f"runner {index} failed on frame {frame}: {type(cause).__name__}: {cause}")
        self.index, self.frame, self.cause = index, frame, cause


class ClosedLoop:
    """One runner carrying its own recurrent state from frame to frame."""

    def __init__(self, runner: Any, batch: int = 1) -> None:
        self.runner = runner
        self.state = runner.initial_state(batch)
        self.frame = 0

    def step(self, src: np.ndarray, downsample_ratio: float) -> Outputs:
        """Run the next frame ``src`` [B,3,H,W] float32 0..1 with the state the previous frame left."""
        outputs, self.state = self.runner.infer(src, self.state, downsample_ratio)
        self.frame += 1
        return outputs


def rollout(
    runners: Sequence[Any], frames: Iterable[np.ndarray], downsample_ratio: float, batch: int = 1
) -> Iterator[Tuple[int, np.ndarray, List[Outputs]]]:
    """Yield ``(t, src, [outputs of each runner])`` for every frame, the runners in lock-step.

    A runner's own exception (a broken artifact) comes out as :class:`StepFailure` naming the runner and
    the frame; a :class:`RunnerError` (the runner refusing its input) passes through unchanged."""
    loops = [ClosedLoop(runner, batch) for runner in runners]
    for t, src in enumerate(frames):
        outputs = []
        for index, loop in enumerate(loops):
            try:
                outputs.append(loop.step(src, downsample_ratio))
            except RunnerError:
                raise
            except Exception as exc:
                raise StepFailure(index, t, exc) from exc
        yield t, src, outputs


__all__ = ["ClosedLoop", "StepFailure", "rollout"]
