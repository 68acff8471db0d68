"""An OS error while writing an artifact (rvm-export) or a report (rvm-verify --json) is one line on
stderr, exit 2, and no partial file. (rvm-convert's are in tests/inference/test_bad_input.py.)
Tests run as root, which passes permission checks: /proc, a folder and a path under a file really fail."""

import errno
import os
import pathlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from rvm_export.export.cli import main as export_main
from rvm_export.verify import harness
from rvm_export.verify.cli import main as verify_main


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def one_error_line(output: str, prog: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith(f"{prog}: error:")]
    assert len(errors) == 1, output
    assert "Traceback" not in output
    return errors[0]


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def blocked_paths(tmp_path: Path) -> dict:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_folder.onnx").mkdir()
    (tmp_path / "a_folder.json").mkdir()
    return {
        "special filesystem": ("/proc/rvm.onnx", "cannot write to /proc"),
        "path is a folder": (str(tmp_path / "a_folder.onnx"), "is a folder"),
        "under a file": (str(tmp_path / "a_file" / "rvm.onnx"), "cannot create the folder"),
    }


@pytest.mark.parametrize("case", ["special filesystem", "path is a folder", "under a file"])
def test_rvm_export_unwritable_output(tmp_path: Path, weights_path: Path, blocked_paths: dict, case: str) -> None:
    output, message = blocked_paths[case]
    result = CliRunner().invoke(export_main, ["onnx", "--checkpoint", str(weights_path), "--output", output])
    assert result.exit_code == 2
    assert message in one_error_line(result.output, "rvm-export")
    assert leftovers(tmp_path) == ["a_file", "a_folder.json", "a_folder.onnx"]
    assert not list((tmp_path / "a_folder.onnx").iterdir())
    assert not Path("/proc/rvm.onnx").exists()


def test_rvm_export_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pathlib.Path, "write_bytes", no_space)
    result = CliRunner().invoke(
        export_main, ["torchscript", "--seed", "0", "--output", str(tmp_path / "m.torchscript")]
    )
    assert result.exit_code == 2
    assert "No space left on device" in one_error_line(result.output, "rvm-export")
    assert leftovers(tmp_path) == []


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("artifact") / "m.torchscript"
    result = CliRunner().invoke(export_main, ["torchscript", "--seed", "0", "--output", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def tiny_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "DEFAULT_CASES", ((64, 48, 1, 0.5),))


@pytest.mark.parametrize("case", ["special filesystem", "path is a folder", "under a file"])
def test_rvm_verify_unwritable_report(
    tmp_path: Path, artifact: Path, blocked_paths: dict, case: str, tiny_cases: None
) -> None:
    output, message = blocked_paths[case]
    result = CliRunner().invoke(
        verify_main, [str(artifact), "--frames", "2", "--json", output.replace(".onnx", ".json")]
    )
    assert result.exit_code == 2
    line = one_error_line(result.output, "rvm-verify")
    assert message in line and "choose another --json path" in line
    assert "PASS" not in result.output, "refused before verifying"


def test_rvm_verify_disk_full(
    tmp_path: Path, artifact: Path, tiny_cases: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pathlib.Path, "write_bytes", no_space)
    result = CliRunner().invoke(verify_main, [str(artifact), "--frames", "2", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 2
    assert "No space left on device" in one_error_line(result.output, "rvm-verify")
    assert leftovers(tmp_path) == []
