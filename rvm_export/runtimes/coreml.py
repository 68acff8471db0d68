"""The CoreML runner: contract, weight read-back and numerics of a ``.mlpackage`` / ``.mlmodel``.

What runs where (see docs/coreml.md):

- macOS: the real ``MLModel.predict`` (``src`` as a PIL image, states as arrays). The fgr/pha
  outputs are read as float multi-arrays of the same program, not 8-bit images, so the
  comparison is not swamped by the image quantization the user's PIL output adds (<= 1/255).
- Linux, ML Program: the saved program itself, executed op by op by ``mil_interpreter``.
- Linux, neuralnetwork: its layers are not executed; PyTorch runs with the model's convolution
  weights replaced by the ones read back from the spec (so quantization is measured, the layer
  semantics are not).

``src`` is fed as the 8-bit image a user passes: ``round(src * 255)`` (exact for the verification
sequences, which are made of 8-bit pixels). Outputs are divided by 255 back to 0..1.
Contract and weight problems are found once, before the first frame, and fail that frame.
"""

import platform
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from model import MattingNetwork
from rvm_export.contract import METADATA_KEY, OUTPUT_NAMES, STATE_INPUTS, STATE_OUTPUTS, ArtifactMetadata
from rvm_export.contract.errors import first_line

from .base import LARGE_TENSOR, ArtifactFacts, Outputs, Runner, RunnerError, load_error, precision_of
from .coreml_weights import (
    fused_reference,
    load_saved_weights,
    match_weights,
    mlprogram_convs,
    neuralnetwork_convs,
)
from .torch_runner import metadata_from

MAX_SIDE = 8192  # the largest frame side a metadata may record (the reference runs a frame of that size)


def load_spec(path: Path) -> Any:
    import coremltools as ct

    try:
        return ct.utils.load_spec(str(path))
    except Exception as exc:  # protobuf and file errors come in many types
        raise load_error(path, "a readable CoreML model", exc)


def _metadata(spec: Any, path: Path) -> Optional[ArtifactMetadata]:
    text = spec.description.metadata.userDefined.get(METADATA_KEY)
    return metadata_from(text, path) if text else None


def _feature(spec: Any, name: str, outputs: bool) -> Optional[Any]:
    features = spec.description.output if outputs else spec.description.input
    return next((f for f in features if f.name == name), None)


def check_contract(spec: Any, metadata: ArtifactMetadata, state_shapes: List[Tuple[int, ...]]) -> List[str]:
    """Names, feature types, colour spaces, shapes, optional flags, descriptions and metadata."""
    from coremltools.proto import FeatureTypes_pb2 as ft

    problems = []
    width, height = int(metadata.options["width"]), int(metadata.options["height"])
    inputs = [f.name for f in spec.description.input]
    outputs = [f.name for f in spec.description.output]
    if inputs != ["src", *STATE_INPUTS]:
        problems.append(f"inputs are {inputs}, expected {['src', *STATE_INPUTS]}")
    if outputs != list(OUTPUT_NAMES):
        problems.append(f"outputs are {outputs}, expected {list(OUTPUT_NAMES)}")
    images = {("src", False): ft.ImageFeatureType.RGB, ("fgr", True): ft.ImageFeatureType.RGB}
    images[("pha", True)] = ft.ImageFeatureType.GRAYSCALE
    for (name, is_output), space in images.items():
        f = _feature(spec, name, is_output)
        if f is None:
            continue
        if f.type.WhichOneof("Type") != "imageType":
            problems.append(f"{name} is a {f.type.WhichOneof('Type')}, expected an image")
            continue
        image = f.type.imageType
        if (image.width, image.height, image.colorSpace) != (width, height, space):
            got = f"{image.width}x{image.height} {_enum_name(ft.ImageFeatureType.ColorSpace, image.colorSpace)}"
            problems.append(
                f"{name} is a {got} image, expected {width}x{height} {ft.ImageFeatureType.ColorSpace.Name(space)}"
            )
    for names, is_output in ((STATE_INPUTS, False), (STATE_OUTPUTS, True)):
        for name, shape in zip(names, state_shapes, strict=True):
            f = _feature(spec, name, is_output)
            if f is None:
                continue
            if f.type.WhichOneof("Type") != "multiArrayType":
                problems.append(f"{name} is a {f.type.WhichOneof('Type')}, expected a multi-array")
                continue
            array = f.type.multiArrayType
            if array.dataType != ft.ArrayFeatureType.FLOAT32:
                dtype = _enum_name(ft.ArrayFeatureType.ArrayDataType, array.dataType)
                problems.append(f"{name} is {dtype}, expected FLOAT32")
            if list(array.shape) and tuple(array.shape) != shape:
                problems.append(f"{name} has shape {tuple(array.shape)}, expected {shape}")
            if not is_output and not f.type.isOptional:
                problems.append(f"{name} is not optional: the first frame could not omit it")
    src = _feature(spec, "src", False)
    if src is not None and src.type.isOptional:
        problems.append("src is optional")
    if metadata.inferred:  # another tool's model: descriptions and our metadata keys are not its promise
        return problems + (check_sampling(spec) if spec.WhichOneof("Type") == "neuralNetwork" else [])
    for f in [*spec.description.input, *spec.description.output]:
        if not f.shortDescription.strip():
            problems.append(f"{f.name} has no description")
    user = spec.description.metadata.userDefined
    wanted = {"variant": metadata.variant, "refiner": metadata.refiner, "precision": metadata.precision}
    wanted["downsample_ratio"] = f"{float(metadata.options['downsample_ratio']):g}"
    if metadata.checkpoint_sha256:
        wanted["checkpoint_sha256"] = metadata.checkpoint_sha256
    for key, value in wanted.items():
        if user.get(key) != value:
            problems.append(f"user metadata {key} is {user.get(key)!r}, expected {value!r}")
    if spec.WhichOneof("Type") == "neuralNetwork":
        problems += check_sampling(spec)
        scales = [p.scaler.channelScale for p in spec.neuralNetwork.preprocessing if p.featureName == "src"]
        if not scales or abs(scales[0] - 1 / 255) > 1e-9:
            problems.append(f"src is scaled by {scales[0] if scales else 1.0:g}, expected 1/255")
    return problems


def _enum_name(enum: Any, value: int) -> str:
    """The name of a protobuf enum value; a damaged spec can hold a number no enum value has."""
    try:
        return enum.Name(value)
    except ValueError:
        return f"<unknown value {value}>"


def check_sampling(spec: Any) -> List[str]:
    """Static check of a neuralnetwork's resizes (its layers are not executed off macOS): every
    bilinear upsample must sample like PyTorch's ``align_corners=False``."""
    from coremltools.proto import NeuralNetwork_pb2 as nn_pb

    problems = []
    for layer in spec.neuralNetwork.layers:
        kind = layer.WhichOneof("layer")
        if kind == "resizeBilinear":
            problems.append(f"{layer.name}: resizeBilinear layer, whose sampling RVM never needs")
        elif kind == "upsample" and layer.upsample.mode == nn_pb.UpsampleLayerParams.BILINEAR:
            mode = layer.upsample.linearUpsampleMode
            if mode != nn_pb.UpsampleLayerParams.ALIGN_CORNERS_FALSE:
                name = _enum_name(nn_pb.UpsampleLayerParams.LinearUpsampleMode, mode)
                problems.append(f"{layer.name}: bilinear upsample samples as {name}, PyTorch as ALIGN_CORNERS_FALSE")
    return problems


class CoreMLRunner(Runner):
    kind = "coreml"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.spec = load_spec(self.path)
        self.metadata = _metadata(self.spec, self.path)
        self.format = "mlprogram" if self.spec.WhichOneof("Type") == "mlProgram" else "neuralnetwork"
        if self.spec.WhichOneof("Type") not in ("mlProgram", "neuralNetwork"):
            raise RunnerError(f"{self.path} holds a {self.spec.WhichOneof('Type')}, not a neural network or ML Program")
        self.on_macos = platform.system() == "Darwin"
        self.problems: Optional[List[str]] = None
        self._backend: Any = None
        self._program: Any = None

    @classmethod
    def read_metadata(cls, path: Path) -> Optional[ArtifactMetadata]:
        return _metadata(load_spec(path), path)

    def program(self) -> Any:
        """The saved ML Program as read back by coremltools' milproto loader (once); a damaged one (a weight
        blob record out of bounds, a value of the wrong type) is refused."""
        if self._program is None:
            from .mil_interpreter import load_program

            try:
                self._program = load_program(str(self.path))
            except Exception as exc:  # the loader raises ValueError, KeyError, IndexError... on damaged bytes
                raise load_error(self.path, "a readable ML Program", exc)
        return self._program

    def saved_convs(self) -> List[Any]:
        """Every convolution weight the artifact stores, dequantized (see coreml_weights)."""
        try:
            return mlprogram_convs(self.program()) if self.format == "mlprogram" else neuralnetwork_convs(self.spec)
        except RunnerError:
            raise
        except Exception as exc:  # a weight whose stored size is not its declared shape's, a forged storage
            raise RunnerError(f"{self.path}: its convolution weights cannot be read back: {first_line(exc)}")

    def facts(self) -> ArtifactFacts:
        """Precision from how the convolution weights are stored; the frame size from the src image."""
        convs = self.saved_convs()
        names = {"fp32": "float32", "fp16": "float16", "int8": "int8"}
        facts = precision_of([names[c.storage] for c in convs if c.weight.size >= LARGE_TENSOR], "conv weights")
        src = _feature(self.spec, "src", False)
        size = None
        if src is not None and src.type.WhichOneof("Type") == "imageType":
            size = (int(src.type.imageType.width), int(src.type.imageType.height))
        return ArtifactFacts(facts.precision, facts.evidence, size, ratio_input=False)

    @property
    def backend(self) -> str:
        if self.on_macos:
            return "MLModel.predict (macOS)"
        if self.format == "mlprogram":
            return "the saved ML Program, run by the MIL interpreter"
        return "PyTorch with the weights read back from the spec (layers not executed)"

    def fixed_case(self) -> Tuple[int, int, float]:
        """(width, height, ratio) the metadata records, checked before anything is allocated at that size: a
        forged 100000x100000 would otherwise have the reference run on a frame of tens of gigabytes."""
        o = self.metadata.options if isinstance(self.metadata.options, dict) else {}
        try:
            width, height, ratio = o["width"], o["height"], float(o["downsample_ratio"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunnerError(f"{self.path}: its metadata records no usable frame size and ratio ({first_line(exc)})")
        sizes = (width, height)
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SIDE for v in sizes):
            raise RunnerError(
                f"{self.path}: its metadata's frame size {str(width)[:20]}x{str(height)[:20]} is not valid"
            )
        if not 0 < ratio <= 1:
            raise RunnerError(f"{self.path}: its metadata's downsample_ratio {ratio:g} is not in (0, 1]")
        src = _feature(self.spec, "src", False)
        if src is not None and src.type.WhichOneof("Type") == "imageType":
            image = (int(src.type.imageType.width), int(src.type.imageType.height))
            if image != sizes:
                raise RunnerError(
                    f"{self.path}: its metadata records {width}x{height} but its src input is a "
                    f"{image[0]}x{image[1]} image"
                )
        return width, height, ratio

    def bind_reference(self, reference: MattingNetwork) -> None:
        """Run the contract and weight checks against the fp32 reference; prepare the backend."""
        width, height, ratio = self.fixed_case()
        with torch.inference_mode():
            out = reference.float()(torch.zeros(1, 3, height, width), downsample_ratio=ratio)
        problems = check_contract(self.spec, self.metadata, [tuple(t.shape) for t in out[2:]])
        fused = fused_reference(reference)
        saved = self.saved_convs()
        self.weight_matches, weight_problems = match_weights(saved, fused, self.metadata.refiner)
        self.problems = problems + weight_problems
        if self.on_macos:
            self._backend = _macos_model(self.path, self.spec)
        elif self.format == "mlprogram":
            from .mil_interpreter import MilInterpreter, UnsupportedOpError

            try:
                self._backend = MilInterpreter(self.program())
            except UnsupportedOpError as exc:  # an op (or a damaged op name) the interpreter does not run
                raise RunnerError(f"{self.path} cannot be run off macOS: {first_line(exc)}")
        else:
            self._backend = load_saved_weights(fused, self.weight_matches, saved)

    def initial_state(self, batch: int) -> Any:
        if batch != 1:
            raise RunnerError("CoreML models take batch 1")
        return None

    def contract_problems(self) -> List[str]:
        return list(self.problems or [])

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        if self._backend is None:
            raise RunnerError(f"{self.path} runs off macOS only against the PyTorch reference: bind_reference first")
        if abs(downsample_ratio - self.fixed_case()[2]) > 1e-9:
            raise RunnerError(f"this model has ratio {self.fixed_case()[2]:g} baked in, not {downsample_ratio:g}")
        pixels = np.round(np.clip(src, 0, 1) * 255.0).astype(np.uint8)
        feeds: Dict[str, Any] = dict(state or {})
        if self.on_macos:
            from PIL import Image

            feeds["src"] = Image.fromarray(pixels[0].transpose(1, 2, 0), "RGB")
            raw = self._backend.predict(feeds)
        elif isinstance(self._backend, MattingNetwork):
            rec = [torch.from_numpy(feeds[n]) for n in STATE_INPUTS] if feeds else [None] * 4
            with torch.inference_mode():
                res = self._backend(
                    torch.from_numpy(pixels.astype(np.float32) / 255.0), *rec, downsample_ratio=downsample_ratio
                )
            raw = {
                n: t.numpy() * (255.0 if n in ("fgr", "pha") else 1.0) for n, t in zip(OUTPUT_NAMES, res, strict=True)
            }
        else:
            inputs = self._backend.function.inputs
            for name in STATE_INPUTS:  # the declared default of an omitted optional input: zeros
                feeds.setdefault(name, np.zeros(inputs[name].shape, np.float32))
            feeds["src"] = pixels.astype(np.float32)
            raw = self._backend.run(feeds)
        outputs = {n: np.asarray(raw[n], np.float32).reshape(np.shape(raw[n])) for n in OUTPUT_NAMES}
        outputs["fgr"] = outputs["fgr"] / 255.0
        outputs["pha"] = outputs["pha"] / 255.0
        new_state = {i: outputs[o] for i, o in zip(STATE_INPUTS, STATE_OUTPUTS, strict=True)}
        return outputs, new_state


def _macos_model(path: Path, spec: Any) -> Any:
    """The model with fgr/pha read as float multi-arrays (same program, different output type)."""
    import coremltools as ct
    from coremltools.proto import FeatureTypes_pb2 as ft

    for output in spec.description.output:
        if output.name in ("fgr", "pha") and output.type.WhichOneof("Type") == "imageType":
            image = output.type.imageType
            channels = 3 if output.name == "fgr" else 1
            shape = [1, channels, image.height, image.width]
            output.type.multiArrayType.dataType = ft.ArrayFeatureType.FLOAT32
            output.type.multiArrayType.shape[:] = shape
    if spec.WhichOneof("Type") == "mlProgram":
        return ct.models.MLModel(spec, weights_dir=str(path / "Data" / "com.apple.CoreML" / "weights"))
    return ct.models.MLModel(spec)


__all__ = ["CoreMLRunner", "check_contract", "check_sampling"]
