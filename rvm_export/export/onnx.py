"""ONNX target: fp32/fp16, dynamic shapes, a runtime FP32 ``downsample_ratio``, ONNX Runtime ready.

The artifact honours the contract of the RVM documentation: inputs ``src, r1i..r4i,
downsample_ratio`` (the ratio always FP32 ``[1]``, everything else in the model's precision),
outputs ``fgr, pha, r1o..r4o``, first-frame states ``[1,1,1,1]`` zeros. How it gets there:

* :class:`OnnxMattingNetwork` re-states ``MattingNetwork.forward`` for tracing (model/ knows
  nothing about ONNX). The downsample is :class:`ResizeByRatio`, whose ONNX form is
  ``Resize(scales=Concat(1,1,r,r))``: the runtime ratio itself drives sampling, exactly like
  PyTorch's ``recompute_scale_factor=False`` (computing ``floor(size*r)`` sizes instead differs).
* PyTorch skips the refiner at ratio 1. Tracing cannot branch on a tensor, so the trace holds a
  marker op (:class:`SkipRefinerAtOne`) which :mod:`export.onnx_graph` turns into an ONNX ``If``
  whose else-branch holds the refiner: at ratio 1 the refiner is not run at all.
* fp16 uses :func:`model.half_precision` (refiner in fp32 inside the fp16 graph), traced on the
  CPU; the graph's inputs and outputs really are fp16.
* The graph is simplified with onnxslim, checked (``full_check``, strict shape inference) and
  carries the artifact metadata in ``metadata_props``.

``static`` mode fixes the frame size, batch 1, the state shapes and the ratio (no
``downsample_ratio`` input, no ``If``) for runtimes that need fixed shapes (TensorRT, OpenVINO, NPUs).
"""

import tempfile
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import click
import onnx
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from model import MattingNetwork, param_dtype
from rvm_export.contract import INPUT_NAMES, METADATA_KEY, OUTPUT_NAMES, STATE_INPUTS, STATE_OUTPUTS, ArtifactMetadata
from rvm_export.contract.errors import first_line
from rvm_export.targets import ONNX_DEFAULT_OPSET as DEFAULT_OPSET

from .base import PRECISIONS, ExportError, ModelSource, at_precision, atomic_output
from .cli import export_with, output_option, source_options, user_errors
from .onnx_fast import FastDecoder, FastRefiner, coarse_output
from .onnx_graph import GATE_DOMAIN, GATE_OP, lower_refiner_gate, set_dim_names

SUFFIX = ".onnx"
MIN_OPSET = 11
# The TorchScript-based exporter stops at opset 20 (ONNX Runtime 1.18+ runs all of them).
MAX_OPSET = getattr(torch.onnx._constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 20)
ELEM_TYPES = {torch.float32: onnx.TensorProto.FLOAT, torch.float16: onnx.TensorProto.FLOAT16}


class ResizeByRatio(torch.autograd.Function):
    """Bilinear downsample by a runtime ratio; ONNX: ``Resize(x, scales=[1, 1, r, r])``.

    Same numbers as ``model.network.resize_by_ratio``: output size floor(size * r), sampling
    with r itself (half-pixel centres)."""

    @staticmethod
    def forward(ctx: object, x: Tensor, ratio: Tensor) -> Tensor:
        r = float(ratio.reshape(-1)[0])
        return F.interpolate(x, scale_factor=r, mode="bilinear", align_corners=False, recompute_scale_factor=False)

    @staticmethod
    def symbolic(g, x, ratio):  # g: the exporter's graph context
        ones = g.op("Constant", value_t=torch.ones(2, dtype=torch.float32))
        scales = g.op("Concat", ones, ratio, ratio, axis_i=0)
        roi = g.op("Constant", value_t=torch.zeros(0, dtype=torch.float32))  # required input at opset 11
        return g.op("Resize", x, roi, scales, mode_s="linear", coordinate_transformation_mode_s="half_pixel")


class SkipRefinerAtOne(torch.autograd.Function):
    """(fgr, pha) when ratio == 1, else the refined pair: PyTorch's ``if downsample_ratio != 1``.

    Exported as a marker op that :func:`export.onnx_graph.lower_refiner_gate` rewrites into an
    ONNX ``If`` with the refiner's nodes moved into its else-branch."""

    @staticmethod
    def forward(ctx: object, ratio: Tensor, fgr: Tensor, pha: Tensor, refined_fgr: Tensor, refined_pha: Tensor):
        return (fgr, pha) if float(ratio.reshape(-1)[0]) == 1.0 else (refined_fgr, refined_pha)

    @staticmethod
    def symbolic(g, ratio, fgr, pha, refined_fgr, refined_pha):
        is_one = g.op("Equal", ratio, g.op("Constant", value_t=torch.ones(1, dtype=torch.float32)))
        outputs = g.op(f"{GATE_DOMAIN}::{GATE_OP}", is_one, fgr, pha, refined_fgr, refined_pha, outputs=2)
        for out, like in zip(outputs, (refined_fgr, refined_pha), strict=True):
            out.setType(like.type())  # tells the exporter the marker's output types (else it warns)
        return outputs


class OnnxMattingNetwork(nn.Module):
    """``MattingNetwork.forward`` (matting pass, 4-D frames) in a traceable form, with the decoder and
    the refiner re-stated for speed (:mod:`export.onnx_fast`; same math, checked by the verifier).

    ``fixed_ratio`` bakes the ratio in (static mode): the Python ``if`` then decides at trace
    time, and ``forward`` takes no ratio argument."""

    def __init__(self, net: MattingNetwork, fixed_ratio: Optional[float] = None) -> None:
        super().__init__()
        self.net = net
        self.fixed_ratio = fixed_ratio
        self.decoder = FastDecoder(net)
        self.refiner = FastRefiner(net)

    def forward(self, src: Tensor, r1: Tensor, r2: Tensor, r3: Tensor, r4: Tensor, *ratio: Tensor) -> List[Tensor]:
        net = self.net
        fixed = self.fixed_ratio
        if fixed is None:
            src_sm = ResizeByRatio.apply(src, ratio[0])
        else:
            src_sm = src if fixed == 1 else ResizeByRatio.apply(src, torch.tensor([fixed]))
        f1, f2, f3, f4 = net.backbone(src_sm)
        f4 = net.aspp(f4)
        hid, r1, r2, r3, r4 = self.decoder(src_sm, f1, f2, f3, f4, r1, r2, r3, r4)
        mat = net.project_mat(hid)
        if fixed is None:
            fgr, pha = SkipRefinerAtOne.apply(ratio[0], *coarse_output(src, mat), *self.refiner(src, src_sm, mat, hid))
        elif fixed != 1:
            fgr, pha = self.refiner(src, src_sm, mat, hid)
        else:
            fgr, pha = coarse_output(src, mat)
        return [fgr, pha, r1, r2, r3, r4]


def dynamic_dim_names() -> Dict[str, List[str]]:
    """One meaningful name per dynamic dimension (an int means fixed).

    Frames share ``batch, height, width``; each state input has its own names because it is
    ``[1,1,1,1]`` on the first frame; each state output has its own spatial size."""
    names: Dict[str, List] = {
        "src": ["batch", 3, "height", "width"],
        "fgr": ["batch", 3, "height", "width"],
        "pha": ["batch", 1, "height", "width"],
    }
    for i, (state_in, state_out) in enumerate(zip(STATE_INPUTS, STATE_OUTPUTS, strict=True), start=1):
        names[state_in] = [f"{state_in}_{d}" for d in ("batch", "channels", "height", "width")]
        names[state_out] = ["batch", None, f"r{i}_height", f"r{i}_width"]
    return names


def check_opset(opset: int) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset {opset} is not supported; choose one from {MIN_OPSET} to {MAX_OPSET}")


def export_onnx(
    model: MattingNetwork,
    output: str | Path,
    metadata: ArtifactMetadata,
    opset: int = DEFAULT_OPSET,
    static: Optional[Tuple[int, int]] = None,
    downsample_ratio: Optional[float] = None,
) -> Path:
    """Export ``model`` (already at its target precision) to ``output`` atomically.

    ``static=(width, height)`` with ``downsample_ratio`` gives a fixed-shape artifact."""
    check_opset(opset)
    if (static is None) != (downsample_ratio is None):
        raise ExportError(
            "a static size and a downsample ratio go together (a dynamic artifact takes the ratio at run time)",
            "static",
        )
    if downsample_ratio is not None and not 0 < downsample_ratio <= 1:
        raise ExportError(f"downsample ratio {downsample_ratio} is out of range; choose 0 < R <= 1", "downsample_ratio")
    model = model.eval()
    dtype = param_dtype(model)
    with atomic_output(output, folder=False) as tmp:
        graph = _build_graph(model, dtype, opset, static, downsample_ratio)
        onnx.helper.set_model_props(graph, {METADATA_KEY: metadata.to_json()})
        onnx.checker.check_model(graph, full_check=True)
        onnx.save(graph, str(tmp))
    return Path(output)


def _build_graph(
    model: MattingNetwork,
    dtype: torch.dtype,
    opset: int,
    static: Optional[Tuple[int, int]],
    ratio: Optional[float],
) -> onnx.ModelProto:
    import onnxslim

    wrapper = OnnxMattingNetwork(model, ratio)
    if static is None:
        src = torch.rand(1, 3, 144, 256, dtype=dtype)
        states = [torch.zeros(1, 1, 1, 1, dtype=dtype)] * 4
        # Traced at ratio 1: both sides of the ratio-1 gate then run with agreeing shapes (the unrefined
        # output adds the low-resolution residual to src, which only fits at ratio 1).
        args = (src, *states, torch.tensor([1.0], dtype=torch.float32))
        input_names = list(INPUT_NAMES)
    else:
        width, height = static
        src = torch.rand(1, 3, height, width, dtype=dtype)
        states = _full_states(wrapper, src)
        args = (src, *states)
        input_names = [n for n in INPUT_NAMES if n != "downsample_ratio"]
    with tempfile.TemporaryDirectory() as work:
        raw = Path(work) / "traced.onnx"
        trace_to_onnx(wrapper, args, raw, opset, input_names, dynamic=static is None)
        graph = onnx.load(str(raw))
    if static is None:
        graph = lower_refiner_gate(graph, ELEM_TYPES[dtype])
    # ONNX's own (C++) shape inference with data propagation lets onnxslim fold the shape
    # arithmetic as well as its own symbolic inference does, ten times faster.
    graph = onnx.shape_inference.infer_shapes(graph, data_prop=True)
    graph = onnxslim.slim(graph, no_shape_infer=True)
    if static is None:
        set_dim_names(graph, dynamic_dim_names())
    return onnx.shape_inference.infer_shapes(graph, check_type=True, strict_mode=True)


def _full_states(wrapper: OnnxMattingNetwork, src: Tensor) -> List[Tensor]:
    """Zero states of the full shape for a static artifact (it cannot take [1,1,1,1])."""
    zeros = [torch.zeros(1, 1, 1, 1, dtype=src.dtype)] * 4
    try:
        with torch.inference_mode():
            out = wrapper(src, *zeros)
    except RuntimeError as exc:
        raise ExportError(f"the network cannot run at {src.shape[3]}x{src.shape[2]}: {first_line(exc)}")
    return [torch.zeros_like(r) for r in out[2:]]


def trace_to_onnx(
    module: nn.Module, args: tuple, path: Path, opset: int, input_names: List[str], dynamic: bool
) -> None:
    """The one place that picks the PyTorch exporter.

    The TorchScript-based exporter (``dynamo=False``) is used: it exports opsets 11..20 and
    honours the ``symbolic`` of our autograd Functions. The ``dynamo=True`` exporter emits
    opset 18 only and would need ``torch.cond`` plus an ONNX translation of the two Functions;
    when the legacy exporter goes away, this function is what changes."""
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {
            name: {i: d for i, d in enumerate(dims) if isinstance(d, str)} for name, dims in dynamic_dim_names().items()
        }
    with warnings.catch_warnings():
        # The legacy exporter warns that it is deprecated and that traced Python values are constants.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=input_names,
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=dynamic_axes,
            custom_opsets={GATE_DOMAIN: 1} if dynamic else None,
            do_constant_folding=True,
        )


def parse_static(value: Optional[str]) -> Optional[Tuple[int, int]]:
    """'WIDTHxHEIGHT' -> (width, height)."""
    if value is None:
        return None
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise ExportError(f"static size {value!r} is not WIDTHxHEIGHT; pass e.g. 1920x1080", option="static")
    if width < 16 or height < 16:
        raise ExportError(f"static size {value}: width and height must be at least 16 pixels", option="static")
    return width, height


@click.command("onnx")
@source_options
@click.option("--precision", default="fp32", show_default=True, help=f"One of {', '.join(PRECISIONS)}.")
@click.option(
    "--opset", type=int, default=DEFAULT_OPSET, show_default=True, help=f"ONNX opset, {MIN_OPSET} to {MAX_OPSET}."
)
@click.option(
    "--static", "static", default=None, metavar="WxH", help="Fixed frame size (batch 1); needs --downsample-ratio."
)
@click.option("--downsample-ratio", type=float, default=None, help="The ratio baked into a --static artifact.")
@output_option
def command(
    source: ModelSource,
    precision: str,
    opset: int,
    static: Optional[str],
    downsample_ratio: Optional[float],
    output: Optional[str],
) -> None:
    """ONNX model for ONNX Runtime (and TensorRT/OpenVINO with --static)."""
    with user_errors():
        check_opset(opset)
        size = parse_static(static)
        model = at_precision(source.model, precision)
    options = {"opset": opset, "static": list(size) if size else None, "downsample_ratio": downsample_ratio}
    export_with(
        source,
        "onnx",
        output,
        lambda out, meta: export_onnx(model, out, meta, opset, size, downsample_ratio),
        precision,
        {"precision": precision, **options},
        options,
    )
