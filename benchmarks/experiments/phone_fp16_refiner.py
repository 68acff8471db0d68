"""What a phone computing in fp16 does to RVM, measured with PyTorch's fp16 recipe (the verifier's fp16 noise model).

Three PyTorch runs of the real MobileNetV3 weights (fast guided filter) against PyTorch fp32, each carrying its own
recurrent state over the moving-camera sequence:

  refiner fp32   model.half_precision: fp16 network, guided filter fp32 (what the ncnn artifact's 31=7 layers keep,
                 and what the verifier's fp16 noise model is)
  refiner fp16   the whole model in fp16, the fast guided filter computed in fp16 as written (var = E[x^2] - E[x]^2):
                 what a phone that ignores the refiner's feature mask computes (ncnn without 31=7, MNN precision Low)

Usage: .venv/bin/python benchmarks/experiments/phone_fp16_refiner.py [--frames 4]
"""

import argparse
import copy
from pathlib import Path

import numpy as np
import torch

from model import half_precision, load_checkpoint
from rvm_export.verify.sequence import Case, build_sequence

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO.parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"
CASES = [Case(1280, 720, 1, 0.375, 4), Case(512, 288, 1, 0.25, 4), Case(320, 192, 1, 0.5, 4)]


def fp16_refiner_model(model: torch.nn.Module) -> torch.nn.Module:
    """The whole model in fp16, the fast guided filter's arithmetic included (its fp32 promotion undone)."""
    from refiner_fp16 import Fp16FastGuidedFilter  # beside this script

    model = copy.deepcopy(model).half()
    model.refiner = Fp16FastGuidedFilter(centred=False)
    return model


def run(model: torch.nn.Module, frames: np.ndarray, ratio: float, dtype: torch.dtype) -> list:
    rec, out = [None] * 4, []
    with torch.inference_mode():
        for frame in frames:
            _, pha, *rec = model(torch.from_numpy(frame).to(dtype), *rec, ratio)
            out.append(pha.float().numpy())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    reference = load_checkpoint(WEIGHTS).float().eval()
    variants = {
        "refiner fp32": half_precision(copy.deepcopy(reference)),
        "refiner fp16": fp16_refiner_model(reference),
    }
    print("| case | variant | pha max | pha q99.9 | alpha MAD x1e3 |")
    print("| --- | --- | --- | --- | --- |")
    for case in CASES:
        frames = build_sequence(Case(case.width, case.height, 1, case.ratio, args.frames))
        want = run(reference, frames, case.ratio, torch.float32)
        for name, model in variants.items():
            got = run(model, frames, case.ratio, torch.float16)
            err = np.abs(np.stack(got) - np.stack(want))
            mad = max(float(np.mean(e)) for e in err) * 1e3
            label = f"{case.width}x{case.height} r{case.ratio:g}"
            print(f"| {label} | {name} | {err.max():.3g} | {np.quantile(err, 0.999):.3g} | {mad:.2f} |")


if __name__ == "__main__":
    main()
