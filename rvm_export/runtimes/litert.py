"""LiteRT runner: ``ai_edge_litert``'s interpreter and its ``serving_default`` signature runner.

The signature runner resizes its input tensors whenever a frame of another size (or the first
full-size state after the ``[1,1,1,1]`` zeros) arrives, so one interpreter runs every case. The
state is carried in NHWC numpy arrays; outputs are transposed to NCHW for comparison."""

from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from rvm_export.contract import METADATA_KEY, OUTPUT_NAMES, STATE_INPUTS, STATE_OUTPUTS, ArtifactMetadata

from .base import Outputs, Runner, RunnerError, load_error


def read_tflite_metadata(path: Path) -> ArtifactMetadata:
    if not Path(path).is_file():
        raise RunnerError(f"artifact not found: {path}")
    data = Path(path).read_bytes()
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() is not None and entry.Name().decode() == METADATA_KEY:
                return ArtifactMetadata.from_json(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    except Exception as exc:  # a foreign or truncated file: flatbuffers raises what it meets
        raise RunnerError(f"{path} is not a readable .tflite flatbuffer: {type(exc).__name__}: {exc}")
    raise RunnerError(f"{path} carries no {METADATA_KEY} metadata; it was not written by rvm-export")


MAX_TENSOR_BYTES = 1 << 30  # a tensor at the declared shape; RVM's largest is 0.9 MB, a 4K frame's ~0.5 GB
TENSOR_BYTES = {
    schema.TensorType.FLOAT32: 4,
    schema.TensorType.FLOAT16: 2,
    schema.TensorType.INT32: 4,
    schema.TensorType.UINT8: 1,
    schema.TensorType.INT64: 8,
    schema.TensorType.BOOL: 1,
    schema.TensorType.INT16: 2,
    schema.TensorType.INT8: 1,
    schema.TensorType.FLOAT64: 8,
}


def check_flatbuffer(path: Path) -> None:
    """Refuse what LiteRT itself does not check and dies on (SIGSEGV, ai-edge-litert 2.3; found by fuzzing):

    - a SPLIT or SPLIT_V whose ``num_splits`` is not its number of outputs, or whose options are missing
      (read as 0): the kernel writes ``num_splits`` outputs without checking;
    - a tensor that an operator writes, or the caller feeds (a subgraph input), but whose buffer holds
      constant data: LiteRT then points it at the model's read-only mapping and writes there;
    - a tensor whose declared shape needs more than :data:`MAX_TENSOR_BYTES`: LiteRT allocates every tensor
      at its declared shape before the signature runner resizes the inputs (a forged dimension of 2**20 made
      it allocate 4 GB for one tensor).

    Indices out of range are left to LiteRT, which refuses them with its own error."""
    data = Path(path).read_bytes()
    try:
        model = schema.Model.GetRootAs(data, 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            codes.append(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        splits = {
            schema.BuiltinOperator.SPLIT: (schema.BuiltinOptions.SplitOptions, schema.SplitOptions),
            schema.BuiltinOperator.SPLIT_V: (schema.BuiltinOptions.SplitVOptions, schema.SplitVOptions),
        }
        buffers = model.BuffersLength()

        def constant(buffer: int) -> bool:
            if not 0 <= buffer < buffers:
                return False
            held = model.Buffers(buffer)
            return held.DataLength() > 0 or held.Offset() > 1  # offset > 1: data beyond the flatbuffer

        def refuse_constant(graph: Any, g: int, index: int, role: str) -> None:
            if 0 <= index < graph.TensorsLength() and constant(graph.Tensors(index).Buffer()):
                name = (graph.Tensors(index).Name() or b"").decode("utf-8", "replace")[:60]
                raise RunnerError(
                    f"{path} is not loadable by LiteRT: tensor {index} ({name!r}) of subgraph {g} is {role} "
                    "but holds constant data (LiteRT would write into the model file's mapping)"
                )

        for g in range(model.SubgraphsLength()):
            graph = model.Subgraphs(g)
            for t in range(graph.TensorsLength()):
                tensor = graph.Tensors(t)
                count = 1
                for dim in tensor.ShapeAsNumpy().tolist() if tensor.ShapeLength() else []:
                    count *= max(int(dim), 0)  # a negative dimension is LiteRT's own (checked) error
                size = count * TENSOR_BYTES.get(tensor.Type(), 8)
                if size > MAX_TENSOR_BYTES:
                    name = (tensor.Name() or b"").decode("utf-8", "replace")[:60]
                    raise RunnerError(
                        f"{path} is not loadable by LiteRT: tensor {t} ({name!r}) of subgraph {g} declares "
                        f"{size / 2**30:.1f} GiB, beyond {MAX_TENSOR_BYTES >> 30} GiB"
                    )
            for i in range(graph.InputsLength()):
                refuse_constant(graph, g, int(graph.Inputs(i)), "a subgraph input")
            for n in range(graph.OperatorsLength()):
                op = graph.Operators(n)
                for i in range(op.OutputsLength()):
                    refuse_constant(graph, g, int(op.Outputs(i)), f"written by operator {n}")
                index = op.OpcodeIndex()
                if index >= len(codes) or codes[index] not in splits:
                    continue
                kind, options_class = splits[codes[index]]
                table = op.BuiltinOptions() if op.BuiltinOptionsType() == kind else None
                count = 0
                if table is not None:
                    options = options_class()
                    options.Init(table.Bytes, table.Pos)
                    count = options.NumSplits()
                if count < 1 or count != op.OutputsLength():
                    raise RunnerError(
                        f"{path} is not loadable by LiteRT: operator {n} of subgraph {g} splits into {count} "
                        f"tensors but has {op.OutputsLength()} outputs (LiteRT would crash running it)"
                    )
    except RunnerError:
        raise
    except Exception as exc:  # offsets out of the buffer: flatbuffers raises what it meets
        raise load_error(path, "a readable .tflite flatbuffer", exc)


class LiteRtRunner(Runner):
    kind = "tflite"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        check_flatbuffer(self.path)
        try:
            self.interpreter = Interpreter(model_path=str(self.path))
            self.run = self.interpreter.get_signature_runner("serving_default")
        except Exception as exc:  # the interpreter raises ValueError/RuntimeError for broken files
            raise load_error(self.path, "loadable by LiteRT", exc)

    @classmethod
    def read_metadata(cls, path: Path) -> ArtifactMetadata:
        return read_tflite_metadata(path)

    def initial_state(self, batch: int) -> List[np.ndarray]:
        return [np.zeros((1, 1, 1, 1), np.float32)] * 4

    def set_threads(self, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
        self.run = self.interpreter.get_signature_runner("serving_default")

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        feeds = dict(zip(STATE_INPUTS, state, strict=True))
        out = self.run(
            src=np.ascontiguousarray(src.transpose(0, 2, 3, 1), np.float32),
            downsample_ratio=np.float32(downsample_ratio),
            **feeds,
        )
        missing = [n for n in OUTPUT_NAMES if n not in out]
        if missing:
            raise RunnerError(f"the serving_default signature lacks outputs {missing}")
        nchw = {n: np.asarray(out[n], np.float32).transpose(0, 3, 1, 2) for n in OUTPUT_NAMES}
        return nchw, [np.array(out[n]) for n in STATE_OUTPUTS]
