"""Frames per second of the TensorFlow SavedModel and the TF.js graph model (Node.js, wasm) at 512x288.

Usage: .venv/bin/python benchmarks/tf_speed.py [--frames 20] [--ratio 1.0]
Exports both from the real MobileNetV3 weights into a temporary folder, warms up, then times a
closed loop (states fed back) and prints a table. Needs `npm ci` in verify/runners/node for TF.js.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from rvm_export.export.base import load_source
from rvm_export.export.tensorflow import export_saved_model  # noqa: E402
from rvm_export.export.tf_port import from_torch
from rvm_export.export.tfjs import export_tfjs
from rvm_export.runtimes.tensorflow import TensorFlowRunner
from rvm_export.runtimes.tfjs import TfjsRunner

WEIGHTS = Path(__file__).resolve().parents[1].parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"


def fps(runner, frames: int, ratio: float, warmup: int = 2) -> float:
    src = np.random.default_rng(0).random((1, 3, 288, 512), dtype=np.float32)
    state = runner.initial_state(1)
    for _ in range(warmup):
        _, state = runner.infer(src, state, ratio)
    start = time.perf_counter()
    for _ in range(frames):
        _, state = runner.infer(src, state, ratio)
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--ratio", type=float, default=1.0)
    args = parser.parse_args()
    source = load_source(WEIGHTS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        meta = source.metadata("tensorflow", "fp32")
        tf_path = export_saved_model(from_torch(source.model), Path(tmp) / "m_tf", meta)
        rows.append(("SavedModel fp32 (TF CPU)", fps(TensorFlowRunner(tf_path), args.frames, args.ratio)))
        for quant in ("none", "uint8"):
            meta = source.metadata("tfjs", "uint8" if quant == "uint8" else "fp32")
            path = export_tfjs(from_torch(source.model), Path(tmp) / f"m_{quant}_tfjs", meta, quant)
            runner = TfjsRunner(path)
            rows.append((f"TF.js {quant} (Node, {runner.backend})", fps(runner, args.frames, args.ratio)))
            runner.close()
    print(f"512x288, ratio {args.ratio}, batch 1, {args.frames} frames (after 2 warm-up)")
    print(f"{'artifact':<32}{'fps':>8}")
    for name, value in rows:
        print(f"{name:<32}{value:>8.2f}")


if __name__ == "__main__":
    main()
