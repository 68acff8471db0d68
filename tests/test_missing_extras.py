"""A missing optional dependency is one line naming the extra to install, exit 2, for every rvm-export
target, every runner kind of rvm-verify and for rvm-convert; each command runs in a subprocess where
the import fails (tests/data/block_imports/sitecustomize.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rvm_export.contract import extras

BLOCKER = Path(__file__).parent / "data" / "block_imports"
BIN = Path(sys.executable).parent


def run(command: str, args: list, blocked: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(BLOCKER), RVM_BLOCK_IMPORTS=blocked)
    return subprocess.run([str(BIN / command), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def assert_one_line(result: subprocess.CompletedProcess, command: str, subject: str, extra: str, module: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == (
        f"{command}: error: {subject} needs the {extra} extra (no module named {module!r}): "
        f"pip install 'rvm-export[{extra}]'"
    )


@pytest.mark.parametrize(
    "target, args, blocked, extra",
    [
        ("onnx", [], "onnxruntime", "onnx"),
        ("coreml", ["--resolution", "64", "48", "--downsample-ratio", "0.5"], "coremltools", "coreml"),
        ("tensorflow", [], "tensorflow", "tensorflow"),
        ("tfjs", [], "tensorflow", "tfjs"),
    ],
)
def test_rvm_export_names_the_extra(tmp_path: Path, target: str, args: list, blocked: str, extra: str) -> None:
    result = run("rvm-export", [target, "--seed", "0", *args, "--output", str(tmp_path / "out")], blocked, tmp_path)
    assert_one_line(result, "rvm-export", f"rvm-export {target}", extra, blocked)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_every_target_names_known_extras() -> None:
    from rvm_export.targets import TARGETS

    for name in TARGETS:
        for command in ("rvm-export", "runner"):
            extra = extras.needs(command, name)
            assert extra is None or extra in extras.EXTRA_MODULES, (command, name, extra)
    assert extras.needs("rvm-convert", "") == "video"


def test_help_lists_a_target_whose_extra_is_missing(tmp_path: Path) -> None:
    result = run("rvm-export", ["--help"], "tensorflow", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tensorflow" in result.stdout and "onnx" in result.stdout


@pytest.mark.parametrize(
    "kind, file, blocked, extra",
    [
        ("onnx", "m.onnx", "onnxruntime", "onnx"),
        ("coreml", "m.mlmodel", "coremltools", "coreml"),
        ("tensorflow", "saved/saved_model.pb", "tensorflow", "tensorflow"),
    ],
)
def test_rvm_verify_names_the_extra(tmp_path: Path, kind: str, file: str, blocked: str, extra: str) -> None:
    artifact = tmp_path / file  # only its name matters: the runner is never reached
    artifact.parent.mkdir(exist_ok=True)
    artifact.write_bytes(b"x")
    target = artifact.parent if kind == "tensorflow" else artifact
    result = run("rvm-verify", [str(target), "--json", str(tmp_path / "r.json")], blocked, tmp_path)
    assert_one_line(result, "rvm-verify", f"running {kind} artifacts", extra, blocked)
    assert not (tmp_path / "r.json").exists()


def test_rvm_convert_names_the_video_extra(tmp_path: Path, weights_path: Path) -> None:
    args = ["--checkpoint", str(weights_path), "--input-source", "in.mp4", "--output-alpha", "pha.mp4"]
    result = run("rvm-convert", args, "av", tmp_path)
    assert_one_line(result, "rvm-convert", "rvm-convert", "video", "av")
    assert list(tmp_path.iterdir()) == []


def test_an_unrelated_import_error_is_not_blamed_on_an_extra() -> None:
    assert extras.explain("rvm-export", "onnx", ModuleNotFoundError("x", name="export.nonexistent")) is None
    assert "the onnx extra" in extras.explain("rvm-convert", "", ModuleNotFoundError("x", name="onnxruntime.capi"))
