"""CoreML target: a fixed-resolution model (CoreML takes no runtime resize scale), as the RVM
documentation uses it: ``src`` an RGB image, ``fgr``/``pha`` images, recurrent states as optional
multi-arrays (zeros when absent, on the first frame).

Conversion goes through ``torch.export(...).run_decompositions({})``: coremltools' TorchScript
frontend was seen failing on size-derived ints with numpy 2.4. Two formats:

- ``mlprogram`` (``.mlpackage``, iOS 15 / macOS 12; int8 weights need iOS 16 / macOS 13), fp16
  compute for fp16/int8 except the guided-filter refiner, which is kept in fp32 for the reason
  ``model/guided_filter.py`` gives;
- ``neuralnetwork`` (``.mlmodel``, iOS 14 / macOS 11: bilinear ``align_corners=False`` needs it), the
  format the documentation names; its compute precision is chosen by the device at run time.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Tuple

import click
import numpy as np
import torch
from torch import Tensor, nn

from model import MattingNetwork
from rvm_export.contract import METADATA_KEY, OUTPUT_NAMES, STATE_INPUTS, ArtifactMetadata
from rvm_export.targets import COREML_SUFFIXES

from .base import ExportError, ModelSource, atomic_output
from .cli import export_with, output_option, source_options, user_errors
from .reproducible import stable_coreml

FORMATS = ("mlprogram", "neuralnetwork")
PRECISIONS = ("fp32", "fp16", "int8")
SUFFIXES = COREML_SUFFIXES
DEFAULT_FORMAT = "mlprogram"
REFINER_PREFIX = "refiner__"  # fx node names of the refiner get this prefix, so its ops stay fp32

DESCRIPTIONS = {
    "src": "RGB video frame (the model scales 0..255 to 0..1 inside)",
    "r1i": "recurrent state 1 (r1o of the previous frame); omit on the first frame (zeros)",
    "r2i": "recurrent state 2 (r2o of the previous frame); omit on the first frame (zeros)",
    "r3i": "recurrent state 3 (r3o of the previous frame); omit on the first frame (zeros)",
    "r4i": "recurrent state 4 (r4o of the previous frame); omit on the first frame (zeros)",
    "fgr": "foreground, RGB image",
    "pha": "alpha matte, grayscale image (255 = foreground)",
    "r1o": "recurrent state 1: pass as r1i with the next frame",
    "r2o": "recurrent state 2: pass as r2i with the next frame",
    "r3o": "recurrent state 3: pass as r3i with the next frame",
    "r4o": "recurrent state 4: pass as r4i with the next frame",
}


@dataclass(frozen=True)
class Case:
    """The baked-in frame size and downsample ratio."""

    width: int
    height: int
    ratio: float

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}_s{self.ratio:g}"


def check_case(width: int, height: int, ratio: float) -> Case:
    """Reject sizes CoreML cannot reproduce exactly.

    RVM resizes with ``scale_factor=ratio, recompute_scale_factor=False``: output size
    floor(size*ratio), sampling step 1/ratio. CoreML's ``upsample_bilinear`` recomputes the step
    from the sizes, which equals 1/ratio only when size*ratio is an integer."""
    if width < 1 or height < 1:
        raise ExportError(
            f"resolution {width}x{height} is not positive; pass WIDTH HEIGHT, e.g. 1920 1080", "resolution"
        )
    if not 0 < ratio <= 1:
        raise ExportError(f"downsample ratio {ratio:g} is outside (0, 1]; pass e.g. 0.25", "downsample_ratio")
    for name, size in (("width", width), ("height", height)):
        scaled = size * ratio
        if ratio != 1 and abs(scaled - round(scaled)) > 1e-9:
            raise ExportError(
                f"{name} {size} x ratio {ratio:g} = {scaled:g} is not an integer, and CoreML cannot reproduce "
                "PyTorch's resize then; choose a ratio that divides the size (e.g. 1920x1080 s0.25, 1280x720 s0.375)"
            )
    return Case(width, height, float(ratio))


class CoreMLWrapper(nn.Module):
    """MattingNetwork with the ratio baked in and images in 0..255, as CoreML image outputs expect."""

    def __init__(self, model: MattingNetwork, ratio: float) -> None:
        super().__init__()
        self.m = model
        self.ratio = ratio

    def forward(self, src: Tensor, r1i: Tensor, r2i: Tensor, r3i: Tensor, r4i: Tensor) -> Tuple[Tensor, ...]:
        fgr, pha, r1o, r2o, r3o, r4o = self.m(src, r1i, r2i, r3i, r4i, downsample_ratio=self.ratio)
        return fgr * 255.0, pha * 255.0, r1o, r2o, r3o, r4o


def state_shapes(model: MattingNetwork, case: Case) -> List[Tuple[int, ...]]:
    """Shapes of r1..r4 for one frame of ``case``."""
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, case.height, case.width), downsample_ratio=case.ratio)
    return [tuple(t.shape) for t in out[2:]]


def exported_program(model: MattingNetwork, case: Case) -> Tuple[Any, List[Tuple[int, ...]]]:
    """``torch.export`` of the wrapper, decomposed to ATen, cleaned for coremltools."""
    shapes = state_shapes(model, case)
    example = (torch.rand(1, 3, case.height, case.width), *[torch.zeros(s) for s in shapes])
    with torch.no_grad():
        program = torch.export.export(CoreMLWrapper(model, case.ratio).eval(), example).run_decompositions({})
    graph = program.graph
    for node in list(graph.nodes):
        # A no-op slice (the crop after 2x upsampling) becomes aten.alias, which coremltools 9.0 rejects.
        if node.op == "call_function" and node.target == torch.ops.aten.alias.default:
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
        elif node.op == "call_function" and any(
            path.startswith("m.refiner") for path, _ in node.meta.get("nn_module_stack", {}).values()
        ):
            node.name = REFINER_PREFIX + node.name  # coremltools names MIL ops after fx nodes
    program.graph_module.recompile()
    return program, shapes


def _convert(program: Any, shapes: List[Tuple[int, ...]], case: Case, fmt: str, precision: str) -> Any:
    import coremltools as ct

    inputs = [ct.ImageType(name="src", shape=(1, 3, case.height, case.width), scale=1 / 255.0)]
    inputs += [
        ct.TensorType(name=name, shape=shape, dtype=np.float32, default_value=np.zeros(shape, np.float32))
        for name, shape in zip(STATE_INPUTS, shapes, strict=True)
    ]
    outputs = [ct.TensorType(name=name, dtype=np.float32) for name in OUTPUT_NAMES]
    if fmt == "neuralnetwork":
        # Image outputs are set on the spec afterwards: the neuralnetwork backend of coremltools 9.0
        # validates output types against a reordered output list.
        return ct.convert(
            program,
            inputs=inputs,
            outputs=outputs,
            convert_to="neuralnetwork",
            minimum_deployment_target=ct.target.iOS14,
            skip_model_load=True,
        )
    outputs[0] = ct.ImageType(name="fgr", color_layout=ct.colorlayout.RGB)
    outputs[1] = ct.ImageType(name="pha", color_layout=ct.colorlayout.GRAYSCALE)
    if precision == "fp32":
        compute = ct.precision.FLOAT32
    else:
        compute = ct.transform.FP16ComputePrecision(op_selector=lambda op: not op.name.startswith(REFINER_PREFIX))
    model = ct.convert(
        program,
        inputs=inputs,
        outputs=outputs,
        convert_to="mlprogram",
        compute_precision=compute,
        minimum_deployment_target=ct.target.iOS16 if precision == "int8" else ct.target.iOS15,
        skip_model_load=True,
    )
    if precision == "int8":
        opt = ct.optimize.coreml
        config = opt.OptimizationConfig(
            global_config=opt.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")
        )
        model = opt.linear_quantize_weights(model, config)
    return model


def _image_outputs(model: Any, case: Case) -> Any:
    """Turn the fgr/pha multi-array outputs of a neuralnetwork model into RGB/grayscale images."""
    import coremltools as ct

    spec = model.get_spec()
    for output in spec.description.output:
        if output.name in ("fgr", "pha"):
            output.type.imageType.width = case.width
            output.type.imageType.height = case.height
            space = ct.proto.FeatureTypes_pb2.ImageFeatureType
            output.type.imageType.colorSpace = space.RGB if output.name == "fgr" else space.GRAYSCALE
    return ct.models.MLModel(spec, skip_model_load=True)


def _quantize_neuralnetwork(model: Any, precision: str) -> Any:
    if precision == "fp32":
        return model
    from coremltools.models.neural_network import quantization_utils

    return quantization_utils.quantize_weights(model, nbits=16 if precision == "fp16" else 8)


def _describe(model: Any, metadata: ArtifactMetadata, case: Case) -> None:
    model.short_description = (
        f"Robust Video Matting ({metadata.variant}, {metadata.refiner}), {case.width}x{case.height}, "
        f"downsample ratio {case.ratio:g}, {metadata.precision} weights"
    )
    model.author = "rvm-export (weights: Lin et al., Robust Video Matting)"
    model.license = "GPL-3.0"
    model.version = "1"
    for name, text in DESCRIPTIONS.items():
        if name in model.input_description:
            model.input_description[name] = text
        else:
            model.output_description[name] = text
    meta = model.user_defined_metadata
    meta[METADATA_KEY] = metadata.to_json()
    meta.update(
        {
            "variant": metadata.variant,
            "refiner": metadata.refiner,
            "precision": metadata.precision,
            "width": str(case.width),
            "height": str(case.height),
            "downsample_ratio": f"{case.ratio:g}",
            "checkpoint_sha256": metadata.checkpoint_sha256 or f"none (seeded random initialisation {metadata.seed})",
        }
    )
    meta.update({f"version.{k}": v for k, v in metadata.tools.items()})


def format_for(output: Optional[str | Path], fmt: Optional[str]) -> Tuple[str, Optional[Path]]:
    """The format and output path, each defaulting from the other.

    ``.mlmodel`` means neuralnetwork, ``.mlpackage`` mlprogram; a ``fmt`` contradicting the suffix is an
    error; a name without either suffix gets the format's suffix (mlprogram when neither says)."""
    if fmt is not None and fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if output is None:
        return fmt or DEFAULT_FORMAT, None
    output = Path(output)
    by_suffix = {suffix: name for name, suffix in SUFFIXES.items()}
    implied = by_suffix.get(output.suffix)
    if implied is None:
        if re.fullmatch(r"\.[A-Za-z]+", output.suffix):  # another kind of file (e.g. .onnx), not a version like _s0.25
            raise ExportError(
                f"{output.name}: a CoreML model is saved as *.mlpackage (mlprogram) or *.mlmodel (neuralnetwork)"
            )
        fmt = fmt or DEFAULT_FORMAT
        return fmt, output.with_name(output.name + SUFFIXES[fmt])
    if fmt is not None and fmt != implied:
        raise ExportError(
            f"format {fmt} contradicts {output.name} ({output.suffix} is the {implied} format); "
            f"drop the format or name the output *{SUFFIXES[fmt]}",
            "format",
        )
    return implied, output


def export_coreml(
    model: MattingNetwork,
    output: str | Path,
    metadata: ArtifactMetadata,
    case: Case,
    fmt: str = "mlprogram",
    precision: str = "fp16",
) -> Path:
    """Convert the fp32 ``model`` at ``case`` to CoreML and save it atomically."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    output = Path(output)
    if output.suffix != SUFFIXES[fmt]:
        raise ExportError(
            f"the {fmt} format is saved as *{SUFFIXES[fmt]}, not {output.name}; fix the output path", "output"
        )
    program, shapes = exported_program(model.float().eval(), case)
    converted = _convert(program, shapes, case, fmt, precision)
    if fmt == "neuralnetwork":
        converted = _quantize_neuralnetwork(_image_outputs(converted, case), precision)
    _describe(converted, metadata, case)
    with atomic_output(output, folder=fmt == "mlprogram") as tmp:
        converted.save(str(tmp))
        stable_coreml(tmp)  # coremltools' map order and random package item names
    return output


@click.command("coreml")
@source_options
@click.option(
    "--resolution", nargs=2, type=int, required=True, metavar="WIDTH HEIGHT", help="Frame size baked into the model."
)
@click.option("--downsample-ratio", type=float, required=True, help="Baked in too; size x ratio must be an integer.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp16", show_default=True, help="Weight precision.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="mlprogram (.mlpackage, iOS 15+) or neuralnetwork (.mlmodel, iOS 14+) [default: from the --output "
    "suffix, else mlprogram].",
)
@output_option
def command(
    source: ModelSource,
    resolution: tuple,
    downsample_ratio: float,
    precision: str,
    fmt: Optional[str],
    output: Optional[str],
) -> None:
    """Fixed-resolution CoreML model (image in, images and states out)."""
    with user_errors():
        case = check_case(resolution[0], resolution[1], downsample_ratio)
        fmt, path = format_for(output, fmt)
    size = {"width": case.width, "height": case.height, "downsample_ratio": case.ratio}
    export_with(
        source,
        "coreml",
        str(path) if path else None,
        lambda out, meta: export_coreml(source.model, out, meta, case, fmt, precision),
        precision,
        {**size, "precision": precision, "fmt": fmt},
        {"format": fmt, **size},
    )


__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "PRECISIONS",
    "SUFFIXES",
    "Case",
    "CoreMLWrapper",
    "check_case",
    "export_coreml",
    "format_for",
    "state_shapes",
]
