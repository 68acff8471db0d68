"""One error root: every error a user can fix is an RVMError; library messages name parameters, never
command-line flags, and the command lines add the flag of the option concerned."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from rvm_export.contract.errors import (
    USER_ERRORS,
    ExportError,
    InferenceError,
    MissingExtraError,
    RunnerError,
    RVMError,
    UnknownArtifactError,
    cli_message,
    first_line,
)
from rvm_export.export.cli import main as export_main
from rvm_export.export.coreml import format_for
from rvm_export.targets import target_of


def test_every_error_class_has_the_one_root() -> None:
    for cls in (ExportError, RunnerError, InferenceError, UnknownArtifactError, MissingExtraError):
        assert issubclass(cls, RVMError) and issubclass(cls, USER_ERRORS)
    assert issubclass(MissingExtraError, ImportError), "callers may still catch it as an ImportError"


def test_library_message_names_no_flag_and_the_cli_adds_it(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as caught:
        format_for("m.mlmodel", "mlprogram")
    assert "--" not in str(caught.value) and caught.value.option == "format"
    assert cli_message(caught.value) == f"{caught.value} (--format)"

    result = CliRunner().invoke(
        export_main, ["coreml", "--seed", "0", "--resolution", "64", "48", "--downsample-ratio", "0.5",
                      "--format", "mlprogram", "--output", str(tmp_path / "m.mlmodel")]
    )  # fmt: skip
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if line.startswith("rvm-export: error:")]
    assert line.endswith("(--format)") and "contradicts m.mlmodel" in line


def test_an_unknown_artifact_is_a_user_error(tmp_path: Path) -> None:
    strange = tmp_path / "model.weights"
    strange.write_bytes(b"")
    with pytest.raises(UnknownArtifactError, match="cannot tell what kind of artifact"):
        target_of(strange)


def test_cli_message_and_first_line_never_fail_on_an_empty_message() -> None:
    assert cli_message(RunnerError("plain")) == "plain"
    assert cli_message(RuntimeError()) == "RuntimeError"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(ValueError("first\nsecond")) == "first"
