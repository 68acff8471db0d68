"""Loading RVM checkpoints: the one place that turns a .pth file into a MattingNetwork.

Never unpickles code (``weights_only=True``), infers variant and refiner from the keys, and
turns every way a checkpoint can be wrong into a :class:`CheckpointError` with a one-line
message that says what to do. There is no silent ``strict=False``.
"""

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from .network import MattingNetwork

MOBILENET_KEY = "backbone.features.0.0.weight"
RESNET_KEY = "backbone.conv1.weight"
REFINER_PREFIX = "refiner."


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why and what to pass instead."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state_dict(path: str | Path) -> Dict[str, Tensor]:
    """Read a state_dict safely; raise CheckpointError for a missing, foreign or truncated file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (pass the path of an RVM .pth file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types on foreign bytes (IndexError, UnpicklingError...)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or not a .pth?): {first_line}")
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state_dict of tensors")
    return dict(state)


def infer_architecture(state: Mapping[str, Tensor]) -> Tuple[str, str]:
    """(variant, refiner) from the key names of an official-layout state_dict."""
    if MOBILENET_KEY in state:
        variant = "mobilenetv3"
    elif RESNET_KEY in state:
        variant = "resnet50"
    else:
        raise CheckpointError(
            f"not an RVM MattingNetwork checkpoint: neither {MOBILENET_KEY} nor {RESNET_KEY} is present"
        )
    has_refiner = any(k.startswith(REFINER_PREFIX) for k in state)
    return variant, "deep_guided_filter" if has_refiner else "fast_guided_filter"


def _few(keys: list[str], n: int = 3) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def check_layout(model: MattingNetwork, state: Mapping[str, Tensor]) -> None:
    """Raise CheckpointError listing missing, unexpected or mis-shaped keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mis_shaped = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_few(unexpected)}")
    if mis_shaped:
        problems.append(f"wrong shapes: {_few(mis_shaped)}")
    if problems:
        raise CheckpointError(
            f"checkpoint does not match MattingNetwork({model.variant}, {model.refiner_name}): " + "; ".join(problems)
        )


def build_model(
    state: Mapping[str, Tensor], variant: Optional[str] = None, refiner: Optional[str] = None
) -> MattingNetwork:
    """A MattingNetwork in eval mode with ``state`` loaded strictly.

    A checkpoint with deep-guided-filter weights may be loaded with ``refiner='fast_guided_filter'``:
    the fast filter has no weights, so the ``refiner.*`` tensors are dropped explicitly. The
    opposite (no refiner weights, deep filter asked for) is an error: its weights would be random.
    """
    found_variant, found_refiner = infer_architecture(state)
    if variant is not None and variant != found_variant:
        raise CheckpointError(f"this is a {found_variant} checkpoint; pass --variant {found_variant}")
    refiner = refiner or found_refiner
    if refiner == "deep_guided_filter" and found_refiner == "fast_guided_filter":
        raise CheckpointError(
            "checkpoint has no deep guided filter weights (refiner.*); pass --refiner fast_guided_filter"
        )
    if refiner == "fast_guided_filter":
        state = {k: v for k, v in state.items() if not k.startswith(REFINER_PREFIX)}
    model = MattingNetwork(found_variant, refiner)
    check_layout(model, state)
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_checkpoint(path: str | Path, variant: Optional[str] = None, refiner: Optional[str] = None) -> MattingNetwork:
    """Load an official-layout checkpoint file into an eval-mode MattingNetwork on the CPU."""
    return build_model(read_state_dict(path), variant, refiner)


def seeded_random_model(
    variant: str = "mobilenetv3", refiner: str = "deep_guided_filter", seed: int = 0
) -> MattingNetwork:
    """A reproducible random initialisation, for variants without real weights here.

    BatchNorm statistics are randomised too, so they are exercised by parity checks."""
    generator = torch.Generator().manual_seed(seed)
    model = MattingNetwork(variant, refiner)
    # He gain (2) keeps ReLU stages stable, but MobileNetV3's hardswish stages with residuals then grow
    # activations past 1000 and fp32 reorderings differ by 1e-3; a gain of 1 keeps them near the real model's.
    gain = 1.0 if variant == "mobilenetv3" else 2.0
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif name.endswith("running_mean") or (name.endswith(".bias") and ".bn" not in name):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
            elif name.endswith("bn3.weight"):  # last BN of a residual branch: small, keeps ResNet stable
                tensor.copy_(0.2 + 0.02 * torch.randn(tensor.shape, generator=generator))
            elif tensor.dim() == 1:  # BatchNorm weight/bias
                tensor.copy_(1.0 + 0.1 * torch.randn(tensor.shape, generator=generator))
            else:
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * (gain / fan_in) ** 0.5)
        # Keep alpha and foreground away from the clamp limits so parity checks see real values.
        model.project_mat.conv.weight.mul_(0.05)
        model.project_mat.conv.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.5]))
    return model.eval()
