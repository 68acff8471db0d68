"""The one error root: every error a user can fix (bad input, an unusable artifact, a missing extra) is an
:class:`RVMError`, and the command lines turn exactly these into one line on stderr and exit code 2.

Messages name the problem and the fix in terms a Python caller understands; ``option`` names the
parameter the error concerns, and only the command lines add its flag (``--output``). ``model/`` knows
nothing of this package, so its :class:`~model.CheckpointError` is not a subclass: :data:`USER_ERRORS`
is what a command line catches.
"""

from typing import Any, Optional


class RVMError(Exception):
    """An error the user can fix; the message says how."""

    def __init__(self, message: str, option: Optional[str] = None) -> None:
        super().__init__(message)
        self.option = option  # the parameter concerned ("output", "static"), for the command line's flag hint


class ExportError(RVMError):
    """An export that cannot be done as asked."""


class RunnerError(RVMError):
    """An artifact that cannot be opened or run as asked (not found, refused, damaged, wrong device)."""


class InferenceError(RVMError, ValueError):
    """convert_video's input or outputs cannot be used as given."""


class UnknownArtifactError(RVMError, ValueError):
    """A path that no registered target's artifacts look like."""


class MissingExtraError(RVMError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def __getattr__(name: str) -> Any:
    """``USER_ERRORS``, made on first use: importing ``model`` imports PyTorch, which a runtime's child process
    (rvm_export.runtimes.child) does not need, and which this module otherwise never touches."""
    if name == "USER_ERRORS":
        from model import CheckpointError

        return (RVMError, CheckpointError)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of ``exc``'s message (a runtime's multi-page error), or its type when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def cli_message(exc: BaseException) -> str:
    """The one line a command prints for ``exc``: its message, plus the flag of the option it concerns."""
    option = getattr(exc, "option", None)
    text = str(exc) or type(exc).__name__
    return f"{text} (--{option.replace('_', '-')})" if option else text


__all__ = [
    "ExportError",
    "InferenceError",
    "MissingExtraError",
    "RVMError",
    "RunnerError",
    "UnknownArtifactError",
    "cli_message",
]
