"""A missing optional dependency is one line naming the extra to install, exit 2: for rvm-convert and
``rvm-export --help`` here, for every rvm-export target and runner in tests/test_conformance.py; each command
runs in a subprocess where the import fails (tests/helpers.py: run_blocked)."""

from pathlib import Path

from rvm_export import extras
from tests.helpers import assert_one_line, run_blocked


def test_every_target_names_known_extras() -> None:
    from rvm_export.targets import TARGETS

    for name in TARGETS:
        for command in ("rvm-export", "runner"):
            extra = extras.needs(command, name)
            assert extra is None or extra in extras.EXTRA_MODULES, (command, name, extra)
    assert extras.needs("rvm-convert", "") == "video"


def test_help_lists_a_target_whose_extra_is_missing(tmp_path: Path) -> None:
    result = run_blocked("rvm-export", ["--help"], "tensorflow", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tensorflow" in result.stdout and "onnx" in result.stdout


def test_rvm_convert_names_the_video_extra(tmp_path: Path, weights_path: Path) -> None:
    args = ["--checkpoint", str(weights_path), "--input-source", "in.mp4", "--output-alpha", "pha.mp4"]
    result = run_blocked("rvm-convert", args, "av", tmp_path)
    assert_one_line(result, "rvm-convert", "rvm-convert", "video", "av")
    assert list(tmp_path.iterdir()) == []


def test_an_unrelated_import_error_is_not_blamed_on_an_extra() -> None:
    assert extras.explain("rvm-export", "onnx", ModuleNotFoundError("x", name="export.nonexistent")) is None
    assert "the onnx extra" in extras.explain("rvm-convert", "", ModuleNotFoundError("x", name="onnxruntime.capi"))
