"""Where ``rvm-export`` and ``make export-all`` look for a checkpoint when none is given (one list, both use it)."""

from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
# variant -> places looked in, in order (after ./checkpoints/ in the working folder): the official file
# names under the repository's checkpoints/, then the real weights kept beside the repository for tests.
DEFAULT_CHECKPOINTS: Dict[str, List[Path]] = {
    "mobilenetv3": [
        REPO / "checkpoints" / "rvm_mobilenetv3.pth",
        REPO.parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth",
    ],
    "resnet50": [REPO / "checkpoints" / "rvm_resnet50.pth"],
}


def checkpoint_candidates(variant: str) -> List[Path]:
    """Every path looked at for ``variant``, in order, without duplicates."""
    official = DEFAULT_CHECKPOINTS.get(variant, [])
    in_cwd = [Path.cwd() / "checkpoints" / f"rvm_{variant}.pth"]
    seen, paths = set(), []
    for path in in_cwd + official:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            paths.append(path)
    return paths


def find_checkpoint(variant: str) -> Optional[Path]:
    """The first existing candidate for ``variant``, or None."""
    return next((path for path in checkpoint_candidates(variant) if path.is_file()), None)


__all__ = ["DEFAULT_CHECKPOINTS", "checkpoint_candidates", "find_checkpoint"]
