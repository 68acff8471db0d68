"""ncnn target: ``rvm.ncnn.param`` + ``rvm.ncnn.bin``, converted by pnnx from a traced TorchScript module.

Route: the model with its ``downsample_ratio`` fixed is traced (``torch.jit.trace``) at two frame sizes' worth of
example inputs and handed to the ``pnnx`` binary of the pnnx wheel with both shapes (``inputshape`` and
``inputshape2``), so the ncnn graph keeps the frame size dynamic: its resizes are written as scales and size
expressions, not as the traced sizes. pnnx's own Python ``pnnx.export`` is not used: it imports the Python
model pnnx generates (executing it) just to return it.

What is fixed and what is dynamic:

- the ratio is fixed at export (``--downsample-ratio``; ncnn's graph has no scalar input a resize could take)
  and recorded in the metadata; one artifact per ratio;
- the frame size is dynamic; batch is 1 (ncnn's ``Mat`` is C x H x W);
- ncnn resizes bilinearly with the scale its sizes imply (``w / outw``, src/layer/interp.cpp), where PyTorch
  (``recompute_scale_factor=False``) samples with ``1 / ratio``: the two agree when width x ratio and height x
  ratio are whole numbers. At other sizes the verifier measures the difference (docs/ncnn.md).
- the recurrent states are inputs of their full shape (zeros on the first frame, not ``[1,1,1,1]``: the graph
  has no broadcast of a state).

Names: pnnx calls the blobs ``in0..`` and ``out0..``; they are renamed to the contract's (``src``, ``r1i..r4i``;
``fgr``, ``pha``, ``r1o..r4o``) in the ``.param``, which ncnn's extractor addresses by name.

Precision: the ``.bin`` stores fp32 weights by default. ``--precision fp16`` stores the network's convolution and
inner-product weights in fp16 and keeps the refiner's (the box filter's 1/3 taps) fp32: :func:`fp16_weights`
rewrites pnnx's fp32 ``.bin`` layer by layer, because pnnx's own ``fp16=1`` rounds every layer or none, and its
rounded box filter moves alpha by up to 0.25 (docs/ncnn.md). What a phone computes in is ncnn's run-time choice: on ARMv8.2 its defaults are fp16 storage and
arithmetic. Every layer of the refiner (and of the final composition) therefore carries ncnn's per-layer feature
mask ``31=7`` (fp16 and bf16 off), so the guided filter stays fp32 on the phone while the network runs in fp16:
PyTorch's fp16 recipe (``model.half_precision``), which the metadata's ``options.phone_precision`` ("fp16")
tells the verifier to judge it by.
"""

import copy
import os
import subprocess
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence, Set, Tuple

import click
import numpy as np
import torch
from torch import Tensor, nn

from model import MattingNetwork
from model.decoder import ConvGRU
from rvm_export.contract import INPUT_NAMES, OUTPUT_NAMES, ArtifactMetadata, ncnn_param
from rvm_export.contract.errors import first_line

from .base import ExportError, ModelSource, atomic_output
from .cli import export_with, output_option, source_options

SUFFIX = ".param"
DEFAULT_RATIO = 0.375  # 1280x720 -> 480x270 (RVM's recommendation for 720p, the usual phone camera stream)
PHONE_PRECISION = "fp16"  # ncnn's default on ARMv8.2 (fp16 storage + arithmetic)
TRACE_SIZES = ((256, 144), (320, 192))  # pnnx's two example shapes: what differs between them stays dynamic
PNNX_TIMEOUT = 600


class FullStateGRU(nn.Module):
    """A ConvGRU step on a full-shape state: the canonical ``ConvGRU.forward`` broadcasts a ``[1,1,1,1]`` state
    with ``expand`` over a shape computed from the input, which pnnx leaves as non-ncnn ops."""

    def __init__(self, gru: ConvGRU) -> None:
        super().__init__()
        self.gru = gru
        self.channels = gru.channels

    def forward(self, x: Tensor, h: Tensor) -> Tuple[Tensor, Tensor]:
        h = self.gru.step(x, h)
        return h, h

    def on_second_half(self, x: Tensor, h: Tensor) -> Tuple[Tensor, Tensor]:
        a, b = x.split(self.channels, dim=1)
        b, h = self.forward(b, h)
        return torch.cat([a, b], dim=1), h


class FixedRatio(nn.Module):
    """The network at one downsample ratio, with full-shape states: what pnnx traces (a copy of ``model``
    whose ConvGRUs take full-shape states; the same arithmetic)."""

    def __init__(self, model: MattingNetwork, ratio: float) -> None:
        super().__init__()
        self.model, self.ratio = copy.deepcopy(model), ratio
        for block in (self.model.decoder.decode4, self.model.decoder.decode3, self.model.decoder.decode2,
                      self.model.decoder.decode1):  # fmt: skip
            block.gru = FullStateGRU(block.gru)

    def forward(self, src: Tensor, r1: Tensor, r2: Tensor, r3: Tensor, r4: Tensor) -> Tuple[Tensor, ...]:
        return tuple(self.model(src, r1, r2, r3, r4, self.ratio))


def state_shapes(model: MattingNetwork, width: int, height: int, ratio: float) -> List[Tuple[int, int, int]]:
    """(channels, height, width) of r1..r4 for a frame of this size: what the first frame's zeros must be."""
    with torch.inference_mode():
        states = model.float()(torch.zeros(1, 3, height, width), downsample_ratio=ratio)[2:]
    return [tuple(int(d) for d in s.shape[1:]) for s in states]  # type: ignore[misc]


def example_inputs(model: MattingNetwork, width: int, height: int, ratio: float) -> List[Tensor]:
    src = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    return [src] + [torch.zeros(1, *shape) for shape in state_shapes(model, width, height, ratio)]


def shape_arg(inputs: Sequence[Tensor]) -> str:
    return ",".join("[" + ",".join(str(d) for d in t.shape) + "]f32" for t in inputs)


def pnnx_binary() -> str:
    import pnnx

    return pnnx.EXEC_PATH


def run_pnnx(traced: Path, first: Sequence[Tensor], second: Sequence[Tensor], work: Path) -> Tuple[Path, Path]:
    """pnnx on the traced module: (the .param, the .bin) it wrote into ``work``, weights stored in fp32."""
    param, weights = work / "rvm.ncnn.param", work / "rvm.ncnn.bin"
    outputs = {
        "pnnxparam": "rvm.pnnx.param",
        "pnnxbin": "rvm.pnnx.bin",
        "pnnxpy": "rvm_pnnx.py",
        "pnnxonnx": "rvm.pnnx.onnx",
        "ncnnparam": param.name,
        "ncnnbin": weights.name,
        "ncnnpy": "rvm_ncnn.py",
    }
    command = [pnnx_binary(), str(traced), f"inputshape={shape_arg(first)}", f"inputshape2={shape_arg(second)}"]
    command += ["device=cpu", "fp16=0"] + [f"{k}={work / v}" for k, v in outputs.items()]
    try:
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=PNNX_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExportError(f"pnnx could not convert the traced model: {first_line(exc)}")
    if done.returncode != 0 or not param.is_file() or not weights.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise ExportError(f"pnnx could not convert the traced model: {tail[0][:300]}")
    return param, weights


def contract_param(text: str, metadata: ArtifactMetadata) -> str:
    """pnnx's .param with the contract's blob names, the refiner kept fp32 on fp16 devices, and the metadata."""
    param = ncnn_param.parse(text)
    renames = {f"in{i}": name for i, name in enumerate(INPUT_NAMES[:5])}
    renames |= {f"out{i}": name for i, name in enumerate(OUTPUT_NAMES)}
    declared = {b for layer in param.layers for b in layer.bottoms + layer.tops}
    missing = sorted(set(renames) - declared)
    if missing:
        raise ExportError(f"pnnx's ncnn graph lacks the blobs {', '.join(missing)}; it is not RVM's contract")
    for layer in param.layers:
        layer.bottoms = [renames.get(b, b) for b in layer.bottoms]
        layer.tops = [renames.get(b, b) for b in layer.tops]
        if layer.type == "Input" and layer.name in renames:
            layer.name = renames[layer.name]
    head = ncnn_param.projection_split(param)
    if head is None:
        raise ExportError("pnnx's ncnn graph has no 3+1 channel Slice (project_mat's split); cannot find the refiner")
    for layer in ncnn_param.refiner_layers(param, head):
        layer.params[ncnn_param.FEATMASK_KEY] = str(layer.featmask | ncnn_param.FP32_FEATMASK)
    param.set_metadata(metadata.to_json())
    return param.text()


# ncnn's weight blobs (src/modelbin.cpp, ModelBinFromDataReader::load): a layer's "flagged" arrays (convolution and
# inner-product weights) start with a 4-byte tag, 0 for raw float32 or 0x01306B47 for float16 (padded to 4 bytes);
# biases, MemoryData and the rest are raw float32 without a tag. Written here because no library rewrites part of
# an ncnn .bin (pnnx converts all of it or none).
FP16_TAG = (0x01306B47).to_bytes(4, "little")
FLAGGED = {"Convolution": ("6", "5"), "ConvolutionDepthWise": ("6", "5"), "InnerProduct": ("2", "1")}


def fp16_weights(param: ncnn_param.Param, data: bytes, keep: Set[str]) -> bytes:
    """pnnx's fp32 ``.bin`` with every flagged weight array stored fp16 except those of the layers in ``keep``."""
    out, at = bytearray(), 0

    def take(count: int) -> bytes:
        nonlocal at
        if at + count > len(data):
            raise ExportError("pnnx's .bin is shorter than its .param declares; cannot store it in fp16")
        at += count
        return data[at - count : at]

    for layer in param.layers:
        size = layer.integer
        if layer.type in FLAGGED:
            weights, bias = FLAGGED[layer.type]
            if take(4) != bytes(4):
                raise ExportError(f"pnnx's .bin does not store {layer.name}'s weights as raw fp32")
            raw = take(4 * size(weights))
            if layer.name in keep:
                out += bytes(4) + raw
            else:
                half = np.frombuffer(raw, np.float32).astype(np.float16).tobytes()
                out += FP16_TAG + half + bytes(-len(half) % 4)
            if size(bias):
                out += take(4 * size("0"))
        elif layer.type == "MemoryData":
            out += take(4 * max(size("0"), 1) * max(size("1"), 1) * max(size("11"), 1) * max(size("2"), 1))
    if at != len(data):
        raise ExportError(f"pnnx's .bin holds {len(data) - at} bytes its .param does not account for")
    return bytes(out)


def export_ncnn(
    model: MattingNetwork, output: str | Path, metadata: ArtifactMetadata, ratio: float, precision: str = "fp32"
) -> Path:
    """Trace ``model`` at ``ratio``, convert it with pnnx, and write ``output`` (.param) with its .bin, atomically;
    ``precision`` fp16 stores the network's weights in fp16 (the refiner's stay fp32)."""
    output = Path(output)
    if output.suffix != SUFFIX:
        raise ExportError(f"the output {output} must end in {SUFFIX} (ncnn's weights go beside it as .bin)", "output")
    if not 0 < ratio <= 1:
        raise ExportError(f"downsample ratio {ratio:g} is not in (0, 1]", "downsample_ratio")
    model = model.float().eval()
    first, second = (example_inputs(model, w, h, ratio) for w, h in TRACE_SIZES)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        with torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(FixedRatio(model, ratio), tuple(first), check_trace=False)
        traced.save(str(work / "rvm.pt"))
        param, weights = run_pnnx(work / "rvm.pt", first, second, work)
        text = contract_param(param.read_text(), metadata)
        if precision == "fp16":
            edited = ncnn_param.parse(text)
            keep = {layer.name for layer in ncnn_param.refiner_layers(edited, ncnn_param.projection_split(edited))}
            weights.write_bytes(fp16_weights(edited, weights.read_bytes(), keep))
        with atomic_output(output) as tmp:
            tmp.write_text(text)
            os.replace(weights, output.with_suffix(".bin"))  # the .param, moved last, marks the artifact finished
    return output


@click.command("ncnn")
@source_options
@click.option(
    "--downsample-ratio",
    type=click.FloatRange(0, 1, min_open=True),
    default=DEFAULT_RATIO,
    show_default=True,
    help="Fixed in the graph (ncnn takes no ratio input); frame sizes stay dynamic.",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16"]),
    default="fp32",
    show_default=True,
    help="What the .bin stores; fp16 halves it (the refiner's weights stay fp32). A phone computes fp16 either way.",
)
@output_option
def command(source: ModelSource, downsample_ratio: float, precision: str, output: Optional[str]) -> None:
    """ncnn .param + .bin (via pnnx): dynamic frame size, fixed downsample_ratio, fp32 or fp16 weights."""
    shapes = state_shapes(source.model, 1280, 720, downsample_ratio)
    export_with(
        source,
        "ncnn",
        output,
        lambda out, meta: export_ncnn(source.model, out, meta, downsample_ratio, precision),
        precision,
        {"downsample_ratio": downsample_ratio, "precision": precision},
        {
            "downsample_ratio": downsample_ratio,
            "phone_precision": PHONE_PRECISION,
            "state_channels": [s[0] for s in shapes],
            "refiner_featmask": ncnn_param.FP32_FEATMASK,
        },
    )


__all__ = ["command", "export_ncnn", "fp16_weights"]
