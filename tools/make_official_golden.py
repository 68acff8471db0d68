"""Write tests/data/official_golden.npz: outputs of the OFFICIAL RVM PyTorch implementation.

The official implementation is not part of this repository and is never imported by it: this script
loads it from a separate checkout given with ``--official-root`` (the directory that contains the
official ``model/`` package), in an environment that has torchvision (which the official encoders
subclass). The test ``tests/model/test_official_golden.py`` then checks our canonical model against
the stored numbers without needing either.

What is computed: the real MobileNetV3 + fast-guided-filter weights, a 2-frame sequence of crops of
scikit-image's astronaut (batch 1, see :func:`golden_frames`), run frame by frame in a closed loop
(each frame's recurrent states fed back with the next) at downsample ratios 1.0 and 0.5.
Stored (float32): fgr and pha of every frame, and the recurrent states r1..r4 after the last frame,
which depend on every frame before. Usage::

    python tools/make_official_golden.py --official-root /path/to/RobustVideoMatting \
        --official-ref "model.py@b4850905 ..." --out tests/data/official_golden.npz

This module must stay importable without torch's optional extras: the test imports
:func:`golden_frames` from it so that the inputs are built by one piece of code.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = REPO.parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"
DEFAULT_OUT = REPO / "tests" / "data" / "official_golden.npz"

RATIOS = (1.0, 0.5)
HEIGHT, WIDTH = 128, 96
# Top-left corners (row, col) of the crops, one per frame: the astronaut's head,
# moving a few pixels between frames like a handheld camera.
CROPS = ((48, 180), (52, 186))
STATE_NAMES = ("r1", "r2", "r3", "r4")


def golden_frames() -> np.ndarray:
    """The input sequence: float32 [T, 1, 3, HEIGHT, WIDTH] in 0..1, deterministic."""
    from skimage import data

    image = np.ascontiguousarray(data.astronaut())  # [512, 512, 3] uint8
    frames = [image[r : r + HEIGHT, c : c + WIDTH] for r, c in CROPS]
    seq = np.stack(frames).astype(np.float32) / np.float32(255.0)  # [T, H, W, 3]
    return np.ascontiguousarray(seq.transpose(0, 3, 1, 2)[:, None])


def array_sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ratio_tag(ratio: float) -> str:
    return f"ratio{ratio:g}".replace(".", "p")


def git_head(root: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def import_official(root: Path):
    """Import the official ``model`` package from ``root`` (and nothing of ours)."""
    if not (root / "model" / "model.py").is_file():
        raise SystemExit(f"{root} has no model/model.py: pass the root of an official RobustVideoMatting checkout")
    if "model" in sys.modules:
        raise SystemExit("a module named 'model' is already imported; run this script on its own")
    sys.path.insert(0, str(root))
    import model as official

    if Path(official.__file__).resolve().parent != (root / "model").resolve():
        raise SystemExit(f"imported {official.__file__}, not the official package under {root}")
    return official


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-root", type=Path, required=True, help="directory holding the official model/")
    parser.add_argument("--official-ref", default="", help="free text recorded as the official source's version")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    import torch
    import torchvision

    official = import_official(args.official_root.resolve())
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

    net = official.MattingNetwork(variant="mobilenetv3", refiner="fast_guided_filter")
    net.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True), strict=True)
    net.eval()

    frames = golden_frames()
    arrays: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for ratio in RATIOS:
            tag = ratio_tag(ratio)
            rec = [None] * 4
            for t, frame in enumerate(frames):
                fgr, pha, *rec = net(torch.from_numpy(frame), *rec, downsample_ratio=ratio)
                arrays[f"{tag}/frame{t}/fgr"] = fgr.numpy()
                arrays[f"{tag}/frame{t}/pha"] = pha.numpy()
            for name, state in zip(STATE_NAMES, rec, strict=True):
                arrays[f"{tag}/frame{len(frames) - 1}/{name}"] = state.numpy()

    for key, value in arrays.items():
        if value.dtype != np.float32 or not np.isfinite(value).all():
            raise SystemExit(f"{key}: expected finite float32, got {value.dtype}")

    ref = args.official_ref or git_head(args.official_root)
    meta = {
        "meta/weights_sha256": file_sha256(args.weights),
        "meta/input_sha256": array_sha256(frames),
        "meta/official_ref": ref,
        "meta/torch": torch.__version__,
        "meta/torchvision": torchvision.__version__,
        "meta/numpy": np.__version__,
        "meta/ratios": ",".join(f"{r:g}" for r in RATIOS),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays, **{k: np.array(v) for k, v in meta.items()})
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1024:.0f} KiB, {len(arrays)} arrays)")
    for key, value in meta.items():
        print(f"  {key} = {value}")


if __name__ == "__main__":
    main()
