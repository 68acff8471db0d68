"""The checkpoint an artifact names (issue 26 item 4, issue 29 item 2): found by sha256 only where the verifier
looks (./checkpoints, the repository's, the shared weights, the artifact's folder), a regular file of bounded
size, unpickled with weights_only; anything else is one line that does not say whether a path exists."""

import json
import os
import pickle
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from model import CheckpointError, sha256_file
from rvm_export.contract import ArtifactMetadata
from rvm_export.contract import checkpoints as lookup
from rvm_export.contract.errors import RunnerError
from rvm_export.runtimes.torch_runner import reference_model

OTHER_SHA = "0" * 64


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No default checkpoint folder holds anything: the working folder is empty and the defaults point nowhere."""
    monkeypatch.chdir(tmp_path)
    for variant in list(lookup.DEFAULT_CHECKPOINTS):
        monkeypatch.setitem(lookup.DEFAULT_CHECKPOINTS, variant, [tmp_path / "defaults" / f"rvm_{variant}.pth"])
    folder = tmp_path / "release"
    folder.mkdir()
    return folder


def metadata(checkpoint: object, sha256: str) -> ArtifactMetadata:
    return ArtifactMetadata("onnx", "mobilenetv3", "fast_guided_filter", "fp32", checkpoint, sha256)  # type: ignore[arg-type]


def refused(meta: ArtifactMetadata, artifact: Path, timeout: float = 60) -> str:
    """reference_model's one-line refusal, within ``timeout`` seconds (a /proc file read forever fails here)."""
    outcome: dict = {}

    def call() -> None:
        try:
            reference_model(meta, artifact=artifact)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome["exc"] = exc

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), f"reference_model hung on the checkpoint {meta.checkpoint!r}"
    exc = outcome.get("exc")
    assert isinstance(exc, RunnerError), repr(exc)
    message = str(exc)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize("named", ["/proc/self/pagemap", "/proc/self/mem", "/etc/passwd", "../../../etc/passwd"])
def test_a_path_in_the_metadata_is_never_opened(isolated: Path, weights_path: Path, named: str) -> None:
    """Even with the real weights' sha256: a path names only a file name looked up in the search folders."""
    message = refused(metadata(named, sha256_file(weights_path)), isolated / "a.onnx")
    assert "/proc" not in message and "/etc" not in message and "not found" not in message
    assert sha256_file(weights_path) in message and "--checkpoint" not in message  # the CLI adds the flag


def test_the_message_does_not_say_whether_the_file_exists(isolated: Path) -> None:
    absent = refused(metadata("rvm_mobilenetv3.pth", OTHER_SHA), isolated / "a.onnx")
    (isolated / "rvm_mobilenetv3.pth").write_bytes(b"not these bytes")  # exists, wrong hash
    os.mkfifo(isolated / "other.pth")  # a FIFO: skipped without blocking
    (isolated / "big.pth").symlink_to("/proc/self/pagemap")  # a link out of the folder: skipped
    assert refused(metadata("rvm_mobilenetv3.pth", OTHER_SHA), isolated / "a.onnx") == absent
    assert "'rvm_mobilenetv3.pth'" in absent and OTHER_SHA in absent and "put it there" in absent


def test_found_by_sha256_in_the_artifacts_folder_under_another_name(isolated: Path, weights_path: Path) -> None:
    shutil.copy(weights_path, isolated / "renamed.pth")
    model = reference_model(metadata("rvm_mobilenetv3.pth", sha256_file(weights_path)), artifact=isolated / "a.onnx")
    assert model.variant == "mobilenetv3"


def test_found_in_the_working_folders_checkpoints(isolated: Path, weights_path: Path) -> None:
    (Path.cwd() / "checkpoints").mkdir()
    shutil.copy(weights_path, Path.cwd() / "checkpoints" / "rvm_mobilenetv3.pth")
    meta = metadata("/home/builder/rvm_mobilenetv3.pth", sha256_file(weights_path))  # an older artifact's path
    assert reference_model(meta).variant == "mobilenetv3"


def test_a_link_in_the_artifacts_folder_cannot_point_outside(isolated: Path, weights_path: Path) -> None:
    (isolated / "rvm_mobilenetv3.pth").symlink_to(weights_path)
    refused(metadata("rvm_mobilenetv3.pth", sha256_file(weights_path)), isolated / "a.onnx")


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch marker",))


def test_a_pickle_with_the_recorded_hash_is_not_run(isolated: Path) -> None:
    """weights_only=True: a checkpoint whose hash matches (the attacker shipped both) still cannot run code."""
    hostile = isolated / "rvm_mobilenetv3.pth"
    hostile.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        reference_model(metadata(hostile.name, sha256_file(hostile)), artifact=isolated / "a.onnx")
    assert not (Path.cwd() / "marker").exists()


@pytest.mark.parametrize("given", ["/proc/self/pagemap", "/proc/self/mem", "fifo"])
def test_an_explicit_checkpoint_must_be_a_regular_file_of_bounded_size(isolated: Path, given: str) -> None:
    if given == "fifo":
        os.mkfifo(isolated / "fifo.pth")
        given = str(isolated / "fifo.pth")
    with pytest.raises(RunnerError, match="pass an RVM .pth file of at most 2 GiB"):
        reference_model(metadata("x.pth", OTHER_SHA), checkpoint=given)


def test_an_explicit_checkpoint_is_allowed_anywhere(isolated: Path, weights_path: Path) -> None:
    assert reference_model(metadata("x.pth", sha256_file(weights_path)), checkpoint=weights_path).refiner


def test_the_size_bound(weights_path: Path) -> None:
    with pytest.raises(lookup.CheckpointFileError, match="not between 1 byte and"):
        lookup.read_checkpoint(weights_path, limit=1 << 20)
    assert lookup.read_checkpoint(weights_path).sha256 == sha256_file(weights_path)


@pytest.mark.parametrize("named", ["/proc/self/pagemap", "/proc/self/mem"])
def test_rvm_verify_refuses_in_one_line(artifacts, tmp_path: Path, weights_path: Path, named: str) -> None:
    """The whole command: exit 2, one line, no traceback, quickly (it hung on pagemap)."""
    import onnx

    forged = tmp_path / "forged.onnx"
    model = onnx.load(str(artifacts.onnx()))
    for prop in model.metadata_props:
        if prop.key == "rvm_metadata.json":
            document = json.loads(prop.value)
            document |= {"checkpoint": named, "checkpoint_sha256": OTHER_SHA}  # no file anywhere has this hash
            prop.value = json.dumps(document)
    onnx.save(model, str(forged))
    command = [str(Path(sys.executable).parent / "rvm-verify"), str(forged), "--frames", "2", "--size", "64x48"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rvm-verify: error:"), result.stderr
    assert "/proc" not in lines[0] and "(--checkpoint)" in lines[0] and OTHER_SHA in lines[0]
