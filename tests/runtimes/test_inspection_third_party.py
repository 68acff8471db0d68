"""Artifacts our exporters did not write pass inspection (issue 26, item 5): the gate is "what cannot act", so the
official model exported by other routes, with the real weights, is not refused for ops or entries ours never
writes. Built here from the eager model (`from model import MattingNetwork`, loaded with the real weights):
torch.jit.script (as the official TorchScript release is made), frozen and not, torch.jit.trace, a plain
torch.export of the eager model, the official-style ONNX (benchmarks/official_onnx.py) and, where onnxscript is
installed, torch.onnx.export(dynamo=True). The hostile counterparts are in test_inspection*.py.
About 20 s on two cores.
"""

import sys
import zipfile
from pathlib import Path
from typing import List

import pytest
import torch

from rvm_export.runtimes.inspection import inspect_artifact
from tests.helpers import REPO, WEIGHTS


@pytest.fixture(scope="module")
def eager(real_model: torch.nn.Module) -> torch.nn.Module:
    from model import load_checkpoint

    return load_checkpoint(WEIGHTS).eval()  # our own copy: scripting and tracing must not touch the shared one


def _states(size: int = 64) -> List[torch.Tensor]:
    return [torch.zeros(1, c, size // s, size // s) for c, s in ((16, 2), (20, 4), (40, 8), (64, 16))]


def test_torch_jit_script_of_the_eager_model_passes(eager: torch.nn.Module, tmp_path: Path) -> None:
    """The official TorchScript is torch.jit.script of the model with its weights (its code also calls
    torch.unflatten, which this model's code does not: test_inspection_ops.py covers that call)."""
    path = tmp_path / "scripted.torchscript"
    torch.jit.script(eager).save(str(path))
    inspect_artifact(path, "torchscript")
    frozen = tmp_path / "frozen.torchscript"
    torch.jit.freeze(torch.jit.script(eager).eval()).save(str(frozen))
    inspect_artifact(frozen, "torchscript")


def test_torch_jit_trace_of_the_eager_model_passes(eager: torch.nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "traced.torchscript"
    with torch.no_grad():
        traced = torch.jit.trace(eager, (torch.rand(1, 3, 64, 64), *_states()), check_trace=False)
    traced.save(str(path))
    assert any("/traced_inputs" in n for n in zipfile.ZipFile(path).namelist())  # entries ours never writes
    inspect_artifact(path, "torchscript")


def test_torch_export_of_the_eager_model_passes(eager: torch.nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "eager.pt2"
    program = torch.export.export(eager, (torch.rand(1, 3, 64, 64),), kwargs={"downsample_ratio": 0.5})
    torch.export.save(program, str(path))
    inspect_artifact(path, "pt2")


def test_official_style_onnx_passes(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from official_onnx import export_official_style
    finally:
        sys.path.pop(0)
    inspect_artifact(export_official_style(WEIGHTS, tmp_path / "official.onnx"), "onnx")


def test_dynamo_onnx_export_of_the_eager_model_passes(eager: torch.nn.Module, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript (the dev extra)")
    path = tmp_path / "dynamo.onnx"
    program = torch.onnx.export(eager, (torch.rand(1, 3, 64, 64), *_states()), dynamo=True)
    program.save(str(path))
    inspect_artifact(path, "onnx")
