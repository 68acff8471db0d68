"""The machine's limit for one frame of RVM: what ``rvm-bench`` divides each artifact's time by.

Method (docs/verification.md, "The limit column"):

* **The machine**, measured when rvm-bench starts, on the threads every row gets: the GEMM peak per
  precision (the best of a few square ``torch.mm`` of 2048, in GFLOP/s) and the memory bandwidth (the best
  of a few copies of a 256 MB array, bytes read plus bytes written per second). A precision is measured
  only where the CPU computes it natively (``lscpu`` flags: avx512_bf16 or amx_bf16 for bf16,
  avx512_fp16 or amx_fp16 for fp16); elsewhere its artifacts are held to the fp32 peak, since that is
  what the CPU can do for them.
* **The work of a case**, from the canonical model at that size and ratio: the FLOPs of every
  convolution and matrix product (``torch.utils.flop_counter``, one multiply-add = 2 FLOPs; the
  element-wise work is left out, so the limit is a lower bound) and the bytes that the full-resolution
  stage cannot avoid: reading the frame and writing fgr and pha once, in float32 (28 bytes a pixel).
* **The limit** is FLOPs / GEMM peak + bytes / bandwidth: the time of a frame whose convolutions ran at
  the peak of the best GEMM and whose full-resolution stage only moved its inputs and outputs once.
  An artifact's "x limit" is its measured time over that; 1.0 cannot be beaten, 2-3 is good.
"""

import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

GEMM_SIZE = 2048
COPY_BYTES = 256 << 20
FULL_RES_BYTES_PER_PIXEL = (3 + 3 + 1) * 4  # src read, fgr and pha written, float32
NATIVE_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16")}


@dataclass
class MachineLimits:
    threads: int
    gemm_gflops: Dict[str, float]  # precision -> GFLOP/s, only the precisions the CPU computes natively
    bandwidth_gbs: float  # bytes read + written per ns
    cpu: str = ""
    flags: Tuple[str, ...] = field(default_factory=tuple)

    def peak(self, precision: str) -> float:
        """GFLOP/s available to an artifact of ``precision`` (fp32's where the CPU has no native kernels)."""
        return self.gemm_gflops.get(precision, self.gemm_gflops["fp32"])

    def describe(self) -> str:
        peaks = ", ".join(f"{p} GEMM {v:.0f} GFLOP/s" for p, v in self.gemm_gflops.items())
        missing = [p for p in NATIVE_FLAGS if p not in self.gemm_gflops]
        note = f" (no native {'/'.join(missing)}: held to the fp32 peak)" if missing else ""
        return f"{self.cpu or 'CPU'}: {peaks}{note}, memory copy {self.bandwidth_gbs:.1f} GB/s, {self.threads} threads"


@dataclass(frozen=True)
class CaseWork:
    gflop: float
    full_res_mb: float

    def limit_ms(self, limits: MachineLimits, precision: str) -> float:
        return self.gflop / limits.peak(precision) * 1e3 + self.full_res_mb / 1e3 / limits.bandwidth_gbs * 1e3


def cpu_facts() -> Tuple[str, Tuple[str, ...]]:
    """The CPU's model name and feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "", ()
    name, flags = "", ()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not name:
            name = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = tuple(value.split())
    return name, flags


def native_precisions(flags: Tuple[str, ...]) -> Tuple[str, ...]:
    return ("fp32",) + tuple(p for p, needed in NATIVE_FLAGS.items() if any(f in flags for f in needed))


def gemm_gflops(dtype_name: str, threads: int, repeats: int = 5) -> float:
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.randn(GEMM_SIZE, GEMM_SIZE).to(dtype)
        b = torch.randn(GEMM_SIZE, GEMM_SIZE).to(dtype)
        torch.mm(a, b)  # warm-up: kernel choice, page faults
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return 2 * GEMM_SIZE**3 / best / 1e9


def copy_bandwidth(repeats: int = 5) -> float:
    """GB/s of a large copy, bytes read + bytes written (NumPy's copy; threads do not raise it much)."""
    source = np.ones(COPY_BYTES // 4, dtype=np.float32)
    target = np.empty_like(source)
    np.copyto(target, source)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * COPY_BYTES / best / 1e9


def measure_machine(threads: int) -> MachineLimits:
    name, flags = cpu_facts()
    peaks = {p: gemm_gflops(p, threads) for p in native_precisions(flags)}
    return MachineLimits(threads, peaks, copy_bandwidth(), name, flags)


@cache
def _case_work(variant: str, refiner: str, width: int, height: int, ratio: float) -> CaseWork:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from model import MattingNetwork

    model = MattingNetwork(variant, refiner).eval()  # FLOPs depend on the architecture, not the weights
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, height, width), downsample_ratio=ratio)
    return CaseWork(counter.get_total_flops() / 1e9, width * height * FULL_RES_BYTES_PER_PIXEL / 1e6)


def case_work(
    width: int, height: int, ratio: float, variant: str = "mobilenetv3", refiner: Optional[str] = None
) -> CaseWork:
    """The FLOPs and unavoidable full-resolution bytes of one frame at this case (first frame: the
    recurrent states' work is the same on every frame)."""
    return _case_work(variant, refiner or "fast_guided_filter", width, height, float(ratio))
