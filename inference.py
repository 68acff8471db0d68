"""``from inference import convert_video`` and ``python inference.py ...``, as the RVM documentation shows.

A thin re-export: the code lives in :mod:`rvm_export.inference` (the public names: :mod:`rvm_export.inference.convert`;
the command line, also installed as ``rvm-convert``: :mod:`rvm_export.inference.cli`).
"""

from rvm_export.inference.convert import (
    DEFAULT_PRESET,
    GREEN,
    ConversionResult,
    LibraryResult,
    auto_downsample_ratio,
    convert_video,
    convert_videos,
    main,
)

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
