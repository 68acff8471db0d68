"""The operator allowlists are "what cannot act" (issue 26, item 5): the pinned runtimes' registries less explicit
refused lists (rvm_export/runtimes/inspection_ops.py), kept as generated literals (inspection_oplists.py).

Here: the literals are what the registries give (so a torch or TensorFlow upgrade fails until they are
regenerated and the diff read), the refused lists name real operators and cover every suspicious one, and what
each list refuses is refused in TorchScript code, .pt2 targets and SavedModel graphs while ordinary compute
that our exporters never write (torch.unflatten, einsum, a TF op outside our graphs) passes.
"""

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable

import pytest
import torch

from rvm_export.runtimes import inspection_ops
from rvm_export.runtimes.inspection import inspect_artifact
from rvm_export.runtimes.inspection_oplists import TF_OPS, TORCH_OPS
from tests.runtimes.test_inspection import refused, rewrite_zip

PINNED_TORCH = torch.__version__.startswith(inspection_ops.TORCH_VERSION)


def derived_in_a_fresh_process(function: str) -> frozenset:
    """``inspection_ops.<function>()`` in a new interpreter, as the generator runs: in this one, whatever the
    suite imported before (TensorFlow Lite's converter, torchao, executorch) has registered operators of its own."""
    code = (
        f"import json; from rvm_export.runtimes import inspection_ops as o; print(json.dumps(sorted(o.{function}())))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return frozenset(json.loads(out.strip().splitlines()[-1]))


# --- The lists against the registries -------------------------------------------------------------------------


@pytest.mark.skipif(not PINNED_TORCH, reason=f"the list is derived from torch {inspection_ops.TORCH_VERSION}")
def test_torch_list_is_the_registry_less_the_refused() -> None:
    derived = derived_in_a_fresh_process("derive_torch_ops")
    assert derived == TORCH_OPS, (
        f"new: {sorted(derived - TORCH_OPS)[:20]}, gone: {sorted(TORCH_OPS - derived)[:20]}; review them, then "
        "python -m rvm_export.runtimes.inspection_ops"
    )


def test_torch_refused_list_names_registered_operators_and_covers_every_suspect() -> None:
    registry = inspection_ops.torch_registry()
    assert not set(inspection_ops.TORCH_REFUSED) - set(registry), "a refused operator torch does not register"
    suspects = inspection_ops.torch_suspects()
    assert {"aten::from_file", "aten::save", "prim::Print", "aten::warn", "prim::rpc_async"} <= suspects
    unreviewed = suspects - set(inspection_ops.TORCH_REFUSED) - set(inspection_ops.TORCH_REVIEWED)
    assert not unreviewed, f"operators that may act outside their tensors, neither refused nor reviewed: {unreviewed}"
    assert not set(inspection_ops.TORCH_REFUSED) & TORCH_OPS
    assert {"aten::unflatten", "aten::conv2d", "aten::einsum", "prim::device"} <= TORCH_OPS
    assert not {n for n in TORCH_OPS if not n.startswith(("aten::", "prim::"))}


def test_tf_list_is_the_registry_less_the_refused_families() -> None:
    pytest.importorskip("tensorflow")
    import tensorflow as tf

    registry = inspection_ops.tf_registry()
    if tf.__version__.startswith(inspection_ops.TENSORFLOW_VERSION):
        derived = derived_in_a_fresh_process("derive_tf_ops")
        assert derived == TF_OPS, f"new: {sorted(derived - TF_OPS)[:20]}, gone: {sorted(TF_OPS - derived)[:20]}"
    for family, (pattern, _) in inspection_ops.TF_REFUSED_FAMILIES.items():
        assert any(re.search(pattern, op) for op in registry), f"family {family} matches no registered op"
    assert set(inspection_ops.TF_REFUSED_OPS) <= registry
    for op in ("ReadFile", "WriteFile", "PrintV2", "PyFunc", "EagerPyFunc", "RpcCall", "WriteScalarSummary",
               "TFRecordDataset", "DebugIdentityV2", "ImmutableConst", "SaveV2", "RestoreV2", "XlaCallModule",
               "_Send", "CollectiveReduceV2", "DecodeProtoV2", "MatchingFiles"):  # fmt: skip
        assert op in registry and op not in TF_OPS and inspection_ops.tf_refusal(op), op
    assert {"Conv2D", "Elu", "Einsum", "ResizeBilinear", "StatefulPartitionedCall", "While", "If"} <= TF_OPS


# --- TorchScript code --------------------------------------------------------------------------------------------


class _Sequence(torch.nn.Module):
    """A conv over [B, T, C, H, W] the way the official RVM does it: flatten(0, 1) then unflatten(0, (B, T))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T = x.shape[:2]
        y = self.conv(x.flatten(0, 1))
        return y.unflatten(0, (B, T))


@pytest.fixture(scope="module")
def sequence_ts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ts") / "sequence.torchscript"
    torch.jit.script(_Sequence()).save(str(path))
    return path


def test_torchscript_calling_unflatten_passes(sequence_ts: Path) -> None:
    """Finding 6: the official TorchScript was refused for 'torch.unflatten', "not one an RVM graph uses"."""
    code = next(n for n in zipfile.ZipFile(sequence_ts).namelist() if n.endswith(".py") and "__torch__" in n)
    assert b"torch.unflatten(" in zipfile.ZipFile(sequence_ts).read(code)
    inspect_artifact(sequence_ts, "torchscript")
    assert torch.jit.load(str(sequence_ts))(torch.zeros(2, 3, 3, 8, 8)).shape == (2, 3, 4, 8, 8)


def _with_code(good: Path, bad: Path, code: str) -> Path:
    def edit(name: str, data: bytes) -> bytes:
        return data + b"\n" + code.encode() if name.endswith(".py") and "__torch__" in name else data

    return rewrite_zip(good, bad, edit)


@pytest.mark.parametrize(
    "code, expected",
    [
        ("def f(p: str) -> Tensor:\n  return torch.from_file(p, True, 64)\n", ["'torch.from_file'", "maps a file"]),
        ("def f(p: str) -> Tensor:\n  return ops.aten.from_file(p, True, 64)\n", ["'ops.aten.from_file'"]),
        ("def f(x: Tensor) -> None:\n  torch.save(x, '/tmp/x')\n", ["'torch.save'", "writes a file"]),
        ("def f(x: str) -> None:\n  print(x)\n", ["'print'", "prints"]),
        ("def f(x: str) -> None:\n  ops.prim.Print(x)\n", ["'ops.prim.Print'", "prints"]),
        ("def f(x: str) -> None:\n  torch.warn(x)\n", ["'torch.warn'", "stderr"]),
        ("def f(x: str) -> None:\n  x.warn()\n", ["method 'warn'", "stderr"]),
        ("def f(x: str) -> None:\n  ops.prim.rpc_async(x)\n", ["'ops.prim.rpc_async'", "another process"]),
        ("def f(x: Tensor) -> Tensor:\n  return ops.profiler._record_function_enter(x)\n", ["'profiler' namespace"]),
        ("def f(x: Tensor) -> Tensor:\n  return ops.debugprims.load_tensor(x)\n", ["'debugprims' namespace"]),
        ("def f(x: Tensor) -> Tensor:\n  return getattr(torch, 'from_file')(x)\n", ["'torch'", "not an operator"]),
        ("def f(x: Tensor) -> Tensor:\n  return torch.no_such_op(x)\n", ["'torch.no_such_op'", "registry"]),
        ("def f(x: Tensor) -> Tensor:\n  return eval(x)\n", ["'eval'", "builtins"]),
    ],
)
def test_torchscript_code_calling_what_can_act_is_refused(
    sequence_ts: Path, tmp_path: Path, code: str, expected: list
) -> None:
    refused(_with_code(sequence_ts, tmp_path / "bad.torchscript", code), "torchscript", *expected)


def test_torchscript_code_of_ordinary_compute_passes(sequence_ts: Path, tmp_path: Path) -> None:
    code = (
        "def f(x: Tensor, y: Tensor) -> Tensor:\n  _0 = torch.einsum('ij,jk->ik', [x, y])\n"
        "  _1 = torch.flip(torch.softmax(_0, -1), [0])\n  return torch.unflatten(_1, 0, [1, int(len([1]))])\n"
    )
    inspect_artifact(_with_code(sequence_ts, tmp_path / "ok.torchscript", code), "torchscript")


# --- .pt2 node targets ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sequence_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pt2") / "sequence.pt2"
    torch.export.save(torch.export.export(_Sequence(), (torch.zeros(2, 3, 3, 8, 8),)), str(path))
    return path


def test_pt2_calling_unflatten_passes(sequence_pt2: Path) -> None:
    inspect_artifact(sequence_pt2, "pt2")


def _edit_program(good: Path, bad: Path, edit: Callable[[dict], None]) -> Path:
    def rewrite(name: str, data: bytes) -> bytes:
        if "/models/" not in name:
            return data
        program = json.loads(data)
        edit(program)
        return json.dumps(program).encode()

    return rewrite_zip(good, bad, rewrite)


@pytest.mark.parametrize(
    "target, expected",
    [
        ("torch.ops.aten.from_file.default", "maps a file"),
        ("torch.ops.prim.Print.default", "prints"),
        ("torch.ops.profiler._record_function_enter.default", "'profiler' namespace"),
        ("torch.ops.higher_order.print", "higher-order operator"),
        ("torch.ops.higher_order.call_torchbind", "higher-order operator"),
        ("torch.serialization.load", "not an operator"),  # the deserializer walks attributes from `torch`
        ("torch.from_file", "not an operator"),
        ("_operator.methodcaller", "not an operator"),
        ("math.__builtins__", "not an operator"),
        ("#my_extension", "not an operator"),
    ],
)
def test_pt2_target_that_can_act_is_refused(sequence_pt2: Path, tmp_path: Path, target: str, expected: str) -> None:
    def edit(program: dict) -> None:
        node = next(n for n in program["graph_module"]["graph"]["nodes"] if "unflatten" in n["target"])
        node["target"] = target

    refused(_edit_program(sequence_pt2, tmp_path / "bad.pt2", edit), "pt2", repr(target), expected)


def test_pt2_operator_passed_as_an_argument_is_checked(sequence_pt2: Path, tmp_path: Path) -> None:
    def edit(program: dict) -> None:
        node = next(n for n in program["graph_module"]["graph"]["nodes"] if "unflatten" in n["target"])
        node["target"] = "torch.ops.higher_order.auto_functionalized"
        node["inputs"].insert(0, {"name": "_op", "arg": {"as_operator": "torch.ops.aten.save.default"}})

    refused(_edit_program(sequence_pt2, tmp_path / "bad.pt2", edit), "pt2", "'torch.ops.aten.save.default'")
