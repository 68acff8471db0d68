"""CoreML artifacts converted once per test session (through the CLI) and shared by the export
and verify tests: conversion is the slow part, so each format/precision is converted once."""

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from ..conftest import export_artifact

WEIGHTS = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"
WIDTH, HEIGHT, RATIO = 128, 96, 0.5  # small, and size x ratio is an integer
SUFFIX = {"mlprogram": ".mlpackage", "neuralnetwork": ".mlmodel"}


@functools.cache
def _folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="rvm-coreml-tests-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@functools.cache
def coreml_artifact(fmt: str, precision: str) -> Path:
    output = _folder() / f"rvm_{WIDTH}x{HEIGHT}_s{RATIO:g}_{precision}{SUFFIX[fmt]}"
    args = ["coreml", "--checkpoint", str(WEIGHTS), "--resolution", str(WIDTH), str(HEIGHT)]
    args += ["--downsample-ratio", str(RATIO), "--precision", precision, "--format", fmt, "--output", str(output)]
    export_artifact(*args)
    return output
