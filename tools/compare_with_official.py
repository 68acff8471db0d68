"""Compare our MattingNetwork with the OFFICIAL RVM implementation, every variant and refiner.

The official code is not part of this repository: point ``--official-root`` at a checkout of it
(the folder holding its ``model/`` package) and run this in an environment with torchvision, which
the official encoders subclass. Its package is loaded under another name, so both ``model``
packages live in one process. Both models get the same state_dict (the real MobileNetV3 weights,
and seeded random weights for the combinations without real weights here) and run the same
closed-loop sequences; the largest difference over all outputs is printed per combination.

    python tools/compare_with_official.py --official-root /path/to/RobustVideoMatting
"""

import argparse
import importlib.util
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model import MattingNetwork, load_checkpoint, seeded_random_model  # noqa: E402

WEIGHTS = REPO.parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"
# (batch, height, width, downsample_ratio): odd sizes, ratio 1 (no refiner) and below
CASES = ((1, 256, 256, 1.0), (2, 257, 319, 0.5), (1, 180, 320, 0.375))


def load_official(root: Path) -> type:
    """The official ``MattingNetwork`` class, imported as package ``rvm_official``."""
    init = root / "model" / "__init__.py"
    spec = importlib.util.spec_from_file_location("rvm_official", init, submodule_search_locations=[str(init.parent)])
    package = importlib.util.module_from_spec(spec)
    sys.modules["rvm_official"] = package
    spec.loader.exec_module(package)
    return importlib.import_module("rvm_official.model").MattingNetwork


def sequence(batch: int, height: int, width: int, frames: int, generator: torch.Generator) -> torch.Tensor:
    """[T,B,3,H,W]: smooth random images with structure at several scales."""
    low = torch.rand(frames * batch, 3, max(height // 8, 1), max(width // 8, 1), generator=generator)
    smooth = torch.nn.functional.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)
    return smooth.unflatten(0, (frames, batch))


def worst_difference(ours: MattingNetwork, official: torch.nn.Module, frames: int) -> float:
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    with torch.inference_mode():
        for batch, height, width, ratio in CASES:
            clip = sequence(batch, height, width, frames, generator)
            rec_a = rec_b = [None] * 4
            for src in clip:  # frame by frame, each model carrying its own state
                a, b = ours(src, *rec_a, downsample_ratio=ratio), official(src, *rec_b, downsample_ratio=ratio)
                rec_a, rec_b = a[2:], b[2:]
                worst = max(worst, max((x - y).abs().max().item() for x, y in zip(a, b, strict=True)))
            a = ours(clip.transpose(0, 1), downsample_ratio=ratio)  # [B,T,C,H,W] in one call
            b = official(clip.transpose(0, 1), downsample_ratio=ratio)
            worst = max(worst, max((x - y).abs().max().item() for x, y in zip(a, b, strict=True)))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official-root", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=3)
    args = parser.parse_args()
    official_class = load_official(args.official_root)
    models = [("mobilenetv3 + fast_guided_filter, real weights", load_checkpoint(WEIGHTS))]
    for variant in ("mobilenetv3", "resnet50"):
        for refiner in ("deep_guided_filter", "fast_guided_filter"):
            models.append((f"{variant} + {refiner}, seeded", seeded_random_model(variant, refiner, 1)))
    failed = False
    for name, ours in models:
        official = official_class(ours.variant, ours.refiner_name).eval()
        official.load_state_dict(ours.state_dict(), strict=True)
        worst = worst_difference(ours, official, args.frames)
        failed |= worst > 1e-5
        print(f"{name:<52} max |ours - official| = {worst:.2e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
