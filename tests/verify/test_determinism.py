"""One verdict per artifact: the PyTorch reference gives the same bytes on an idle or a loaded machine,
and a runtime that is not deterministic itself is judged within its own run-to-run difference.

The stress test loads both cores with busy processes (as a CI runner is loaded) and requires every
verdict to pass and the reference's outputs to be byte-identical across runs. It is not timed."""

import hashlib
import multiprocessing
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import numpy as np
import pytest
import torch

from rvm_export.runtimes.rollout import rollout
from rvm_export.runtimes.torch_runner import REFERENCE_THREADS, TorchReference
from rvm_export.verify.api import verify_artifact
from rvm_export.verify.harness import verify_runner
from rvm_export.verify.sequence import Case, build_sequence

CASE = Case(320, 192, 1, 0.5, 3)  # the case in which the load-dependent reference was seen


def _spin() -> None:
    while True:
        pass


@pytest.fixture
def loaded_cores() -> Iterator[None]:
    """Two busy processes, one per core of this machine, for the length of the test."""
    busy = [multiprocessing.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(2)]
    for process in busy:
        process.start()
    try:
        yield
    finally:
        for process in busy:
            process.kill()
            process.join()


def _digest(outputs: List[dict]) -> str:
    digest = hashlib.sha256()
    for frame in outputs:
        for name in sorted(frame):
            digest.update(np.ascontiguousarray(frame[name]).tobytes())
    return digest.hexdigest()


def _reference_run(model: torch.nn.Module) -> str:
    frames = build_sequence(CASE)
    return _digest([outs[0] for _, _, outs in rollout([TorchReference(model)], frames, CASE.ratio, CASE.batch)])


def test_the_reference_runs_on_a_fixed_thread_count_whatever_the_process_uses(real_model) -> None:
    seen = []
    handle = real_model.backbone.register_forward_hook(lambda *a: seen.append(torch.get_num_threads()))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _reference_run(real_model)
        assert torch.get_num_threads() == 2, "the process's own setting is restored after each frame"
    finally:
        handle.remove()
        torch.set_num_threads(previous)
    assert seen and set(seen) == {REFERENCE_THREADS}


def test_reference_bytes_and_verdicts_are_the_same_under_load(
    real_model, artifacts, weights_path: Path, loaded_cores: None
) -> None:
    """Stress test (not timed): the reference repeated while both cores are busy gives one digest, and a
    good fp32 TorchScript and fp32 ONNX pass every time."""
    digests = {_reference_run(real_model) for _ in range(6)}
    assert len(digests) == 1, f"the reference gave {len(digests)} different results under load"
    torchscript = artifacts.export("torchscript", "rvm.torchscript", "--precision", "fp32")
    onnx = artifacts.onnx("fp32")
    for path in (torchscript, onnx) * 2:
        report = verify_artifact(path, frames=2, sizes=[(CASE.width, CASE.height)], ratios=[CASE.ratio])
        assert report.passed, report.table()


class NoisyRunner:
    """A runtime that adds noise of ``scale`` to every output: fresh on every run (a nondeterministic
    runtime), or the same for the same input (``repeatable``: a deterministic but wrong one)."""

    kind = "noisy"

    def __init__(self, model: torch.nn.Module, scale: float, repeatable: bool = False) -> None:
        self.inner, self.scale, self.repeatable = TorchReference(model), scale, repeatable
        self.metadata = None
        self.random = np.random.default_rng(0)

    def initial_state(self, batch: int) -> Any:
        return None

    def infer(self, src: np.ndarray, state: Any, ratio: float) -> Tuple[dict, Any]:
        outputs, state = self.inner.infer(src, state, ratio)
        seed = int.from_bytes(hashlib.sha256(src.tobytes()).digest()[:4], "little")
        random = np.random.default_rng(seed) if self.repeatable else self.random
        noisy = {k: v + random.uniform(-self.scale, self.scale, v.shape).astype(np.float32) for k, v in outputs.items()}
        return noisy, state


def test_a_nondeterministic_runtime_is_judged_within_its_own_jitter(real_model) -> None:
    case = Case(128, 96, 1, 0.5, 2)
    # 3e-5 of noise is many times float32's noise floor: repeatable, it fails the fp32 gate...
    fixed = verify_runner(NoisyRunner(real_model, 3e-5, repeatable=True), real_model, [case], "fp32")[0]
    assert fixed.failures and all(s["max_abs"] == 0.0 for s in fixed.jitter.values())
    # ...fresh on every run, the runtime's own difference bounds what can be known, and it passes...
    jittery = verify_runner(NoisyRunner(real_model, 3e-5), real_model, [case], "fp32")[0]
    assert jittery.jitter["pha"]["max_abs"] > 3e-5, "the second run of frame 0 measured the runtime's own difference"
    assert not jittery.failures, [f.message() for f in jittery.failures]
    # ...but nondeterminism cannot excuse garbage: the absolute ceiling still applies.
    large = verify_runner(NoisyRunner(real_model, 0.2), real_model, [case], "fp32")[0]
    assert large.failures and all(f.value > f.limit for f in large.failures)


def test_a_deterministic_runtime_adds_nothing(real_model) -> None:
    result = verify_runner(TorchReference(real_model), real_model, [Case(128, 96, 1, 0.5, 2)], "fp32")[0]
    assert all(stats["max_abs"] == 0.0 for stats in result.jitter.values())
    assert not result.failures


def test_a_failure_names_the_bound_that_set_its_limit() -> None:
    from rvm_export.verify.compare import _why

    # ratio 8, floor 1e-5, ceiling 5e-4 (fp32 q99.9 of an image)
    assert "(allowed 8 x = 4e-05)" in _why(1e-4, 4e-5, 5e-6, 8.0, 1e-5, 5e-4)
    assert "exceeds the absolute floor 1e-05" in _why(1e-4, 1e-5, 1e-7, 8.0, 1e-5, 5e-4)
    assert "exceeds the absolute ceiling" in _why(1e-3, 5e-4, 1e-4, 8.0, 1e-5, 5e-4)
    raised = _why(1e-4, 6e-5, 5e-6, 8.0, 1e-5, 5e-4)  # 8 x 5e-6 = 4e-5, + 2e-5 of the runtime's jitter
    assert "4e-05 + the runtime's own jitter 2e-05" in raised and "absolute" not in raised
