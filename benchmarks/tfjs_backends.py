"""Error and speed of the TF.js graph model per backend: Node (wasm) and headless Chromium (WebGL with
float32 and float16 textures, WebAssembly), for the naive-variance refiner (E[x²] - E[x]², as
before) and the centred one (export/tensorflow/guided_filter.py), with the real weights.

Usage: .venv/bin/python benchmarks/tfjs_backends.py [--frames 3] [--speed-frames 5] [--backends node,webgl,...]
Error: closed loop against PyTorch fp32 at 320x192, ratios 1.0 and 0.5 (worst alpha pixel, alpha MAD x1e3).
Speed: 512x288 ratio 0.5, batch 1, states fed back, after 2 warm-up frames; "fps" is wall time per
rvm-verify call (frame transfer included), "page fps" the in-browser time of executeAsync + readback.
Headless Chromium here renders WebGL in software (SwiftShader), so WebGL speed is not a GPU's.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from rvm_export.export.base import load_source
from rvm_export.export.tf_port import from_torch
from rvm_export.export.tfjs import export_tfjs
from rvm_export.runtimes import open_runner
from rvm_export.verify.harness import reference_model, verify_runner
from rvm_export.verify.sequence import Case

WEIGHTS = Path(__file__).resolve().parents[1].parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"


def export(tmp: Path, naive: bool, quantization: str = "none") -> Path:
    source = load_source(WEIGHTS)
    net = from_torch(source.model)
    net.refiner.naive_moments = naive
    precision = "fp32" if quantization == "none" else quantization
    metadata = source.metadata("tfjs", precision, quantization=quantization)
    metadata.layout = "NHWC"
    name = f"{'naive' if naive else 'centred'}_{precision}_tfjs"
    return export_tfjs(net, tmp / name, metadata, quantization)


def speed(runner, frames: int) -> "tuple[float, float | None]":
    src = np.random.default_rng(0).random((1, 3, 288, 512), dtype=np.float32)
    state = runner.initial_state(1)
    for _ in range(2):
        _, state = runner.infer(src, state, 0.5)
    page_ms = getattr(runner, "frame_ms", None)
    mark = len(page_ms) if page_ms is not None else 0
    start = time.perf_counter()
    for _ in range(frames):
        _, state = runner.infer(src, state, 0.5)
    wall = frames / (time.perf_counter() - start)
    page = 1000 / float(np.mean(page_ms[mark:])) if page_ms is not None else None
    return wall, page


def errors(runner, frames: int) -> dict:
    reference = reference_model(runner.metadata)
    out = {}
    for ratio in (1.0, 0.5):
        (result,) = verify_runner(runner, reference, [Case(320, 192, 1, ratio, frames)], "fp16")
        pha = [s.max_abs for s in result.stats if s.output == "pha"]
        bad = [f for f in result.failures if f.metric == "nonfinite"]
        out[ratio] = (
            "NaN/Inf" if bad else f"{max(pha):.1e}",
            "-" if bad else f"{max(a.mad_1e3 for a in result.alpha):.2f}",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--speed-frames", type=int, default=5)
    parser.add_argument("--backends", default="node,webgl,webgl-f16,wasm")
    parser.add_argument("--refiners", default="naive,centred")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for refiner in args.refiners.split(","):
            path = export(Path(tmp), naive=refiner == "naive")
            for backend in args.backends.split(","):
                runner = open_runner(path, tfjs_backend=backend)
                err = errors(runner, args.frames)
                wall, page = speed(runner, args.speed_frames)
                rows.append((refiner, backend, err[1.0], err[0.5], wall, page))
                print(f"... {refiner} {backend}: {err} {wall:.2f} fps ({runner.describe()})", flush=True)
                runner.close()
    print(f"\nfp32 TF.js, real weights; error: 320x192, {args.frames} frames; speed: 512x288 r0.5")
    print(
        f"{'refiner':<9}{'backend':<11}{'pha max r1':>11}{'MAD r1':>8}{'pha max r0.5':>14}{'MAD r0.5':>10}"
        f"{'fps':>7}{'page fps':>10}"
    )
    for refiner, backend, e1, e05, wall, page in rows:
        page_text = f"{page:.2f}" if page is not None else "-"
        print(f"{refiner:<9}{backend:<11}{e1[0]:>11}{e1[1]:>8}{e05[0]:>14}{e05[1]:>10}{wall:>7.2f}{page_text:>10}")


if __name__ == "__main__":
    main()
