"""Frames per second: PyTorch eager fp32 vs the .pt2 program, OpenVINO IR and LiteRT (CPU), states carried.

    .venv/bin/python benchmarks/runtime_speed.py [--checkpoint PTH] [--frames 6] [--rounds 3]

Exports the artifacts into a temporary folder, then runs each backend over the same frames,
batch 1, with the documented loops (docs/pt2.md, docs/openvino.md, docs/tflite.md). OpenVINO runs at the pinned
f32 inference precision (fp32 and fp16-weight IRs) and, for comparison only, at the CPU plugin's
default (bf16 on AVX-512-BF16/AMX CPUs), which fails parity. Backends are measured in interleaved
rounds so a busy machine hurts them alike; the table shows the median round. No assertions.
"""

import argparse
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_speed import DEFAULT_CHECKPOINT, Loop, measure, torch_loop  # noqa: E402

from rvm_export.export.base import load_source  # noqa: E402
from rvm_export.export.openvino import export_openvino  # noqa: E402
from rvm_export.export.pt2 import export_pt2  # noqa: E402
from rvm_export.export.tf_port import from_torch  # noqa: E402
from rvm_export.export.tflite import export_tflite  # noqa: E402

CASES = ((1920, 1080, 0.25), (512, 288, 1.0))


def pt2_loop(path: Path, ratio: float) -> Loop:
    model = torch.export.load(str(path)).module()
    ratio_tensor = torch.tensor([ratio])

    def run(frames: List[np.ndarray]) -> None:
        rec = [torch.zeros(1, 1, 1, 1)] * 4
        with torch.inference_mode():
            for src in frames:
                fgr, pha, *rec = model(torch.from_numpy(src), *rec, ratio_tensor)

    return run


def openvino_loop(path: Path, ratio: float, precision: Optional[str]) -> Loop:
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": precision} if precision else {}
    request = ov.Core().compile_model(str(path), "CPU", config).create_infer_request()
    ratio_array = np.array([ratio], np.float32)

    def run(frames: List[np.ndarray]) -> None:
        rec = [np.zeros([1, 1, 1, 1], np.float32)] * 4
        for src in frames:
            out = request.infer(
                {
                    "src": src,
                    "r1i": rec[0],
                    "r2i": rec[1],
                    "r3i": rec[2],
                    "r4i": rec[3],
                    "downsample_ratio": ratio_array,
                }
            )
            fgr, pha, *rec = (out[name] for name in ["fgr", "pha", "r1o", "r2o", "r3o", "r4o"])

    return run


def litert_loop(path: Path, ratio: float) -> Loop:
    from ai_edge_litert.interpreter import Interpreter

    model = Interpreter(model_path=str(path)).get_signature_runner("serving_default")

    def run(frames: List[np.ndarray]) -> None:
        rec = [np.zeros([1, 1, 1, 1], np.float32)] * 4
        for src in frames:
            out = model(
                src=src.transpose(0, 2, 3, 1).copy(),
                r1i=rec[0],
                r2i=rec[1],
                r3i=rec[2],
                r4i=rec[3],
                downsample_ratio=np.float32(ratio),
            )
            rec = [out["r1o"], out["r2o"], out["r3o"], out["r4o"]]

    return run


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT.resolve())
    parser.add_argument("--frames", type=int, default=6, help="Frames per round.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    import openvino as ov

    with tempfile.TemporaryDirectory() as work:
        source = load_source(args.checkpoint)
        pt2 = export_pt2(source.model, Path(work) / "rvm.pt2", source.metadata("pt2", "fp32"))
        ir = {}
        for precision in ("fp32", "fp16"):
            metadata = source.metadata("openvino", precision)
            ir[precision] = export_openvino(
                source.model, Path(work) / f"rvm_{precision}.xml", metadata, precision == "fp16"
            )
        metadata = source.metadata("tflite", "fp32")
        tflite = export_tflite(from_torch(source.model), Path(work) / "rvm.tflite", metadata, "fp32")
        default = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
        print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), openvino {ov.__version__}")
        print(f"{'size':<12}{'ratio':>6}  {'backend':<40}{'fps':>8}{'ms/frame':>10}")
        for width, height, ratio in CASES:
            rng = np.random.default_rng(0)
            frames = [rng.random((1, 3, height, width), dtype=np.float32) for _ in range(args.frames)]
            loops = {
                "pytorch eager fp32": torch_loop(args.checkpoint, ratio),
                "torch.export .pt2 fp32": pt2_loop(pt2, ratio),
                "openvino fp32, f32 (pinned)": openvino_loop(ir["fp32"], ratio, "f32"),
                "openvino fp16 weights, f32 (pinned)": openvino_loop(ir["fp16"], ratio, "f32"),
                f"openvino fp32, default {default} (no parity)": openvino_loop(ir["fp32"], ratio, None),
                "litert .tflite fp32 (XNNPACK)": litert_loop(tflite, ratio),
            }
            for name, fps in measure(loops, frames, args.rounds).items():
                print(f"{width}x{height:<7}{ratio:>6g}  {name:<40}{fps:>8.2f}{1000 / fps:>10.1f}")


if __name__ == "__main__":
    main()
