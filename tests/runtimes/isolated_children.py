"""Serving functions for tests/runtimes/test_isolated.py, run in the child of rvm_export.runtimes.isolated."""

import os
import sys
from typing import Any

import numpy as np

from rvm_export.contract.errors import RunnerError
from rvm_export.runtimes.isolated import serve_loop


def serve(conn: Any, mode: str) -> None:
    def load() -> tuple:
        if mode == "abort at load":
            os.abort()
        if mode == "refuse at load":
            raise RunnerError("the test model refuses to load")
        return mode, f"test child ({mode})"

    def step(model: str, arrays: tuple) -> list:
        if model == "abort on frame 2" and arrays[0][0] == 2:
            sys.stderr.write("free(): invalid pointer\n")
            sys.stderr.flush()
            os.abort()
        if model == "modules":
            import rvm_export.runtimes.mnn  # noqa: F401
            import rvm_export.runtimes.ncnn  # noqa: F401

            return [np.asarray(["torch" in sys.modules])]
        return [a * 2 for a in arrays]

    serve_loop(conn, load, step)
