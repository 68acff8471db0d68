"""The file or folder name of each artifact: ``make export-all`` names its jobs with these functions and
``rvm-export`` writes to ``artifacts/<name>`` when no ``--output`` is given, so both agree.

A new target adds its function to :data:`NAMES`. Options left at their defaults add nothing to the name.
"""

from typing import Callable, Dict, Optional, Sequence

DEFAULT_FOLDER = "artifacts"
COREML_SUFFIXES = {"mlprogram": ".mlpackage", "neuralnetwork": ".mlmodel"}
ONNX_DEFAULT_OPSET = 12  # export.onnx.DEFAULT_OPSET (kept here so naming needs no onnx package)


def torchscript_name(variant: str, precision: str = "fp32", freeze: bool = False) -> str:
    return f"rvm_{variant}_{precision}{'_frozen' if freeze else ''}.torchscript"


def onnx_name(
    variant: str,
    precision: str = "fp32",
    opset: int = ONNX_DEFAULT_OPSET,
    static: Optional[Sequence[int]] = None,
    downsample_ratio: Optional[float] = None,
) -> str:
    name = f"rvm_{variant}_{precision}"
    if static:
        name += f"_{static[0]}x{static[1]}"
    if downsample_ratio is not None:
        name += f"_s{downsample_ratio:g}"
    if opset != ONNX_DEFAULT_OPSET:
        name += f"_opset{opset}"
    return name + ".onnx"


def coreml_name(
    variant: str, width: int, height: int, downsample_ratio: float, precision: str = "fp16", fmt: str = "mlprogram"
) -> str:
    return f"rvm_{variant}_{width}x{height}_s{downsample_ratio:g}_{precision}{COREML_SUFFIXES[fmt]}"


def tensorflow_name(variant: str) -> str:
    return f"rvm_{variant}_tf"


def tfjs_name(variant: str, quantize: str = "none") -> str:
    return f"rvm_{variant}{'' if quantize == 'none' else '_' + quantize}_tfjs"


# rvm-export subcommand -> its naming function (called with the variant and the target's options)
def pt2_name(variant: str, precision: str = "fp32") -> str:
    return f"rvm_{variant}_{precision}.pt2"


def openvino_name(variant: str, precision: str = "fp32") -> str:
    return f"rvm_{variant}_{precision}_openvino.xml"


def tflite_name(variant: str, precision: str = "fp32") -> str:
    return f"rvm_{variant}_{precision}.tflite"


NAMES: Dict[str, Callable[..., str]] = {
    "torchscript": torchscript_name,
    "onnx": onnx_name,
    "coreml": coreml_name,
    "tensorflow": tensorflow_name,
    "tfjs": tfjs_name,
    "pt2": pt2_name,
    "openvino": openvino_name,
    "tflite": tflite_name,
}


def artifact_name(target: str, variant: str, **options: object) -> str:
    """The artifact name ``make export-all`` gives ``target`` with these options."""
    return NAMES[target](variant, **options)


__all__ = ["DEFAULT_FOLDER", "NAMES", "artifact_name"]
