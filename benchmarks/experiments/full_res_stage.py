"""The full-resolution stage of the fast guided filter alone, in ONNX Runtime: ways to upsample (A, b).

Exports ``fgr, pha = f(src, A, b)`` (the part of the refiner at the frame's own size: upsample the
low-resolution coefficients, apply them to the frame, clamp) in each form as a small ONNX graph, times it
in ONNX Runtime on ``--threads`` threads (median of ``--repeats``), and prints, side by side, ms per frame,
the multiple of the stage's memory-traffic limit (28 bytes a pixel at the measured copy bandwidth) and
the largest difference from PyTorch's canonical form. Forms:

* ``before``: the release ONNX before this experiment: bilinear ``Resize``, the channel sum as ``ReduceSum``,
  and a full-size ``Cast`` for every ``.to`` (also the no-op ones).
* ``resize``: what the release ONNX does now (onnx_fast.refine_full_resolution): the same ``Resize``, the
  channel sum as a 1x1 convolution, no no-op casts.
* ``phases``: the integer-factor form: replicate pad, one depthwise 3x3 convolution with a kernel per output
  phase, DepthToSpace. Bilinear upsampling by an integer factor k with half-pixel centres is a fixed 3-tap
  filter per phase, so it is the same sum of the same products (up to the order of two additions).
* ``transposed``: the same as one depthwise ConvTranspose (stride k, kernel 2k) of the replicate-padded
  coefficients, cropped. Even factors only here.

Both integer forms are exact (float64 difference from ``F.interpolate`` below 1e-15) but slower in ONNX
Runtime 1.32 than its Resize (its DepthToSpace and ConvTranspose cost more than the upsampling), so the
release keeps ``Resize``; the table is the evidence.

    python benchmarks/experiments/full_res_stage.py --size 1920x1080 --size 1280x720 --low 480x270
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import click
import numpy as np
import onnxruntime as ort
import torch
from torch import Tensor, nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from model.guided_filter import resize_to  # noqa: E402
from rvm_export.export import onnx_fast  # noqa: E402
from rvm_export.verify.limits import FULL_RES_BYTES_PER_PIXEL, copy_bandwidth  # noqa: E402


def phase_kernels(factor: int, channels: int, dtype: torch.dtype) -> Tensor:
    """Depthwise 3x3 kernels, ``factor**2`` per channel, that give bilinear upsampling by an integer ``factor``
    (half-pixel centres, edge-clamped) of a replicate-padded input, one output phase each.

    Output pixel ``k*i + p`` samples the input at ``i + (p + 0.5)/k - 0.5``: between pixels ``i-1`` and ``i``
    when that offset is negative, else between ``i`` and ``i+1``: three taps with fixed weights per phase.
    Edge clamping (PyTorch's and ONNX's) is what the replicate padding gives."""
    taps = torch.zeros(factor, 3, dtype=torch.float64)
    for phase in range(factor):
        offset = (phase + 0.5) / factor - 0.5
        if offset < 0:
            taps[phase, 0], taps[phase, 1] = -offset, 1 + offset
        else:
            taps[phase, 1], taps[phase, 2] = 1 - offset, offset
    kernels = torch.einsum("yi,xj->yxij", taps, taps).reshape(factor * factor, 1, 3, 3)
    return kernels.repeat(channels, 1, 1, 1).to(dtype)


def upsample_phases(x: Tensor, factor: int) -> Tensor:
    """``resize_to`` for an output exactly ``factor`` times the input: a replicate pad, one depthwise
    convolution (multi-threaded in ONNX Runtime, where its bilinear Resize is not) and a DepthToSpace."""
    channels = int(x.shape[1])
    padded = F.pad(x, [1, 1, 1, 1], mode="replicate")
    phases = F.conv2d(padded, phase_kernels(factor, channels, x.dtype), groups=channels)
    return F.pixel_shuffle(phases, factor)


def transposed_kernel(factor: int, channels: int, dtype: torch.dtype) -> Tensor:
    """Depthwise ``2k x 2k`` kernels of the transposed convolution (stride k) that is bilinear upsampling by
    an integer ``factor`` k with half-pixel centres: input pixel i reaches output o with the weight
    ``max(0, 1 - |(o + 0.5)/k - 0.5 - i|)``, a function of ``d = o - k*i`` in ``-k/2 - 0.5 < d < 3k/2 - 0.5``."""
    first = -((factor + 1) // 2)  # the smallest d with a non-zero weight
    size = 2 * factor
    d = torch.arange(first, first + size, dtype=torch.float64)
    taps = (1 - ((d + 0.5) / factor - 0.5).abs()).clamp(min=0)
    kernel = torch.outer(taps, taps).reshape(1, 1, size, size)
    return kernel.repeat(channels, 1, 1, 1).to(dtype), -first


def upsample_transposed(x: Tensor, factor: int) -> Tensor:
    """``resize_to`` for an output exactly ``factor`` times the input, as one depthwise ConvTranspose (stride
    k) of the replicate-padded input, cropped: edge clamping is what the replicate padding gives."""
    channels = int(x.shape[1])
    kernel, pad = transposed_kernel(factor, channels, x.dtype)
    padded = F.pad(x, [1, 1, 1, 1], mode="replicate")
    return F.conv_transpose2d(padded, kernel, stride=factor, padding=pad + factor, groups=channels)


def integer_form(form: Callable[[Tensor, int], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """``resize_to(x, like)`` through ``form`` where ``like`` is an even integer multiple of ``x`` (at export)."""

    def up(x: Tensor, like: Tensor) -> Tensor:
        factor = int(like.shape[2]) // int(x.shape[2])
        exact = int(like.shape[2]) == factor * int(x.shape[2]) and int(like.shape[3]) == factor * int(x.shape[3])
        return form(x, factor) if exact and factor % 2 == 0 else resize_to(x, like)

    return up


def before(src: Tensor, a: Tensor, b: Tensor) -> tuple:
    fine = src.to(a.dtype)
    a_rgb, a_grey = a.split([3, 1], dim=1)
    b_rgb, b_grey = b.split([3, 1], dim=1)
    fgr = resize_to(a_rgb + 1, fine) * fine + resize_to(b_rgb, fine)
    pha = resize_to(a_grey / 3, fine) * fine.sum(1, keepdim=True) + resize_to(b_grey, fine)
    return fgr.clamp(0.0, 1.0).to(src.dtype), pha.clamp(0.0, 1.0).to(src.dtype)


FORMS: dict = {
    "before": None,
    "resize": None,
    "phases": integer_form(upsample_phases),
    "transposed": integer_form(upsample_transposed),
}


class Stage(nn.Module):
    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form

    def forward(self, src: Tensor, a: Tensor, b: Tensor) -> tuple:
        if self.form == "before":
            return before(src, a, b)
        upsample: Optional[Callable] = FORMS[self.form]
        return onnx_fast.refine_full_resolution(src, a, b, src.dtype, upsample)


def export(module: nn.Module, path: Path, example: tuple) -> None:
    torch.onnx.export(
        module, example, str(path), input_names=["src", "a", "b"], output_names=["fgr", "pha"], opset_version=12,
        dynamic_axes={"src": {2: "h", 3: "w"}, "a": {2: "lh", 3: "lw"}, "b": {2: "lh", 3: "lw"}}, dynamo=False,
    )  # fmt: skip


def time_session(session: ort.InferenceSession, feeds: dict, repeats: int) -> float:
    session.run(None, feeds)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


@click.command()
@click.option("--size", "sizes", multiple=True, default=["1920x1080", "1280x720"], show_default=True)
@click.option("--low", default="480x270", show_default=True, help="Size of the coefficients (the network's).")
@click.option("--threads", default=2, show_default=True)
@click.option("--repeats", default=15, show_default=True)
def main(sizes: tuple, low: str, threads: int, repeats: int) -> None:
    lw, lh = (int(v) for v in low.split("x"))
    bandwidth = copy_bandwidth()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    rng = np.random.default_rng(0)
    print(f"ONNX Runtime {ort.__version__}, {threads} threads, copy bandwidth {bandwidth:.1f} GB/s")
    print("| size | form | ms | x memory limit | max diff vs PyTorch |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            width, height = (int(v) for v in size.split("x"))
            src = rng.random((1, 3, height, width), dtype=np.float32)
            a = rng.normal(0, 1, (1, 4, lh, lw)).astype(np.float32)
            b = rng.normal(0, 0.5, (1, 4, lh, lw)).astype(np.float32)
            with torch.no_grad():
                ref = Stage("before")(torch.from_numpy(src), torch.from_numpy(a), torch.from_numpy(b))
            limit = width * height * FULL_RES_BYTES_PER_PIXEL / 1e9 / bandwidth * 1e3
            for name in FORMS:
                module = Stage(name)
                path = Path(folder) / f"{name}_{size}.onnx"
                export(module, path, tuple(torch.from_numpy(x) for x in (src, a, b)))
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                feeds = {"src": src, "a": a, "b": b}
                ms = time_session(session, feeds, repeats)
                out = session.run(None, feeds)
                diff = max(float(np.abs(o - r.numpy()).max()) for o, r in zip(out, ref, strict=True))
                print(f"| {size} | {name} | {ms:.2f} | {ms / limit:.1f} | {diff:.2g} |")


if __name__ == "__main__":
    main()
