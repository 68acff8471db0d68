"""``rvm-verify --localize``: after a failure, find the first tensor that diverges and name the
PyTorch module that computed it.

The failing case is replayed closed-loop up to its first failing frame. The fp32 reference runs
with forward hooks on every module (its outputs, in execution order), and so does the reference
at the artifact's precision (each module's own noise floor). The artifact exposes its
intermediate tensors the way its format allows, through its runner's ``probe()`` (in the runtime's module):

- ONNX: every node output of the main graph becomes a graph output (as Polygraphy's
  ``--onnx-outputs mark all`` does); the exporter names nodes by module scope
  (``/decoder/decode2/gru/ih/ih.0/Conv``), which maps back to ``decoder.decode2.gru.ih.0``. A module's
  tensor is the last node of its scope, compared where the shapes agree. A convolution followed by
  a BatchNorm is skipped: exporters fold the BatchNorm into it, so its own output no longer exists.
- TorchScript (not frozen): the scripted module keeps the module tree, so each submodule of the
  artifact is called on the reference's own inputs to that module: the error is that module's alone.

A module diverges when its worst error exceeds both ``ratio`` x its noise floor and a relative
floor of its output's scale; the first one to do so, in execution order, is reported with the
worst error upstream of it, so one line says where the artifact starts to differ.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch

from model import MattingNetwork

from ..runtimes.base import Runner
from ..runtimes.recording import RecordedReference
from ..runtimes.rollout import rollout
from .noise import noise_model
from .sequence import Case, build_sequence
from .tolerances import tolerance_for

RELATIVE_FLOOR = {"fp32": 1e-4, "fp16": 2e-2}  # of max |reference| of the module's output; else 5e-2


@dataclass
class Divergence:
    module: str
    frame: int
    max_abs: float
    noise: float
    upstream: float  # worst max |e| of the modules before it in execution order
    upstream_module: str

    def line(self) -> str:
        up = f"{self.upstream:.3g} ({self.upstream_module})" if self.upstream_module else "none"
        return (
            f"first divergence: {self.module} at frame {self.frame}: max |e| {self.max_abs:.3g} "
            f"(noise floor {self.noise:.3g}); worst upstream {up}"
        )


def _first_divergence(
    frame: int,
    order: List[str],
    ref: Dict[str, np.ndarray],
    noise: Dict[str, np.ndarray],
    test: Dict[str, np.ndarray],
    ratio: float,
    relative: float,
) -> Optional[Divergence]:
    upstream, upstream_name = 0.0, ""
    for name in order:
        if name not in test or name not in noise or test[name].shape != ref[name].shape:
            continue
        err = float(np.max(np.abs(test[name] - ref[name]))) if ref[name].size else 0.0
        floor = float(np.max(np.abs(noise[name] - ref[name]))) if ref[name].size else 0.0
        scale = float(np.max(np.abs(ref[name]))) if ref[name].size else 0.0
        if err > ratio * floor and err > relative * scale and err > 1e-6:
            return Divergence(name, frame, err, floor, upstream, upstream_name)
        if err > upstream:
            upstream, upstream_name = err, name
    return None


def localize(runner: Runner, reference: MattingNetwork, case: Case, last_frame: int) -> str:
    """The ``first divergence:`` line for ``case``, replayed up to ``last_frame``; or why it cannot say."""
    assert runner.metadata is not None
    precision = runner.metadata.precision
    probe = runner.probe()
    if probe is None:
        return f"first divergence: not available for {runner.kind} artifacts (their runtime exposes no intermediate tensors)"
    tolerance = tolerance_for(precision)
    relative = RELATIVE_FLOOR.get(precision, 5e-2)
    ref = RecordedReference(reference.float().eval(), torch.float32, keep_inputs=True)
    noise = RecordedReference(*noise_model(reference, precision))
    probe.bind(ref.recorder, dict(ref.model.named_modules()))
    frames = build_sequence(case)[: min(last_frame, case.frames - 1) + 1]
    try:  # the probe runs after the reference, on the module inputs the reference just recorded
        for t, _, (_, _, test) in rollout([ref, noise, probe], frames, case.ratio, case.batch):
            rec, noise_rec = ref.recorder, noise.recorder
            found = _first_divergence(t, rec.order, rec.outputs, noise_rec.outputs, test, tolerance.ratio, relative)
            if found is not None:
                return found.line()
    finally:
        ref.recorder.close()
        noise.recorder.close()
    return f"first divergence: none found inside the network up to frame {last_frame}; the outputs differ only after it"
