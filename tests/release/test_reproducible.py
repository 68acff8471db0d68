"""Byte-identical artifacts (issue 29 item 1): the same inputs exported twice give the same bytes, for the targets
whose writers allow it (docs/release.md has the table, with the measured cause where they do not)."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

import pytest
from click.testing import CliRunner

from rvm_export.contract import ArtifactMetadata
from rvm_export.contract.metadata import created_time
from rvm_export.export.cli import main as export_main
from tests.helpers import in_ci, require

CI_ONLY = pytest.mark.skipif(not in_ci(), reason="two fresh exports of a slow target: CI only (CI=true)")

# target -> (artifact name, extra options, the module its writer needs); the cheap ones run everywhere, all in CI
IDENTICAL = {
    "torchscript": ("a.torchscript", (), "torch"),
    "onnx": ("a.onnx", (), "onnx"),
    "openvino": ("a.xml", (), "openvino"),
    "pt2": ("a.pt2", (), "torch"),
    "tflite": ("a.tflite", (), "ai_edge_litert"),
    "tensorflow": ("a_tf", (), "tensorflow"),
    "tfjs": ("a_tfjs", (), "tensorflow"),
    "mnn": ("a.mnn", (), "MNN"),
    "ncnn": ("a.ncnn.param", ("--downsample-ratio", "0.5"), "ncnn"),
    "executorch": ("a.pte", ("--resolution", "128", "96", "--downsample-ratio", "0.5"), "executorch"),
    "coreml": ("a.mlpackage", ("--resolution", "128", "96", "--downsample-ratio", "0.5"), "coremltools"),
    "coreml-nn": ("a.mlmodel", ("--resolution", "128", "96", "--downsample-ratio", "0.5"), "coremltools"),
}
CHEAP = ("torchscript", "onnx", "openvino")


def artifact_bytes(path: Path) -> Dict[str, bytes]:
    """An artifact's files by name (a folder's files; an OpenVINO .xml or ncnn .param with its .bin)."""
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    files = [path] + [p for p in (path.with_suffix(".bin"),) if p.suffix != path.suffix and p.exists()]
    return {p.name: p.read_bytes() for p in files}


def export_in_child(target: str, output: Path, options: Tuple[str, ...], hash_seed: str) -> None:
    """``rvm-export TARGET --seed 0 OPTIONS --output OUTPUT`` in a fresh interpreter (as a user runs it twice: a
    second export in one process differs by the process's own counters, e.g. OpenVINO's node ids)."""
    command = [sys.executable, "-c", "from rvm_export.export.cli import main; main()"]
    command += [target.split("-")[0], "--seed", "0", *options, "--output", str(output)]
    env = os.environ | {"PYTHONHASHSEED": hash_seed}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=output.parent, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("target", [t if t in CHEAP else pytest.param(t, marks=CI_ONLY) for t in IDENTICAL])
def test_two_exports_are_byte_identical(target: str, tmp_path: Path) -> None:
    """The same seeded export in two fresh processes with different string hash seeds gives the same bytes."""
    name, options, module = IDENTICAL[target]
    if module != "torch":
        require(module)
    exported = []
    for run, seed in (("1", "1"), ("2", "2")):
        (tmp_path / run).mkdir()
        export_in_child(target, tmp_path / run / name, options, seed)
        exported.append(artifact_bytes(tmp_path / run / name))
    assert list(exported[0]) == list(exported[1])
    differing = [n for n in exported[0] if exported[0][n] != exported[1][n]]
    assert not differing, f"{target}: two exports differ in {differing}"


CONSTANTS = """
import contextlib, io, sys, zipfile, torch
from rvm_export.export.reproducible import sorted_jit_constants
class Constants(torch.nn.Module):
    __constants__ = ["zeta", "alpha", "mid", "beta", "omega"]
    def __init__(self):
        super().__init__()
        self.zeta, self.alpha, self.mid, self.beta, self.omega = 1, 2, 3, 4, 5
    def forward(self, x):
        return x * self.zeta + self.alpha + self.mid + self.beta + self.omega
with sorted_jit_constants() if sys.argv[1] == "shim" else contextlib.nullcontext():
    scripted = torch.jit.script(Constants())
buffer = io.BytesIO()
torch.jit.save(scripted, buffer)
archive = zipfile.ZipFile(buffer)
print([archive.read(n) for n in archive.namelist() if n.endswith(".py") and b"Final" in archive.read(n)][0].decode())
"""


def scripted_code(script: Path, mode: str, hash_seed: str) -> str:
    env = os.environ | {"PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    return done.stdout


def test_scripted_constants_do_not_follow_the_hash_seed(tmp_path: Path) -> None:
    """Without the shim the constants' order follows PYTHONHASHSEED (seeds 1 and 3 differ here); with it, not."""
    script = tmp_path / "constants.py"  # a file: torch.jit.script reads the class's source
    script.write_text(CONSTANTS)
    assert scripted_code(script, "none", "1") != scripted_code(script, "none", "3")
    assert scripted_code(script, "shim", "1") == scripted_code(script, "shim", "3")


def test_source_date_epoch_sets_the_recorded_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert (
        created_time() is None
        and ArtifactMetadata("onnx", "mobilenetv3", "fast_guided_filter", "fp32", None, None, 0).created is None
    )
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert created_time() == "2023-11-14T22:13:20+00:00"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    result = CliRunner().invoke(
        export_main, ["torchscript", "--seed", "0", "--output", str(tmp_path / "m.torchscript")]
    )
    assert result.exit_code == 2 and "SOURCE_DATE_EPOCH is 'yesterday'" in result.output, result.output
    errors = [line for line in result.output.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("rvm-export: error: ") and not list(tmp_path.iterdir())
