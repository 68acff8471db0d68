"""ONNX Runtime runner: the documented io-binding loop, states kept on the device.

Uses the CUDA execution provider when this ONNX Runtime has it (onnxruntime-gpu), else the CPU.
The recurrent state is the list of ``OrtValue`` outputs of the previous frame, bound straight
back as the next frame's inputs, so on CUDA it never leaves the GPU (only fgr/pha and a copy of
the states for comparison come back). This is the RVM documentation's ``io_binding`` loop.
"""

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnxruntime as ort
from torch import nn

from rvm_export.contract import METADATA_KEY, OUTPUT_NAMES, STATE_INPUTS, ArtifactMetadata
from rvm_export.contract.errors import first_line

from .base import (
    LARGE_TENSOR,
    ArtifactFacts,
    Outputs,
    Probe,
    Runner,
    RunnerError,
    load_error,
    precision_of,
    to_numpy_outputs,
)

ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def default_providers() -> List[str]:
    """CUDA first when available, always with the CPU as fallback."""
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def open_session(path: Path, providers: Optional[Sequence[str]] = None) -> ort.InferenceSession:
    if not path.is_file():
        raise RunnerError(f"artifact not found: {path}")
    try:
        return ort.InferenceSession(str(path), providers=list(providers or default_providers()))
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types for foreign or broken files
        raise load_error(path, "a loadable ONNX model", exc)


def session_metadata(session: ort.InferenceSession, path: Path) -> Optional[ArtifactMetadata]:
    try:
        text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)  # decoded as UTF-8 here
        if not text:
            return None
        return ArtifactMetadata.from_json(text)
    except (ValueError, TypeError, RecursionError) as exc:  # a damaged document: not JSON, fields missing
        raise load_error(path, f"an ONNX model with a readable {METADATA_KEY}", exc)


def weight_dtypes(path: Path) -> List[str]:
    """Storage dtype of each large initializer; a quantized weight (the data input of a
    DequantizeLinear) counts as its integer type."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graphs, dtypes = [model.graph], []
    while graphs:  # the refiner of our exports lives in an If's subgraph
        graph = graphs.pop()
        for node in graph.node:
            graphs += [a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH]
        for init in graph.initializer:
            if int(np.prod(init.dims)) >= LARGE_TENSOR:
                dtypes.append(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(init.data_type)).name)
    return dtypes


class OnnxRuntimeRunner(Runner):
    kind = "onnx"

    def set_threads(self, threads: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.path), options, providers=self.session.get_providers())

    def probe(self) -> "OnnxProbe":
        return OnnxProbe(self)

    def __init__(self, path: str | Path, providers: Optional[Sequence[str]] = None) -> None:
        self.path = Path(path)
        self.session = open_session(self.path, providers)
        self.metadata = session_metadata(self.session, self.path)
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        missing = [n for n in ("src", *STATE_INPUTS) if n not in self.inputs]
        if missing:
            raise RunnerError(f"{self.path} lacks the inputs {', '.join(missing)}; it is not an RVM artifact")
        src_type = self.inputs["src"].type
        if src_type not in ORT_DTYPES:
            raise RunnerError(f"{self.path}: src is {src_type}; expected float or float16")
        self.dtype = ORT_DTYPES[src_type]
        self.device = "cuda" if "CUDAExecutionProvider" in self.session.get_providers() else "cpu"

    @classmethod
    def on_device(cls, path: Path, device: Optional[str]) -> "OnnxRuntimeRunner":
        """None: CUDA when this onnxruntime has it, else the CPU; "cuda" insists on CUDA."""
        if device is None:
            return cls(path)
        if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RunnerError(
                "this onnxruntime has no CUDA provider; install onnxruntime-gpu or run on the CPU", "device"
            )
        return cls(path, ["CUDAExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"])

    @classmethod
    def read_metadata(cls, path: Path) -> Optional[ArtifactMetadata]:
        return session_metadata(open_session(Path(path), ["CPUExecutionProvider"]), Path(path))

    def facts(self) -> ArtifactFacts:
        stored = weight_dtypes(self.path)
        io = "float16" if self.dtype == np.float16 else "float32"
        facts = precision_of(stored, f"src is {io}; initializers")
        if io == "float16" and facts.precision == "fp32":  # fp16 I/O around fp32 weights is not an fp32 model
            facts = ArtifactFacts("fp16", facts.evidence)
        shape = self.inputs["src"].shape
        fixed = tuple(shape[2:]) if all(isinstance(d, int) for d in shape) else None
        return ArtifactFacts(
            facts.precision,
            facts.evidence,
            (int(fixed[1]), int(fixed[0])) if fixed else None,
            "downsample_ratio" in self.inputs,
        )

    def fixed_case(self) -> Optional[Tuple[int, int, float]]:
        """The (width, height, ratio) of a --static export, as its metadata records them and its src input
        has them: a size the input does not have is refused before frames of that size are made."""
        options = self.metadata.options if self.metadata and isinstance(self.metadata.options, dict) else {}
        static = options.get("static")
        if not static:
            return None
        try:
            width, height = (int(v) for v in static)
            ratio = float(options["downsample_ratio"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunnerError(f"{self.path}: its metadata's static size and ratio are not usable ({first_line(exc)})")
        shape = list(self.inputs["src"].shape)
        if shape[2:] != [height, width] or not 0 < ratio <= 1:
            raise RunnerError(
                f"{self.path}: its metadata records a static {width}x{height} at ratio {ratio:g}, "
                f"but its src input has the shape {shape}"
            )
        return width, height, ratio

    def initial_state(self, batch: int) -> List[ort.OrtValue]:
        """[1,1,1,1] zeros (dynamic artifacts), or zeros of the fixed state shapes (static ones)."""
        states = []
        for name in STATE_INPUTS:
            shape = [1, 1, 1, 1] if self.fixed_case() is None else list(self.inputs[name].shape)
            states.append(ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, self.dtype), self.device))
        return states

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        fixed = self.fixed_case()
        if fixed is not None and not np.isclose(fixed[2], downsample_ratio):
            raise RunnerError(f"{self.path} has the ratio {fixed[2]} baked in; it cannot run at {downsample_ratio}")
        io = self.session.io_binding()
        io.bind_cpu_input("src", np.ascontiguousarray(src, dtype=self.dtype))
        for name, value in zip(STATE_INPUTS, state, strict=True):
            io.bind_ortvalue_input(name, value)
        if "downsample_ratio" in self.inputs:
            io.bind_cpu_input("downsample_ratio", np.asarray([downsample_ratio], dtype=np.float32))
        for name in OUTPUT_NAMES:
            io.bind_output(name, self.device)
        self.session.run_with_iobinding(io)
        values = io.get_outputs()
        return to_numpy_outputs([v.numpy() for v in values]), list(values[2:])


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
