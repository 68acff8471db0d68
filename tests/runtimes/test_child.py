"""The confined child process every runtime runs in (rvm_export/runtimes/child.py, sandbox.py).

The runners here (tests/runtimes/child_runners.py) act directly, as a runtime reading a hostile file would: no
inspection stands in the way, so what refuses them is the kernel (Landlock, the child's own network namespace,
its resource limits). And the child's own behaviour: answers and states come back, a death is one line naming
the signal and the stage, its imports stay free of PyTorch."""

import os
import socket
import uuid
from pathlib import Path

import numpy as np
import pytest

from rvm_export.runtimes import RunnerError
from rvm_export.runtimes.child import ChildFailure, ChildRunner, base_policy
from rvm_export.runtimes.sandbox import available
from tests.helpers import REPO, require

pytestmark = pytest.mark.skipif(not available()[0], reason=f"no confinement here: {available()[1]}")


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    folder = tmp_path / "artifact"
    folder.mkdir()
    (folder / "model.test").write_bytes(b"a model")
    return folder / "model.test"


def child(artifact: Path, monkeypatch: pytest.MonkeyPatch, mode: str, target: str = "", cls: str = "ActingRunner"):
    monkeypatch.setenv("RVM_TEST_MODE", mode)
    monkeypatch.setenv("RVM_TEST_TARGET", target)
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the child imports tests.runtimes.child_runners
    policy = base_policy(artifact, "<scratch>")
    policy.read.append(str(REPO / "tests"))
    policy.list_only.append(str(REPO))
    return ChildRunner("test", f"tests.runtimes.child_runners:{cls}", artifact, None, None, policy)


def denied(artifact: Path, monkeypatch: pytest.MonkeyPatch, mode: str, target: str) -> str:
    with pytest.raises(RunnerError) as caught:
        child(artifact, monkeypatch, mode, target).close()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_answers_and_states_come_back_and_close_is_idempotent(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = child(artifact, monkeypatch, "echo")
    try:
        assert runner.confined and runner.confinement.startswith("Landlock ABI")
        state = runner.initial_state(1)
        for size in (2, 64, 8, 300):  # the shared buffers grow (and are mapped again) on both sides
            frame = np.random.default_rng(size).random((1, 3, size, size), np.float32)
            outputs, state = runner.infer(frame, state, 0.5)
            assert np.array_equal(outputs["fgr"], frame * 2) and outputs["pha"].dtype == np.float16
        assert float(outputs["r1o"][0, 0]) == 11.0  # 7 + one per frame: the state stayed in the child
    finally:
        runner.close()
        runner.close()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("abort at load", "test crashed (SIGABRT) loading model.test"), ("refuse at load", "the test model refuses")],
)
def test_a_load_that_dies_or_refuses_is_one_line(artifact: Path, monkeypatch: pytest.MonkeyPatch, mode: str, expected: str) -> None:  # fmt: skip
    with pytest.raises(RunnerError) as caught:
        child(artifact, monkeypatch, mode)
    assert str(caught.value).startswith(expected) and "\n" not in str(caught.value), caught.value


def test_a_crash_mid_run_names_the_frame_signal_and_what_the_runtime_said(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    runner = child(artifact, monkeypatch, "abort on frame 2")
    try:
        state = runner.initial_state(1)
        _, state = runner.infer(np.full((1, 3, 2, 2), 1.0, np.float32), state, 1.0)
        with pytest.raises(RunnerError) as caught:
            runner.infer(np.full((1, 3, 2, 2), 2.0, np.float32), state, 1.0)
    finally:
        runner.close()
    message = str(caught.value)
    assert message.startswith("test crashed (SIGABRT) on frame 2 of model.test (test said: free(): invalid pointer)")
    assert "docs/security.md" in message and "\n" not in message


def test_a_runtime_error_stays_a_failure_of_the_artifact(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a RunnerError (bad input, exit 2): the rollout reports it as the artifact failing on that frame."""
    runner = child(artifact, monkeypatch, "raise on frame 2")
    try:
        state = runner.initial_state(1)
        _, state = runner.infer(np.full((1, 3, 2, 2), 1.0, np.float32), state, 1.0)
        with pytest.raises(ChildFailure, match="a broken artifact's own error"):
            runner.infer(np.full((1, 3, 2, 2), 2.0, np.float32), state, 1.0)
    finally:
        runner.close()


def test_reading_outside_the_artifact_folder_is_denied(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = artifact.parent.parent / "secret.txt"
    secret.write_text(uuid.uuid4().hex)
    for target in (secret, Path("/etc/passwd"), Path.home() / ".bashrc"):
        if target.exists():
            message = denied(artifact, monkeypatch, "read", str(target))
            assert (
                message.startswith("the sandbox denied test loading model.test") and secret.read_text() not in message
            )


def test_writing_outside_the_scratch_folder_is_denied(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for target in (artifact.parent / "marker", artifact.parent.parent / "marker", Path("/tmp") / uuid.uuid4().hex):
        assert "the sandbox denied" in denied(artifact, monkeypatch, "write", str(target))
        assert not target.exists()


def test_starting_a_program_is_denied(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "the sandbox denied" in denied(artifact, monkeypatch, "exec", "/bin/sh")


def test_tcp_abstract_sockets_signals_and_other_processes_are_out_of_reach(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.1)
        assert "the sandbox denied" in denied(artifact, monkeypatch, "connect", str(server.getsockname()[1]))
        with pytest.raises(socket.timeout):
            server.accept()
    name = f"rvm-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind("\0" + name)
        listener.listen()
        listener.settimeout(0.1)
        with pytest.raises((RunnerError, ChildFailure)):  # its own namespace has no such socket; Landlock scopes it
            child(artifact, monkeypatch, "abstract", name).close()
        with pytest.raises(socket.timeout):
            listener.accept()
    for mode in ("signal", "environ"):  # its own /proc and PID namespace have no such process; Landlock scopes both
        with pytest.raises((RunnerError, ChildFailure)):
            child(artifact, monkeypatch, mode, str(os.getpid())).close()


def test_a_hang_is_killed_at_the_timeout_with_one_line(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RVM_CHILD_TIMEOUT", "3")
    with pytest.raises(RunnerError, match=r"test did not answer within 3 s loading model.test: killed"):
        child(artifact, monkeypatch, "hang")


def test_the_memory_limit_is_one_line(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RVM_SANDBOX_MEMORY_MB", "300")
    with pytest.raises(RunnerError, match="ran out of its memory limit"):
        child(artifact, monkeypatch, "memory", "600")


def test_the_child_imports_the_native_runners_without_pytorch(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What keeps a native runtime's child start well under a second (PyTorch alone takes ~3 s to import here)."""
    require("ncnn")
    require("MNN")
    runner = child(artifact, monkeypatch, "", cls="NativeImports")
    try:
        assert runner.describe() == "torch imported: False" and runner.fixed_ratio() == 0.5
    finally:
        runner.close()


def test_without_confinement_the_runner_says_so_and_can_be_refused(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("RVM_SANDBOX", "off")
    runner = child(artifact, monkeypatch, "echo")
    try:
        assert not runner.confined and runner.confinement.startswith("NOT CONFINED: RVM_SANDBOX=off")
    finally:
        runner.close()
    policy = base_policy(artifact, "<scratch>")
    with pytest.raises(RunnerError, match="cannot be confined here"):
        ChildRunner("test", "tests.runtimes.child_runners:ActingRunner", artifact, None, None, policy, True)


def test_a_hostile_torchscript_that_no_inspection_stopped_meets_the_kernel(tmp_path: Path, artifacts) -> None:  # noqa: ANN001
    """Finding 2 of issue 26 (a forward that copies a secret with torch.from_file), opened with the inspection
    skipped: the read of the secret and the write of the copy are the kernel's to refuse, and it does."""
    from tests.security import hostile

    secret, marker = tmp_path / "secret.txt", tmp_path / "copy.txt"
    secret.write_text(uuid.uuid4().hex)
    folder = tmp_path / "artifact"
    folder.mkdir()
    good = artifacts.export("torchscript", "rvm_mobilenetv3_fp32.torchscript")
    path = hostile.torchscript_network_uppercase(good, folder, hostile.Bait(secret, marker))
    policy = base_policy(path, "<scratch>")
    runner = ChildRunner("torchscript", "rvm_export.runtimes.torch_runner:TorchScriptRunner", path, None, None, policy)
    try:
        state = runner.initial_state(1)
        with pytest.raises(RunnerError) as caught:
            runner.infer(np.zeros((1, 3, 64, 64), np.float32), state, 0.5)
    finally:
        runner.close()
    assert str(caught.value).startswith("the sandbox denied torchscript on frame 1 of network_uppercase.torchscript")
    assert not marker.exists() and secret.read_text() not in str(caught.value)


def test_an_unconfined_run_says_so_first_and_require_sandbox_refuses_it(artifacts, monkeypatch) -> None:  # noqa: ANN001
    from click.testing import CliRunner

    from rvm_export.verify.cli import main as verify_main

    path = str(artifacts.onnx("fp32"))
    small = ["--frames", "2", "--size", "64x48", "--ratio", "0.5"]
    monkeypatch.delenv("RVM_REQUIRE_SANDBOX", raising=False)
    confined = CliRunner().invoke(verify_main, [path, *small])
    assert confined.exit_code == 0 and "\nsandbox   Landlock ABI" in confined.output, confined.output
    monkeypatch.setenv("RVM_SANDBOX", "off")  # as on a kernel without Landlock
    result = CliRunner().invoke(verify_main, [path, *small])
    assert result.exit_code == 0 and result.output.startswith("WARNING   the runtime ran unconfined"), result.output
    refused = CliRunner().invoke(verify_main, [path, *small, "--require-sandbox"])
    assert refused.exit_code == 2 and "cannot be run confined here" in refused.output, refused.output
    assert len(refused.output.strip().splitlines()) == 1
