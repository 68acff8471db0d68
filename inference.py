"""``from inference import convert_video`` and ``python inference.py ...``, as the RVM documentation shows.

A thin re-export: the code lives in :mod:`rvm_export.inference.convert` (also installed as ``rvm-convert``).
"""

from rvm_export.inference.convert import (
    DEFAULT_PRESET,
    GREEN,
    ConversionResult,
    auto_downsample_ratio,
    convert_video,
    main,
)
from rvm_export.inference.library import LibraryResult, convert_videos

__all__ = [
    "DEFAULT_PRESET",
    "GREEN",
    "ConversionResult",
    "LibraryResult",
    "auto_downsample_ratio",
    "convert_video",
    "convert_videos",
    "main",
]

if __name__ == "__main__":
    main()
