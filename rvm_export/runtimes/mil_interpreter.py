"""A NumPy interpreter for exactly the MIL ops an RVM ML Program uses.

Own code because no library executes a CoreML model off macOS (coremltools has no interpreter).
It runs the *saved* program, read back with coremltools' milproto loader, op by op, with the
semantics the MIL op definitions document (sampling grid of ``upsample_bilinear``, ceil mode and
padding exclusion of ``avg_pool``, ...). Arithmetic is float32; an op whose output the program
declares fp16 has its result rounded to fp16, which emulates fp16 storage with fp32 accumulation
(what Apple GPUs do; the Neural Engine may differ slightly). Convolution arithmetic itself is
delegated to ``torch.nn.functional.conv2d``; its parameters (pads, strides, dilations, groups)
are interpreted here. An op type that is not implemented fails loudly before anything runs.
"""

import math
from typing import Any, Callable, Dict, List

import numpy as np
import torch
from torch.nn import functional as F

Array = np.ndarray


class UnsupportedOpError(NotImplementedError):
    """The program uses an op (or an op mode) this interpreter does not implement."""


def _dtype(var: Any) -> Any:
    from coremltools.converters.mil.mil import types

    return types.nptype_from_builtin(var.dtype)


def _f32(x: Any) -> Any:
    return x.astype(np.float32) if isinstance(x, np.ndarray) and x.dtype == np.float16 else x


def _pads(
    op_name: str, pad_type: str, pad: Any, in_hw: List[int], kernel: List[int], strides: List[int], dil: List[int]
):
    """[top, bottom, left, right] for a MIL conv/pool ``pad_type``."""
    if pad_type == "valid":
        return [0, 0, 0, 0]
    if pad_type == "custom":
        return [int(p) for p in pad]
    if pad_type in ("same", "same_lower"):
        out = []
        for size, k, s, d in zip(in_hw, kernel, strides, dil, strict=True):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, large = total // 2, total - total // 2
            out += [large, small] if pad_type == "same_lower" else [small, large]
        return out
    raise UnsupportedOpError(f"{op_name}: pad_type {pad_type!r} is not implemented")


def conv(op: Any, a: Dict[str, Any]) -> Array:
    x, w = a["x"], a["weight"]
    strides = [int(s) for s in a.get("strides", [1, 1])]
    dil = [int(d) for d in a.get("dilations", [1, 1])]
    if x.ndim != 4:
        raise UnsupportedOpError(f"{op.name}: only 2-D convolution is implemented (input rank {x.ndim})")
    top, bottom, left, right = _pads(
        op.name, str(a.get("pad_type", "valid")), a.get("pad"), list(x.shape[2:]), list(w.shape[2:]), strides, dil
    )
    xt = F.pad(torch.from_numpy(np.ascontiguousarray(x, np.float32)), [left, right, top, bottom])
    bias = a.get("bias")
    out = F.conv2d(
        xt,
        torch.from_numpy(np.ascontiguousarray(w, np.float32)),
        None if bias is None else torch.from_numpy(np.ascontiguousarray(bias, np.float32)),
        stride=strides,
        dilation=dil,
        groups=int(a.get("groups", 1)),
    )
    return out.numpy()


def avg_pool(op: Any, a: Dict[str, Any]) -> Array:
    x = a["x"]
    k, s = [int(v) for v in a["kernel_sizes"]], [int(v) for v in a["strides"]]
    top, bottom, left, right = _pads(op.name, str(a["pad_type"]), a.get("pad"), list(x.shape[2:]), k, s, [1, 1])
    ceil = bool(a.get("ceil_mode", False))
    sizes = []
    for size, lo, hi, kk, ss in ((x.shape[2], top, bottom, k[0], s[0]), (x.shape[3], left, right, k[1], s[1])):
        span = size + lo + hi - kk
        n = (math.ceil(span / ss) if ceil else span // ss) + 1
        if ceil and (n - 1) * ss >= size + lo:  # a window must start inside the input or its left padding
            n -= 1
        sizes.append(n)
    oh, ow = sizes
    # Zero-extend far enough for every window; a mask counts which elements are real input.
    ph, pw = (oh - 1) * s[0] + k[0], (ow - 1) * s[1] + k[1]
    padded = np.zeros(x.shape[:2] + (ph, pw), np.float32)
    inside = np.zeros((ph, pw), np.float32)
    h_end, w_end = min(top + x.shape[2], ph), min(left + x.shape[3], pw)
    padded[:, :, top:h_end, left:w_end] = x[:, :, : h_end - top, : w_end - left]
    inside[top:h_end, left:w_end] = 1.0
    explicit = np.zeros((ph, pw), np.float32)  # input plus explicit padding (not the ceil-mode overhang)
    explicit[: min(top + x.shape[2] + bottom, ph), : min(left + x.shape[3] + right, pw)] = 1.0
    total = np.zeros(x.shape[:2] + (oh, ow), np.float32)
    count = np.zeros((oh, ow), np.float32)
    count_all = np.zeros((oh, ow), np.float32)
    for i in range(k[0]):
        for j in range(k[1]):
            rows, cols = slice(i, i + (oh - 1) * s[0] + 1, s[0]), slice(j, j + (ow - 1) * s[1] + 1, s[1])
            total += padded[:, :, rows, cols]
            count += inside[rows, cols]
            count_all += explicit[rows, cols]
    divisor = count if bool(a.get("exclude_padding_from_average", False)) else count_all
    return total / np.maximum(divisor, 1.0)


def _bilinear_axis(x: Array, axis: int, out_size: int, align_corners: bool, half_pixel: bool) -> Array:
    """Linear interpolation along one axis with the MIL sampling grid."""
    size = x.shape[axis]
    i = np.arange(out_size, dtype=np.float64)
    if align_corners:
        grid = i * ((size - 1) / (out_size - 1) if out_size > 1 else 0.0)
    elif half_pixel:
        spacing = size / out_size
        grid = i * spacing + 0.5 * spacing - 0.5
    else:
        grid = i * (size / out_size)
    grid = np.clip(grid, 0, size - 1)
    lo = np.floor(grid).astype(np.int64)
    hi = np.minimum(lo + 1, size - 1)
    frac = (grid - lo).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = out_size
    frac = frac.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - frac) + np.take(x, hi, axis=axis) * frac


def upsample_bilinear(op: Any, a: Dict[str, Any]) -> Array:
    x = a["x"]
    align = bool(a.get("align_corners", True))  # the MIL default
    half_pixel = bool(a.get("half_pixel_centers", not align))
    out_h = int(math.floor(x.shape[-2] * float(a.get("scale_factor_height", 1.0))))
    out_w = int(math.floor(x.shape[-1] * float(a.get("scale_factor_width", 1.0))))
    y = _bilinear_axis(x, x.ndim - 2, out_h, align, half_pixel)
    return _bilinear_axis(y, x.ndim - 1, out_w, align, half_pixel)


def split(op: Any, a: Dict[str, Any]) -> List[Array]:
    x, axis = a["x"], int(a["axis"])
    sizes = a.get("split_sizes")
    if sizes is None:
        return list(np.split(x, int(a["num_splits"]), axis=axis))
    return list(np.split(x, np.cumsum([int(v) for v in sizes])[:-1], axis=axis))


def concat(op: Any, a: Dict[str, Any]) -> Array:
    if bool(a.get("interleave", False)):
        raise UnsupportedOpError(f"{op.name}: concat with interleave=True is not implemented")
    return np.concatenate(a["values"], axis=int(a["axis"]))


def slice_by_index(op: Any, a: Dict[str, Any]) -> Array:
    """``x[begin:end:stride, ...]`` per axis, with the MIL begin/end/squeeze masks (the crop after
    2x upsampling when a decoder size is odd)."""
    x = a["x"]
    rank = x.ndim
    begin, end = [int(v) for v in a["begin"]], [int(v) for v in a["end"]]
    stride = [int(v) for v in a.get("stride", [1] * rank)]
    begin_mask = [bool(v) for v in a.get("begin_mask", [False] * rank)]
    end_mask = [bool(v) for v in a.get("end_mask", [False] * rank)]
    squeeze = [bool(v) for v in a.get("squeeze_mask", [False] * rank)]
    index: List[Any] = []
    for i in range(rank):
        if squeeze[i]:
            index.append(begin[i])
        else:
            index.append(slice(None if begin_mask[i] else begin[i], None if end_mask[i] else end[i], stride[i]))
    return x[tuple(index)]


def affine_dequantize(op: Any, a: Dict[str, Any]) -> Array:
    q = a["quantized_data"].astype(np.float32)
    axis = int(a["axis"]) % q.ndim
    shape = [1] * q.ndim
    zero, scale = np.asarray(a["zero_point"], np.float32), np.asarray(a["scale"], np.float32)
    if zero.ndim == 1:
        shape[axis] = zero.size
        zero = zero.reshape(shape)
    if scale.ndim == 1:
        shape = [1] * q.ndim
        shape[axis] = scale.size
        scale = scale.reshape(shape)
    return (q - zero) * scale


def cast(op: Any, a: Dict[str, Any]) -> Array:
    return a["x"]  # the declared output dtype is applied by the interpreter


OPS: Dict[str, Callable[[Any, Dict[str, Any]], Any]] = {
    "conv": conv,
    "avg_pool": avg_pool,
    "upsample_bilinear": upsample_bilinear,
    "split": split,
    "concat": concat,
    "cast": cast,
    "slice_by_index": slice_by_index,
    "constexpr_affine_dequantize": affine_dequantize,
    "add": lambda op, a: a["x"] + a["y"],
    "sub": lambda op, a: a["x"] - a["y"],
    "mul": lambda op, a: a["x"] * a["y"],
    "real_div": lambda op, a: a["x"] / a["y"],
    "relu": lambda op, a: np.maximum(a["x"], 0),
    "sigmoid": lambda op, a: 1.0 / (1.0 + np.exp(-a["x"])),
    "tanh": lambda op, a: np.tanh(a["x"]),
    "sigmoid_hard": lambda op, a: np.clip(a["alpha"] * a["x"] + a["beta"], 0.0, 1.0),
    "thresholded_relu": lambda op, a: np.where(a["x"] >= a["alpha"], a["x"], 0.0),
    "clip": lambda op, a: np.minimum(np.maximum(a["x"], a["alpha"]), a["beta"]),
    "reduce_mean": lambda op, a: np.mean(
        a["x"], axis=tuple(int(v) for v in a["axes"]), keepdims=bool(a.get("keep_dims", False))
    ),
}


class MilInterpreter:
    """Runs the ``main`` function of a pymil Program loaded from a saved ML Program."""

    def __init__(self, program: Any) -> None:
        if "main" not in program.functions:
            raise UnsupportedOpError("the ML Program has no 'main' function")
        self.function = program.functions["main"]
        unknown = sorted({op.op_type for op in self.function.operations} - set(OPS) - {"const"})
        if unknown:
            raise UnsupportedOpError(
                f"the program uses MIL ops this interpreter does not implement: {', '.join(unknown)}"
            )
        self.input_names = list(self.function.inputs)
        self.output_names = [v.name for v in self.function.outputs]

    def _value(self, env: Dict[str, Any], var: Any) -> Any:
        if isinstance(var, (list, tuple)):
            return [self._value(env, v) for v in var]
        return _f32(env[var.name])

    def run(self, feeds: Dict[str, Array]) -> Dict[str, Array]:
        """Outputs by name (in the program's declared dtypes) for ``feeds`` (all inputs).

        Overflow and invalid arithmetic give Inf and NaN silently, as on the device: a damaged weight shows up
        as NaN or Inf in the outputs the verifier compares, not as NumPy's RuntimeWarnings on stderr."""
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise ValueError(f"missing program inputs: {', '.join(missing)}")
        with np.errstate(all="ignore"):
            return self._run(feeds)

    def _run(self, feeds: Dict[str, Array]) -> Dict[str, Array]:
        env: Dict[str, Any] = {n: np.asarray(feeds[n]).astype(_dtype(v)) for n, v in self.function.inputs.items()}
        for op in self.function.operations:
            if op.op_type == "const":
                val = op.outputs[0].val
                env[op.outputs[0].name] = np.asarray(val) if not isinstance(val, str) else val
                continue
            args = {k: self._value(env, v) for k, v in op.inputs.items()}
            result = OPS[op.op_type](op, args)
            results = result if isinstance(result, list) else [result]
            if len(results) != len(op.outputs):
                raise UnsupportedOpError(
                    f"{op.name}: {op.op_type} gave {len(results)} outputs, expected {len(op.outputs)}"
                )
            for var, value in zip(op.outputs, results, strict=True):
                value = np.asarray(value)
                if op.op_type == "cast" and isinstance(args["dtype"], str):
                    value = value.astype({"fp16": np.float16, "fp32": np.float32}.get(args["dtype"], _dtype(var)))
                env[var.name] = value.astype(_dtype(var))
        return {n: env[n] for n in self.output_names}


def load_program(package: str) -> Any:
    """The pymil Program of a saved ``.mlpackage``, read back from its protobuf and weight file."""
    from pathlib import Path

    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as milproto_load

    spec = ct.utils.load_spec(str(package))
    if spec.WhichOneof("Type") != "mlProgram":
        raise UnsupportedOpError(f"{package} is not an ML Program (it holds a {spec.WhichOneof('Type')})")
    weights = Path(package) / "Data" / "com.apple.CoreML" / "weights"
    return milproto_load(spec, spec.specificationVersion, str(weights))


__all__ = ["OPS", "MilInterpreter", "UnsupportedOpError", "load_program"]
