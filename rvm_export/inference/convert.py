"""The public interface of video conversion: what ``inference.py`` re-exports, and ``rvm-convert``'s entry point.

- :func:`convert_video`, :class:`ConversionResult`, :func:`auto_downsample_ratio`: one video, the engine
  (:mod:`rvm_export.inference.engine`), which also holds :class:`Settings`, its options in one object;
- :func:`convert_videos`, :class:`LibraryResult`: a library of videos, in this process or on Ray
  (:mod:`rvm_export.inference.library`; jobs and ``run_job``: :mod:`rvm_export.inference.jobs`);
- :func:`main`: the command line (:mod:`rvm_export.inference.cli`).

It imports from those modules and none of them imports it.
"""

from rvm_export.inference.cli import main
from rvm_export.inference.engine import (
    DEFAULT_PRESET,
    GREEN,
    OUTPUT_TYPES,
    ConversionResult,
    Settings,
    auto_downsample_ratio,
    convert_video,
)
from rvm_export.inference.library import InputResult, LibraryResult, convert_videos

__all__ = [
    "DEFAULT_PRESET",
    "GREEN",
    "OUTPUT_TYPES",
    "ConversionResult",
    "InputResult",
    "LibraryResult",
    "Settings",
    "auto_downsample_ratio",
    "convert_video",
    "convert_videos",
    "main",
]

if __name__ == "__main__":
    main()
