"""Where ``rvm-export`` and ``make export-all`` look for a checkpoint when none is given (one list, both use it).

The list lives in :mod:`rvm_export.contract.checkpoints`, because the verifier looks in the same folders for the
checkpoint an artifact names, and runtimes may not import export/."""

from pathlib import Path
from typing import List, Optional

from rvm_export.contract import checkpoints as _contract
from rvm_export.contract.checkpoints import DEFAULT_CHECKPOINTS


def checkpoint_candidates(variant: str) -> List[Path]:
    """Every path looked at for ``variant``, in order, without duplicates."""
    return _contract.checkpoint_candidates(variant, DEFAULT_CHECKPOINTS)


def find_checkpoint(variant: str) -> Optional[Path]:
    """The first existing candidate for ``variant``, or None."""
    return _contract.find_checkpoint(variant, DEFAULT_CHECKPOINTS)


__all__ = ["DEFAULT_CHECKPOINTS", "checkpoint_candidates", "find_checkpoint"]
