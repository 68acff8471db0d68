"""``rvm-verify --localize``: after a failure, find the first tensor that diverges and name the
PyTorch module that computed it.

The failing case is replayed closed-loop up to its first failing frame. The fp32 reference runs
with forward hooks on every module (its outputs, in execution order), and so does the reference
at the artifact's precision (each module's own noise floor). The artifact exposes its
intermediate tensors the way its format allows:

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
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from model import MattingNetwork
from rvm_export.contract import OUTPUT_NAMES, STATE_INPUTS

from ..runtimes.base import Runner
from ..runtimes.rollout import rollout
from ..runtimes.torch_runner import TorchReference
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


def _first_tensor(value: Any) -> Optional[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


class Recorder:
    """Forward hooks on every named module: outputs (and inputs) in execution order."""

    def __init__(self, model: nn.Module, keep_inputs: bool = False) -> None:
        self.order: List[str] = []
        self.outputs: Dict[str, np.ndarray] = {}
        self.inputs: Dict[str, Tuple[tuple, dict]] = {}
        self.handles = []
        for name, module in model.named_modules():
            if name:
                self.handles.append(module.register_forward_hook(self._hook(name, keep_inputs), with_kwargs=True))

    def _hook(self, name: str, keep_inputs: bool) -> Any:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            tensor = _first_tensor(output)
            if tensor is None or name in self.outputs:  # a module called twice per frame keeps its first call
                return
            self.order.append(name)
            self.outputs[name] = tensor.detach().double().cpu().numpy()
            if keep_inputs:
                self.inputs[name] = (args, kwargs)

        return hook

    def reset(self) -> None:
        self.order, self.outputs, self.inputs = [], {}, {}

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


class RecordedReference(TorchReference):
    """A PyTorch reference whose every module's output (and inputs) is recorded afresh each frame."""

    def __init__(self, model: MattingNetwork, dtype: torch.dtype, keep_inputs: bool = False) -> None:
        super().__init__(model, dtype)
        self.recorder = Recorder(self.model, keep_inputs)

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Any, Any]:
        self.recorder.reset()
        return super().infer(src, state, downsample_ratio)


def scope_to_module(node_name: str, modules: Dict[str, nn.Module]) -> Optional[str]:
    """``/backbone/features.0/features.0.0/Conv`` -> ``backbone.features.0.0``; None without a module scope.

    A Sequential's child is scoped by its qualified name (``features.0`` then ``features.0.0``), and a
    module whose forward the exporter inlined can be missing from the scope (``/decoder/decode2/ih/ih.0``
    for ``decoder.decode2.gru.ih.0``): the module is the shortest name holding the scope's parts in order."""
    parts = node_name.split("/")[1:-1]
    path: List[str] = []
    for part in parts:
        if path and part.startswith(path[-1] + "."):
            path[-1] = part
        else:
            path.append(part)
    name = ".".join(path)
    if not name or name in modules:
        return name or None
    wanted = name.split(".")
    matches = [m for m in modules if m.endswith("." + ".".join(wanted[-2:])) and _subsequence(wanted, m.split("."))]
    return matches[0] if len(matches) == 1 else None  # ambiguous (a re-stated graph's flat scopes): no guess


def _subsequence(short: List[str], long: List[str]) -> bool:
    it = iter(long)
    return all(part in it for part in short)


def _folded(name: str, modules: Dict[str, nn.Module]) -> bool:
    """A conv directly followed by a BatchNorm in its parent: exporters fold the two."""
    if not isinstance(modules[name], nn.Conv2d) or "." not in name:
        return False
    parent, child = name.rsplit(".", 1)
    siblings = list(modules[parent].named_children()) if parent in modules else []
    names = [n for n, _ in siblings]
    if child not in names or names.index(child) + 1 >= len(names):
        return False
    return isinstance(siblings[names.index(child) + 1][1], nn.BatchNorm2d)


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
    probe = _probe_for(runner)
    if probe is None:
        return f"first divergence: not available for {runner.kind} artifacts (ONNX and unfrozen TorchScript only)"
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


def _probe_for(runner: Runner) -> Optional[Any]:
    if runner.kind == "onnx":
        return OnnxProbe(runner)
    if runner.kind == "torchscript" and any(True for _ in runner.module.named_children()):  # type: ignore[attr-defined]
        return TorchScriptProbe(runner)
    return None


class Probe:
    """An artifact that exposes its intermediate tensors, stepped like a runner by the rollout: each frame
    returns ``{module name: its tensor}`` next to the new state, read against ``recorder`` (the reference)."""

    recorder: Recorder
    modules: Dict[str, nn.Module]

    def bind(self, recorder: Recorder, modules: Dict[str, nn.Module]) -> None:
        self.recorder, self.modules = recorder, modules


class OnnxProbe(Probe):
    """The ONNX artifact with every main-graph node output exposed."""

    def __init__(self, runner: Any) -> None:
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(runner.path))
        graph_outputs = {o.name for o in model.graph.output}
        existing = set(graph_outputs)
        initializers = {i.name for i in model.graph.initializer}
        self.nodes = [(n.name, list(n.input), [o for o in n.output if o]) for n in model.graph.node]
        self.graph_outputs = graph_outputs
        self.initializers = initializers
        for _, _, outputs in self.nodes:
            for out in outputs:
                if out not in existing:
                    model.graph.output.append(onnx.ValueInfoProto(name=out))
                    existing.add(out)
        self.session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.runner = runner
        self.tensor_module: Optional[Dict[str, str]] = None

    def _map_tensors(self, modules: Dict[str, nn.Module]) -> Dict[str, str]:
        """Tensor -> the module that computed it. A node reading a ``<module>.weight`` initializer is that
        module's (exact, whatever the scopes); otherwise the node's scope names the module, and a tensor
        stands for a module only where it leaves it (read outside its scope, or a graph output), so an
        inner tensor of a re-stated block is not taken for the block's output."""
        node_module: Dict[str, Optional[str]] = {}
        for name, inputs, _ in self.nodes:
            owner = None
            for inp in inputs:
                if inp in self.initializers and inp.endswith(".weight"):
                    path = inp[: -len(".weight")]
                    while path and path not in modules:
                        path = path.split(".", 1)[1] if "." in path else ""
                    owner = path or None
            node_module[name] = owner or scope_to_module(name, modules)
        consumers: Dict[str, List[Optional[str]]] = {}
        for name, inputs, _ in self.nodes:
            for inp in inputs:
                consumers.setdefault(inp, []).append(node_module[name])

        def leaves(tensor: str, module: str) -> bool:
            outside = [
                c for c in consumers.get(tensor, []) if c is None or (c != module and not c.startswith(module + "."))
            ]
            return bool(outside) or tensor in self.graph_outputs

        mapping = {}
        for name, _, outputs in self.nodes:
            module = node_module[name]
            if module is None or _folded(module, modules):
                continue
            for tensor in outputs:
                if leaves(tensor, module):
                    mapping[tensor] = module
        return mapping

    def initial_state(self, batch: int) -> Any:
        return [np.array(v.numpy(), copy=True) for v in self.runner.initial_state(batch)]  # own the memory

    def infer(self, src: np.ndarray, state: Any, ratio: float) -> Any:
        ref, modules = self.recorder, self.modules
        feeds = {"src": src.astype(self.runner.dtype), **dict(zip(STATE_INPUTS, state, strict=True))}
        if "downsample_ratio" in self.runner.inputs:
            feeds["downsample_ratio"] = np.asarray([ratio], np.float32)
        values = dict(zip(self.output_names, self.session.run(self.output_names, feeds), strict=True))
        if self.tensor_module is None:
            self.tensor_module = self._map_tensors(modules)
        by_module: Dict[str, np.ndarray] = {}
        for tensor, module in self.tensor_module.items():  # node order is topological: the last one wins
            if not isinstance(values.get(tensor), np.ndarray):
                continue
            want = ref.outputs.get(module)
            if want is not None and values[tensor].shape == want.shape:
                by_module[module] = values[tensor].astype(np.float64)
        new_state = [values[name] for name in OUTPUT_NAMES[2:]]
        return by_module, new_state


class TorchScriptProbe(Probe):
    """Each scripted submodule called on the reference's inputs to it: a module's own error."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.scripted = dict(runner.module.named_modules())

    def initial_state(self, batch: int) -> Any:
        return None

    def infer(self, src: np.ndarray, state: Any, ratio: float) -> Any:
        ref = self.recorder
        dtype = self.runner.dtype
        cast = lambda v: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v  # noqa: E731
        by_module: Dict[str, np.ndarray] = {}
        with torch.inference_mode():
            for name in ref.order:
                scripted = self.scripted.get(name)
                if scripted is None or name not in ref.inputs:
                    continue
                args, kwargs = ref.inputs[name]
                try:
                    out = scripted(*[cast(a) for a in args], **{k: cast(v) for k, v in kwargs.items()})
                except Exception:  # a module whose scripted signature differs: not comparable
                    continue
                tensor = _first_tensor(out)
                if tensor is not None:
                    by_module[name] = tensor.double().cpu().numpy()
            outputs, new_state = self.runner.infer(src, state, ratio)
        return by_module, new_state
