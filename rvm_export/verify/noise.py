"""The reference's own noise at an artifact's precision: how far PyTorch itself moves when it
computes at that precision. The verifier's tolerance is a multiple of it (see tolerances.py).

- fp32 artifacts: PyTorch float64 against PyTorch float32. Both are the same function; the
  difference is float32's rounding, amplified where the network is ill-conditioned (the fast
  guided filter's ``cov / (var + eps)`` in flat regions). Another float32 runtime that sums in
  another order moves by about as much, in the same places.
- fp16 artifacts: PyTorch at the exporters' fp16 recipe (``half_precision``: fp16 network,
  fp32 refiner) against float32; bf16 artifacts the same with a bfloat16 network.
- Weight-quantized artifacts (int8, uint8, uint16): float32 arithmetic with each large conv weight
  rounded to that grid (int8: symmetric per output channel, like CoreML's; uint8/uint16: affine
  per tensor, like TF.js's). An estimate: the exporters quantize BatchNorm-folded weights, this
  quantizes them unfolded; it sets the scale of the allowed error, not its exact value.
"""

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

import model
from model import MattingNetwork, half_precision
from rvm_export.contract.files import write_atomic

LARGE_TENSOR = 64
NOISE_SOURCES = {
    "fp32": "PyTorch float64 vs float32",
    "fp16": "PyTorch fp16 (refiner fp32) vs float32",
    "bf16": "PyTorch bfloat16 (refiner fp32) vs float32",
    "int8": "PyTorch with int8 per-channel weights vs float32",
    "uint8": "PyTorch with uint8 per-tensor weights vs float32",
    "uint16": "PyTorch with uint16 per-tensor weights vs float32",
}


def _quantize_weights(model: nn.Module, levels: int, per_channel: bool) -> None:
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, nn.Conv2d) or module.weight.numel() < LARGE_TENSOR:
                continue
            w = module.weight
            if per_channel:  # symmetric, one scale per output channel
                scale = w.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12) / (levels // 2)
                w.copy_(torch.round(w / scale) * scale)
            else:  # affine over the whole tensor, range widened to include 0
                lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
                scale = max(hi - lo, 1e-12) / (levels - 1)
                w.copy_(torch.round((w - lo) / scale) * scale + lo)


def noise_model(reference: MattingNetwork, precision: str) -> Tuple[MattingNetwork, torch.dtype]:
    """(model, input dtype) of PyTorch at ``precision``'s arithmetic (NOISE_SOURCES says which)."""
    model = copy.deepcopy(reference).float().eval()
    if precision == "fp32":
        return model.double(), torch.float64
    if precision == "fp16":
        return half_precision(model), torch.float16
    if precision == "bf16":
        return half_precision(model, torch.bfloat16), torch.bfloat16
    if precision == "int8":
        _quantize_weights(model, 255, per_channel=True)
        return model, torch.float32
    if precision in ("uint8", "uint16"):
        _quantize_weights(model, 256 if precision == "uint8" else 65536, per_channel=False)
        return model, torch.float32
    raise KeyError(f"no noise model for precision {precision!r}")


# --- The noise floor of a case depends only on the reference weights, the precision and the frames,
# never on the artifact: it is cached on disk, so the many verifications of one checkpoint (a test
# suite, `make export-all`, a CI gate) pay for the float64 run once. Per-frame entries are kept, and
# a longer sequence starts with the shorter one's frames, so a cached 300-frame run serves 4 frames too.

Floor = Dict[str, Any]  # one frame: output -> {max_abs, q999, mean_abs}, and "alpha_mad_1e3" -> float
Floors = List[Floor]
# What the cached floors are computed by: the model package and the two modules that run it.
CODE = [
    Path(model.__file__).resolve().parent,
    Path(__file__).resolve(),
    Path(__file__).resolve().with_name("sequence.py"),
]


def cache_dir() -> Optional[Path]:
    """Where noise floors are kept (RVM_VERIFY_CACHE, else the user cache); None when RVM_VERIFY_CACHE=off."""
    setting = os.environ.get("RVM_VERIFY_CACHE")
    if setting == "off":
        return None
    if setting:
        return Path(setting)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rvm-export" / "noise-floor"


def _code_digest() -> str:
    digest = hashlib.sha256()
    for root in CODE:
        for file in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            digest.update(file.read_bytes())
    return digest.hexdigest()


def weights_digest(model: MattingNetwork) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def cache_key(weights: str, precision: str, case_label: str) -> str:
    """``case_label`` without its frame count: the frames of a shorter sequence begin every longer one."""
    meta = {"weights": weights, "precision": precision, "case": case_label.rsplit(" t", 1)[0]}
    meta |= {"torch": torch.__version__, "code": _code_digest()}
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:32]


def load_floors(key: str, frames: int) -> Optional[Floors]:
    folder = cache_dir()
    if folder is None or not (folder / f"{key}.json").is_file():
        return None
    try:
        floors = json.loads((folder / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    return floors[:frames] if len(floors) >= frames else None


def save_floors(key: str, floors: Floors) -> None:
    """Best effort: a cache that cannot be written only costs time."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        existing = load_floors(key, 0) or []
        if len(existing) > len(floors):
            return
        write_atomic(folder / f"{key}.json", json.dumps(floors).encode())
    except OSError:
        pass


class NoiseFloor:
    """The noise floors of one reference at one precision, case by case: from the cache, or by
    running PyTorch at that precision in lock-step with the fp32 reference (``step``)."""

    def __init__(self, reference: MattingNetwork, precision: str) -> None:
        self.reference, self.precision = reference, precision
        self.weights = weights_digest(reference)
        self._model: Optional[Tuple[MattingNetwork, torch.dtype]] = None

    def key(self, case_label: str) -> str:
        return cache_key(self.weights, self.precision, case_label)

    def runner(self) -> Any:
        from ..runtimes.torch_runner import TorchReference

        if self._model is None:
            self._model = noise_model(self.reference, self.precision)
        return TorchReference(*self._model)
