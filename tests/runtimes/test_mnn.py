"""MNN beyond the conformance suite: the converter's entry point (never ``MNN.tools``), the contract inside the
file, and the inspector.

The fp32 artifact is the conformance suite's (the session's ``artifacts`` cache, real weights)."""

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from rvm_export.contract import INPUT_NAMES, OUTPUT_NAMES, ArtifactMetadata
from rvm_export.contract.errors import RunnerError
from rvm_export.runtimes.inspection import inspect_artifact
from rvm_export.runtimes.inspection_readers import FlatbufferReader
from rvm_export.runtimes.mnn_format import read_mnn
from tests.helpers import REPO, ArtifactCache, require
from tests.runtimes.mnn_edits import NAME


@pytest.fixture()
def good(artifacts: ArtifactCache) -> Path:
    require("MNN")
    require("onnx")
    return artifacts.export("mnn", NAME)


def test_nothing_imports_mnn_tools() -> None:
    """MNN.tools' logging module pip-installs a package and posts statistics when imported (docs/mnn.md)."""
    require("MNN")
    code = (
        "import sys, rvm_export.export.mnn, rvm_export.runtimes.mnn\n"
        "print(sorted(m for m in sys.modules if m.startswith(('MNN.tools', 'aliyun'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_file_carries_the_contract(good: Path) -> None:
    net = read_mnn(good.read_bytes())
    metadata = ArtifactMetadata.from_json(net.biz_code)
    assert metadata.format == "mnn" and metadata.precision == "fp32"
    assert set(INPUT_NAMES) | set(OUTPUT_NAMES) <= set(net.main.tensors)
    assert net.output_names == list(OUTPUT_NAMES)
    assert len(net.subgraphs) == 2  # the refiner's If: one branch with it, one without


def _forged(good: Path, tmp: Path, edit: str) -> Path:
    data = bytearray(good.read_bytes())
    reader = FlatbufferReader(bytes(data))
    ops = reader.tables(reader.u32(0), 3)
    convs = [op for op in ops if reader.scalar("i", reader.field(op, 5)) == 12]  # a Convolution
    if edit == "plugin":
        struct.pack_into("<i", data, reader.field(convs[0], 5), 256)
    else:
        start, _ = reader.vector(convs[0], 0, 4)
        struct.pack_into("<i", data, start, 1 << 20)
    path = tmp / f"{edit}.mnn"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    "edit, expected",
    [("plugin", "is a Plugin op: it runs code the app registers"), ("index", "refers to tensor 1048576")],
)
def test_the_inspector_refuses_what_mnn_would_act_on(good: Path, tmp_path: Path, edit: str, expected: str) -> None:
    inspect_artifact(good, "mnn")
    path = _forged(good, tmp_path, edit)
    with pytest.raises(RunnerError) as info:
        inspect_artifact(path, "mnn")
    message = str(info.value)
    assert message.startswith(f"refusing to run {path}: ") and expected in message and "\n" not in message
    truncated = tmp_path / "truncated.mnn"
    truncated.write_bytes(good.read_bytes()[:4096])
    with pytest.raises(RunnerError, match="not an MNN model read as rvm-export writes it"):
        inspect_artifact(truncated, "mnn")
