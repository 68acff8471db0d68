"""Frames per second: PyTorch eager fp32 vs the ONNX Runtime fp32/fp16 artifacts, states carried.

    .venv/bin/python benchmarks/onnx_speed.py [--checkpoint PTH] [--frames 10] [--threads 0]

Exports the artifacts into a temporary folder (or takes --fp32/--fp16 paths), then runs each
backend over the same frames, batch 1, with the documentation's loops: PyTorch with
``inference_mode``; ONNX Runtime with io-binding (states stay OrtValues, only fgr/pha come back).
Backends are measured in interleaved rounds so a busy machine hurts them alike; the table shows
the median round. Prints a table; no assertions (speed is never a test).
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import onnxruntime as ort
import torch

from model import load_checkpoint
from rvm_export.contract import OUTPUT_NAMES, STATE_INPUTS
from rvm_export.export.base import at_precision, load_source
from rvm_export.export.onnx import export_onnx

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / ".." / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"
CASES = ((1920, 1080, 0.25), (512, 288, 1.0))

Loop = Callable[[List[np.ndarray]], None]


def torch_loop(checkpoint: Path, ratio: float) -> Loop:
    net = load_checkpoint(checkpoint).eval()

    def run(frames: List[np.ndarray]) -> None:
        rec = [None] * 4
        with torch.inference_mode():
            for src in frames:
                fgr, pha, *rec = net(torch.from_numpy(src), *rec, downsample_ratio=ratio)

    return run


def ort_loop(path: Path, ratio: float, threads: int, providers: List[str]) -> Loop:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), options, providers=providers)
    dtype = np.float16 if sess.get_inputs()[0].type == "tensor(float16)" else np.float32
    device = "cuda" if "CUDAExecutionProvider" in sess.get_providers() else "cpu"
    ratio_value = ort.OrtValue.ortvalue_from_numpy(np.asarray([ratio], np.float32), "cpu")

    def run(frames: List[np.ndarray]) -> None:
        io = sess.io_binding()
        rec = [ort.OrtValue.ortvalue_from_numpy(np.zeros([1, 1, 1, 1], dtype), device)] * 4
        for name in OUTPUT_NAMES:
            io.bind_output(name, device)
        for src in frames:
            io.bind_cpu_input("src", src.astype(dtype))
            for name, value in zip(STATE_INPUTS, rec, strict=True):
                io.bind_ortvalue_input(name, value)
            io.bind_ortvalue_input("downsample_ratio", ratio_value)
            sess.run_with_iobinding(io)
            fgr, pha, *rec = io.get_outputs()
            fgr.numpy(), pha.numpy()

    return run


def measure(loops: Dict[str, Loop], frames: List[np.ndarray], rounds: int) -> Dict[str, float]:
    """Median fps over interleaved rounds (one warm-up frame pair first)."""
    for loop in loops.values():
        loop(frames[:2])
    times: Dict[str, List[float]] = {name: [] for name in loops}
    for _ in range(rounds):
        for name, loop in loops.items():
            start = time.perf_counter()
            loop(frames)
            times[name].append(time.perf_counter() - start)
    return {name: len(frames) / statistics.median(t) for name, t in times.items()}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT.resolve())
    parser.add_argument("--fp32", type=Path, help="An existing fp32 artifact (default: export one).")
    parser.add_argument("--fp16", type=Path, help="An existing fp16 artifact (default: export one).")
    parser.add_argument("--frames", type=int, default=8, help="Frames per round.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0: ORT's default).")
    args = parser.parse_args(argv)
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]

    with tempfile.TemporaryDirectory() as work:
        artifacts = {"fp32": args.fp32, "fp16": args.fp16}
        for precision, path in artifacts.items():
            if path is None:
                source = load_source(args.checkpoint)
                path = Path(work) / f"rvm_mobilenetv3_{precision}.onnx"
                export_onnx(at_precision(source.model, precision), path, source.metadata("onnx", precision))
                artifacts[precision] = path
        print(f"device: {providers[0]}, torch threads {torch.get_num_threads()}, onnxruntime {ort.__version__}")
        print(f"{'size':<12}{'ratio':>6}  {'backend':<22}{'fps':>8}{'ms/frame':>10}")
        for width, height, ratio in CASES:
            rng = np.random.default_rng(0)
            frames = [rng.random((1, 3, height, width), dtype=np.float32) for _ in range(args.frames)]
            loops = {"pytorch eager fp32": torch_loop(args.checkpoint, ratio)}
            for precision, path in artifacts.items():
                loops[f"onnxruntime {precision}"] = ort_loop(path, ratio, args.threads, providers)
            for name, fps in measure(loops, frames, args.rounds).items():
                print(f"{width}x{height:<7}{ratio:>6g}  {name:<22}{fps:>8.2f}{1000 / fps:>10.1f}")


if __name__ == "__main__":
    main()
