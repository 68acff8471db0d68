"""GPU check (run on a CUDA machine): parity of PyTorch and TorchScript on CUDA against the CPU fp32
reference, closed loop, and frames per second. Prints tables; exits 1 if any parity check fails.

    python benchmarks/gpu_check.py --checkpoint rvm_mobilenetv3.pth [--out DIR]

What it checks: eager PyTorch fp32/fp16 and exported TorchScript fp32 / fp16-frozen artifacts,
each run on CUDA with its recurrent state kept on the GPU, over the default verification cases
plus a 1920x1080 ratio-0.25 case, against PyTorch fp32 on the CPU.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Tuple

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import load_checkpoint  # noqa: E402
from rvm_export.export.base import at_precision, load_source  # noqa: E402
from rvm_export.export.torchscript import export_torchscript  # noqa: E402
from rvm_export.runtimes.torch_runner import TorchScriptRunner, _run_module  # noqa: E402
from rvm_export.verify.harness import default_cases, verify_runner  # noqa: E402
from rvm_export.verify.report import Report  # noqa: E402
from rvm_export.verify.sequence import Case  # noqa: E402
from rvm_export.verify.tolerances import tolerance_for  # noqa: E402


class EagerCudaRunner:
    """The eager MattingNetwork on CUDA, state carried on the GPU."""

    def __init__(self, model: torch.nn.Module, metadata: Any, device: str, allow_tf32: bool = False) -> None:
        self.model, self.metadata, self.device = model.to(device).eval(), metadata, device
        self.allow_tf32 = allow_tf32
        self.dtype = next(model.parameters()).dtype

    def initial_state(self, batch: int) -> Any:
        return None

    def fixed_case(self) -> None:
        return None

    def infer(self, src: np.ndarray, state: Any, ratio: float) -> Tuple[dict, Any]:
        return _run_module(self.model, src, state, ratio, self.dtype, self.device, self.allow_tf32)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def fps(module: Any, dtype: torch.dtype, device: str, size: Tuple[int, int, float], frames: int, tf32: bool) -> float:
    width, height, ratio = size
    src = torch.rand(1, 3, height, width, device=device, dtype=dtype)
    rec = [None] * 4
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=tf32):
        for _ in range(5):
            _, _, *rec = module(src, *rec, downsample_ratio=ratio)
        sync(device)
        start = time.perf_counter()
        for _ in range(frames):
            _, _, *rec = module(src, *rec, downsample_ratio=ratio)
        sync(device)
    return frames / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", default=None)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="one small case, few frames (a dry run on the CPU)")
    args = parser.parse_args()
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device")
        return 2
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name() if device == 'cuda' else device}")
    out = Path(args.out or tempfile.mkdtemp())
    source = load_source(args.checkpoint)
    reference = load_checkpoint(args.checkpoint)
    cases = [Case(96, 64, 1, 0.5, 2)] if args.quick else default_cases(4) + [Case(1920, 1080, 1, 0.25, 4)]
    sizes = ((128, 72, 0.5),) if args.quick else ((1920, 1080, 0.25), (512, 288, 1.0))
    ok = True
    runners = {}
    for precision in ("fp32", "fp16"):
        meta = source.metadata("pytorch-cuda", precision)
        runners[f"eager {precision}"] = EagerCudaRunner(
            at_precision(load_checkpoint(args.checkpoint), precision), meta, device
        )
    # PyTorch's default on this GPU (cuDNN TF32), shown for information: it is not fp32.
    tf32 = EagerCudaRunner(load_checkpoint(args.checkpoint), source.metadata("pytorch-cuda", "fp32"), device, True)
    informational = {"eager fp32, TF32 on (PyTorch default)": tf32} if device == "cuda" else {}
    runners.update(informational)
    for precision, freeze in (("fp32", False), ("fp16", True)):
        path = out / f"rvm_{precision}{'_frozen' if freeze else ''}.torchscript"
        model = at_precision(load_checkpoint(args.checkpoint), precision)
        export_torchscript(model, path, source.metadata("torchscript", precision, freeze=freeze), freeze)
        runners[path.name] = TorchScriptRunner(path, device=device)
    speeds = []
    for name, runner in runners.items():
        results = verify_runner(runner, reference, cases)
        report = Report(name, device, runner.metadata, tolerance_for(runner.metadata.precision), results)
        print(f"\n== {name}\n{report.table()}")
        ok &= report.passed or name in informational
        module = runner.model if hasattr(runner, "model") else runner.module
        tf32 = getattr(runner, "allow_tf32", False)
        for size in sizes:
            value = fps(module, runner.dtype, device, size, 3 if args.quick else 50, tf32)
            speeds.append((name, f"{size[0]}x{size[1]} r{size[2]}", value))
    print(f"\n{'runner':<36}{'case':<20}{'fps':>8}")
    for name, case, value in speeds:
        print(f"{name:<36}{case:<20}{value:>8.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
