"""The child process that ncnn and MNN models run in (rvm_export/runtimes/isolated.py): its answers come back,
its death is one RunnerError line naming the signal and the stage, and its imports stay free of PyTorch."""

import numpy as np
import pytest

from rvm_export.runtimes import RunnerError
from rvm_export.runtimes.isolated import IsolatedModel
from tests.helpers import REPO, require

SERVE = "tests.runtimes.isolated_children:serve"
PATH = REPO / "model.test"  # named in the messages only


def test_answers_come_back_and_close_is_idempotent() -> None:
    model = IsolatedModel("test", PATH, SERVE, "echo")
    try:
        assert model.description == "test child (echo)"
        for size in (2, 64, 8, 300):  # the shared buffers grow (and are mapped again) on both sides
            frame = np.random.default_rng(size).random((1, 3, size, size), np.float32)
            doubled, state = model.run([frame, frame[:, :1].astype(np.float16)])
            assert (
                np.array_equal(doubled, frame * 2) and state.dtype == np.float16 and state.shape == (1, 1, size, size)
            )
    finally:
        model.close()
        model.close()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("abort at load", "test crashed (SIGABRT) loading model.test"),
        ("refuse at load", "the test model refuses to load"),
    ],
)
def test_a_load_that_dies_or_refuses_is_one_line(mode: str, expected: str) -> None:
    with pytest.raises(RunnerError) as caught:
        IsolatedModel("test", PATH, SERVE, mode)
    assert str(caught.value).startswith(expected) and "\n" not in str(caught.value), caught.value


def test_a_crash_mid_run_names_the_frame_signal_and_what_the_runtime_said() -> None:
    model = IsolatedModel("test", PATH, SERVE, "abort on frame 2")
    try:
        model.run([np.asarray([1.0])])
        with pytest.raises(RunnerError) as caught:
            model.run([np.asarray([2.0])])
    finally:
        model.close()
    message = str(caught.value)
    assert message.startswith("test crashed (SIGABRT) on frame 2 of model.test (test said: free(): invalid pointer)")
    assert "docs/security.md" in message and "\n" not in message


def test_the_child_imports_the_native_runners_without_pytorch() -> None:
    """What keeps a child's start well under a second (PyTorch alone takes ~3 s to import here)."""
    require("ncnn")
    require("MNN")
    model = IsolatedModel("test", PATH, SERVE, "modules")
    try:
        (torch_imported,) = model.run([np.zeros(1)])
    finally:
        model.close()
    assert not bool(torch_imported)
