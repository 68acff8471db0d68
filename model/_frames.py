"""Helpers that let per-frame modules accept both [B,C,H,W] and [B,T,C,H,W] inputs.

Most of RVM is applied frame by frame: a 5-D clip is folded into the batch, processed,
and unfolded again. These are free functions so TorchScript can compile them.
"""

from typing import Tuple

from torch import Tensor


def fold_time(x: Tensor) -> Tuple[Tensor, int]:
    """[B,T,C,H,W] -> ([B*T,C,H,W], T); a 4-D tensor passes through with T == 0."""
    if x.dim() == 5:
        return x.flatten(0, 1), x.size(1)
    return x, 0


def unfold_time(x: Tensor, t: int) -> Tensor:
    """Inverse of :func:`fold_time` (T == 0 means the input was 4-D)."""
    if t == 0:
        return x
    return x.reshape([x.size(0) // t, t] + list(x.shape[1:]))
