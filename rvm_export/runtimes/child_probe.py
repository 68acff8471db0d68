"""``rvm-verify --localize`` across the child process: the artifact's probe (:meth:`Runner.probe`) runs in the
runtime's confined child, beside a recording PyTorch reference of its own.

A probe reads the reference's per-module tensors (a TorchScript probe calls each scripted submodule on the
reference's own inputs to it), which are PyTorch objects of the parent. Rather than ship those across, the parent
sends the reference's weights once (as arrays) and the child rebuilds it and steps it on the same frames, right
before the probe: the same model on the same inputs on the same CPU, so the child's recording is the parent's.
Only the probe's answer comes back: one float64 array per module name.
"""

from typing import Any, Dict, List, Tuple

import numpy as np

from .base import Probe, RunnerError

_PROBES: Dict[int, Any] = {}  # in the child: id(runner) -> [probe, recording reference, its state]


class ProbeProxy(Probe):
    """The parent's side of a child's probe, stepped by the rollout like any runner."""

    def __init__(self, runner: Any) -> None:
        self.runner, self.child = runner, runner.child

    def bind(self, recorder: Any, modules: Dict[str, Any]) -> None:
        super().bind(recorder, modules)
        from .recording import reference_message

        message, arrays = reference_message(modules[""])  # the reference MattingNetwork itself
        self.child.request({"op": "probe", "action": "bind", **message}, arrays, stage="preparing the probe of")

    def initial_state(self, batch: int) -> Any:
        answer, _ = self.child.request({"op": "probe", "action": "initial_state", "batch": batch}, stage="probing")
        return self.child.handle(answer["state"])

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Dict[str, np.ndarray], Any]:
        self.child.frames += 1
        message = {"op": "probe", "action": "infer", "state": state.id, "ratio": float(downsample_ratio)}
        answer, arrays = self.child.request(message, [np.asarray(src, np.float32)])
        names = answer.get("names")
        if not isinstance(names, list) or len(names) != len(arrays):
            raise RunnerError("the runtime's child process answered a probe without its module names")
        return dict(zip(map(str, names), arrays, strict=True)), self.child.handle(answer["state"])


def serve_probe(runner: Any, states: Dict[int, Any], message: dict, arrays: List[np.ndarray], reply: Any) -> dict:
    """The child's side: bind (rebuild the reference, open the probe), initial_state, infer."""
    action = message.get("action")
    if action == "bind":
        import torch

        from .recording import RecordedReference, rebuilt_reference

        reference = RecordedReference(rebuilt_reference(message, arrays), torch.float32, keep_inputs=True)
        probe = runner.probe()
        if probe is None:
            raise RunnerError("this artifact exposes no intermediate tensors")
        probe.bind(reference.recorder, dict(reference.model.named_modules()))
        _PROBES[id(runner)] = [probe, reference, None]
        return {}
    probe, reference, _ = _PROBES[id(runner)]
    ident = max(states, default=0) + 1
    if action == "initial_state":
        batch = int(message["batch"])
        _PROBES[id(runner)][2] = reference.initial_state(batch)
        states[ident] = probe.initial_state(batch)
        return {"state": ident}
    if action == "infer":
        ratio = float(message["ratio"])
        _, _PROBES[id(runner)][2] = reference.infer(arrays[0], _PROBES[id(runner)][2], ratio)
        by_module, states[ident] = probe.infer(np.array(arrays[0]), states[int(message["state"])], ratio)
        names = list(by_module)
        return {"names": names, "state": ident, "arrays": reply.put([np.asarray(by_module[n]) for n in names])}
    raise RunnerError(f"no probe action {action!r}")


__all__ = ["ProbeProxy", "serve_probe"]
