"""``from inference_utils import VideoReader, VideoWriter``, as the RVM documentation shows.

A thin re-export: the code lives in :mod:`rvm_export.inference.io`.
"""

from rvm_export.inference.io import *  # noqa: F403
from rvm_export.inference.io import __all__  # noqa: F401
