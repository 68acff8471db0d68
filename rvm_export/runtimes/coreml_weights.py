"""Weight read-back for CoreML models: every convolution weight in the saved spec, dequantized,
matched against the PyTorch weight it came from.

coremltools folds each BatchNorm into the convolution before it and drops the names, so the
PyTorch side is a copy of the reference with conv+BN fused the same way, and each saved
convolution is matched by content to a convolution of that copy with the same shape. The
allowed error follows how the weight is stored: float32 (folding arithmetic only), float16
(one fp16 rounding), 8-bit (one quantization step of its output channel).
"""

import copy
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from model import MattingNetwork

Array = np.ndarray
# Convolutions the network computes with fixed kernels (the fast guided filter's box filter).
BOX_KERNEL = "<fast guided filter box kernel>"


@dataclass
class SavedConv:
    """One convolution as stored in the artifact, dequantized to float64."""

    name: str
    weight: Array
    bias: Optional[Array]
    storage: str  # fp32 | fp16 | int8
    bias_storage: str = "fp32"


@dataclass
class WeightMatch:
    saved: str
    module: Optional[str]  # the PyTorch module it matched, None when nothing did
    max_abs: float
    allowed: float


def fused_reference(model: MattingNetwork) -> MattingNetwork:
    """A float32 copy of ``model`` with every Conv2d+BatchNorm2d pair folded into the conv."""
    fused = copy.deepcopy(model).float().eval()
    for module in fused.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module)
        for i in range(len(children) - 1):
            conv, bn = children[i], children[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module[i] = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
                module[i + 1] = nn.Identity()
    return fused


def expected_convs(fused: MattingNetwork) -> Dict[str, Tuple[Array, Array]]:
    """module name -> (weight, bias) of every conv the exported graph uses (not the segmentation head)."""
    out = {}
    for name, module in fused.named_modules():
        if isinstance(module, nn.Conv2d) and not name.startswith("project_seg"):
            weight = module.weight.detach().double().numpy()
            bias = module.bias.detach().double().numpy() if module.bias is not None else np.zeros(weight.shape[0])
            out[name] = (weight, bias)
    return out


def _box_kernels(refiner: str) -> List[Array]:
    if refiner != "fast_guided_filter":
        return []
    size = 3  # radius 1
    return [np.full((4, 1, 1, size), 1.0 / size), np.full((4, 1, size, 1), 1.0 / size)]


def allowed_error(expected: Array, storage: str) -> Array:
    """Elementwise bound on |saved - expected| for a weight stored as ``storage``."""
    if storage == "fp32":
        return 1e-6 * np.abs(expected) + 1e-7
    if storage == "fp16":
        return 2.0**-10 * np.abs(expected) + 2.0**-24 + 1e-7 * np.abs(expected)
    # 8-bit: one step of a symmetric per-output-channel grid (an asymmetric grid has a finer step).
    per_channel = np.abs(expected).reshape(expected.shape[0], -1).max(axis=1) / 127.0
    return np.broadcast_to(per_channel.reshape((-1,) + (1,) * (expected.ndim - 1)), expected.shape) + 1e-6


def match_weights(saved: List[SavedConv], fused: MattingNetwork, refiner: str) -> Tuple[List[WeightMatch], List[str]]:
    """Match each saved conv to a PyTorch conv; return the matches and the problems found."""
    expected = expected_convs(fused)
    boxes = _box_kernels(refiner)
    matches, problems, used = [], [], set()
    bounds: Dict[Tuple[str, str, str], Array] = {}

    def bound(name: str, part: str, value: Array, storage: str) -> Array:
        key = (name, part, storage)
        if key not in bounds or name == BOX_KERNEL:
            bounds[key] = allowed_error(value, storage)
        return bounds[key]

    for conv in saved:
        best: Tuple[float, float, Optional[str]] = (np.inf, 0.0, None)
        candidates = [(n, w, b) for n, (w, b) in expected.items() if w.shape == conv.weight.shape]
        candidates += [(BOX_KERNEL, k, np.zeros(k.shape[0])) for k in boxes if k.shape == conv.weight.shape]
        for name, weight, bias in candidates:
            saved_bias = conv.bias if conv.bias is not None else np.zeros(weight.shape[0])
            excess = max(
                float(np.max(np.abs(conv.weight - weight) / bound(name, "w", weight, conv.storage))),
                float(np.max(np.abs(saved_bias - bias) / bound(name, "b", bias[:, None], conv.bias_storage).ravel())),
            )
            if excess < best[0]:
                best = (excess, float(np.max(np.abs(conv.weight - weight))), name)
        excess, max_abs, name = best
        if name is None or excess > 1.0:
            near = (
                f"; nearest {name} is off by max |e| {max_abs:.3g} ({excess:.3g}x the {conv.storage} bound)"
                if name
                else ""
            )
            problems.append(f"weight of {conv.name} {tuple(conv.weight.shape)} matches no PyTorch weight{near}")
            matches.append(WeightMatch(conv.name, None, max_abs, np.nan))
            continue
        used.add(name)
        matches.append(WeightMatch(conv.name, name, max_abs, excess))
    missing = [n for n in expected if n not in used]
    if missing:
        problems.append(f"{len(missing)} PyTorch convolution(s) not found in the artifact: {', '.join(missing[:3])}")
    return matches, problems


def _from_weight_params(params: object, shape: Tuple[int, ...], axis_channels: int) -> Tuple[Array, str]:
    """Dequantize a neuralnetwork WeightParams (float, float16 or n-bit linear)."""
    if len(params.floatValue):  # type: ignore[attr-defined]
        return np.asarray(params.floatValue, np.float64).reshape(shape), "fp32"  # type: ignore[attr-defined]
    if len(params.float16Value):  # type: ignore[attr-defined]
        data = np.frombuffer(params.float16Value, np.float16)  # type: ignore[attr-defined]
        return data.astype(np.float64).reshape(shape), "fp16"
    quant = params.quantization  # type: ignore[attr-defined]
    if quant.numberOfBits != 8 or quant.WhichOneof("QuantizationType") != "linearQuantization":
        raise ValueError(
            f"unsupported weight storage ({quant.numberOfBits}-bit {quant.WhichOneof('QuantizationType')})"
        )
    q = np.frombuffer(params.rawValue, np.uint8).astype(np.float64).reshape(axis_channels, -1)  # type: ignore[attr-defined]
    scale = np.asarray(quant.linearQuantization.scale, np.float64).reshape(-1, 1)
    bias = np.asarray(quant.linearQuantization.bias, np.float64).reshape(-1, 1)
    return (q * scale + bias).reshape(shape), "int8"


def neuralnetwork_convs(spec: object) -> List[SavedConv]:
    """Every convolution layer of a neuralnetwork spec, dequantized."""
    convs = []
    for layer in spec.neuralNetwork.layers:  # type: ignore[attr-defined]
        if layer.WhichOneof("layer") != "convolution":
            continue
        c = layer.convolution
        shape = (c.outputChannels, c.kernelChannels, *c.kernelSize)
        weight, storage = _from_weight_params(c.weights, shape, c.outputChannels)
        bias, bias_storage = (
            _from_weight_params(c.bias, (c.outputChannels,), c.outputChannels) if c.hasBias else (None, "fp32")
        )
        convs.append(SavedConv(layer.name, weight, bias, storage, bias_storage))
    return convs


def mlprogram_convs(program: object) -> List[SavedConv]:
    """Every conv op of a pymil Program, its weight resolved through a dequantize op if any."""
    from coremltools.converters.mil.mil import types

    from .mil_interpreter import affine_dequantize

    def resolve(var: object) -> Tuple[Array, str]:
        op = var.op  # type: ignore[attr-defined]
        if op is not None and op.op_type == "constexpr_affine_dequantize":
            args = {k: np.asarray(v.val) for k, v in op.inputs.items()}
            return affine_dequantize(op, args).astype(np.float64), "int8"
        if var.val is None:  # type: ignore[attr-defined]
            raise ValueError(f"conv input {var.name} is not a constant")  # type: ignore[attr-defined]
        storage = "fp16" if var.dtype == types.fp16 else "fp32"  # type: ignore[attr-defined]
        return np.asarray(var.val, np.float64), storage  # type: ignore[attr-defined]

    convs = []
    for op in program.functions["main"].operations:  # type: ignore[attr-defined]
        if op.op_type != "conv":
            continue
        weight, storage = resolve(op.inputs["weight"])
        bias, bias_storage = resolve(op.inputs["bias"]) if "bias" in op.inputs else (None, "fp32")
        convs.append(SavedConv(op.name, weight, bias, storage, bias_storage))
    return convs


def load_saved_weights(fused: MattingNetwork, matches: List[WeightMatch], saved: List[SavedConv]) -> MattingNetwork:
    """``fused`` with each matched conv replaced by the artifact's dequantized weights."""
    modules = dict(fused.named_modules())
    with torch.no_grad():
        for match, conv in zip(matches, saved, strict=True):
            if match.module is None or match.module == BOX_KERNEL:
                continue
            module = modules[match.module]
            module.weight.copy_(torch.from_numpy(conv.weight))
            if conv.bias is not None:
                if module.bias is None:
                    module.bias = nn.Parameter(torch.zeros(module.out_channels))
                module.bias.copy_(torch.from_numpy(conv.bias))
    return fused
