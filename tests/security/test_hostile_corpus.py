"""The hostile corpus (issue 26 item 6): ``rvm-verify ARTIFACT --frames 2 --size 128x96 --ratio 0.5`` on each
hostile artifact of ``hostile.py``, as a user runs it (the installed command, in its own process, so that a
crash is the command's and not pytest's), must end in exit 2 with one line on stderr, with no marker written
and no byte of a secret outside the artifact's folder found in its output or in any file it wrote.

Whether the inspection refuses the file or the confined child contains what it does is not asserted: either
is a pass (docs/security.md, the two lines of defence). Only docs/security.md's classes of attack, which the
inspection has always refused, must say "refusing to run".

The good artifacts are the session cache's real-weights exports that the conformance suite uses (free in a full
run); each hostile copy is built once per module, in the module's workspace, beside the secret."""

import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import pytest

from tests.helpers import ArtifactCache, require
from tests.runtimes import executorch_edits, mnn_edits
from tests.security import hostile
from tests.security.hostile import Bait

TIMEOUT = 90  # s: the longest a refusal or a contained crash may take on a loaded 2-core machine
COMMAND = ["--frames", "2", "--size", "128x96", "--ratio", "0.5"]


@dataclass(frozen=True)
class Case:
    good: Callable[[ArtifactCache], Optional[Path]]  # the good export it is made from (None: made by hand)
    build: Callable[[Optional[Path], Path, Bait], Path]  # hostile.py's function: (good, folder, bait) -> artifact
    modules: Tuple[str, ...] = ()  # what building or running it needs (skipped here when missing, failed in CI)
    says: str = ""  # a text the one line must hold


def export(target: str, name: str, *args: str) -> Callable[[ArtifactCache], Path]:
    return lambda artifacts: artifacts.export(target, name, *args)


PT2 = export("pt2", "rvm_mobilenetv3_fp32.pt2")
TORCHSCRIPT = export("torchscript", "rvm_mobilenetv3_fp32.torchscript")


def onnx_fp32(artifacts: ArtifactCache) -> Path:
    return artifacts.onnx("fp32")


REFUSED = "refusing to run"


def recorded(checkpoint: str) -> Callable[[Optional[Path], Path, Bait], Path]:
    """An ONNX model whose metadata names ``checkpoint``, with the secret's sha256 (no search folder holds it)."""
    return lambda good, folder, bait: hostile.onnx_recorded_checkpoint(
        good, folder / "recorded.onnx", checkpoint, hostile.sha256_of(bait.secret)
    )


CASES: Dict[str, Case] = {
    # The findings: each a working attack on the bare loader (hostile.py says how it was tried).
    "pt2-sample-inputs-uppercase-pickle": Case(PT2, hostile.pt2_sample_inputs_renamed),
    "pt2-second-program-JSON-sympify": Case(PT2, hostile.pt2_second_program_sympy),
    "torchscript-network-PY-copies-secret": Case(TORCHSCRIPT, hostile.torchscript_network_uppercase),
    "torchscript-CODE-folder-copies-secret": Case(TORCHSCRIPT, hostile.torchscript_code_uppercase),
    "openvino-Constant-past-the-bin-sigsegv": Case(
        export("openvino", "rvm_mobilenetv3_fp32.xml"), hostile.openvino_constant_past_the_bin, ("openvino",)
    ),
    "executorch-key-not-utf8-sigabrt": Case(
        export("executorch", executorch_edits.NAME, *executorch_edits.ARGS),
        hostile.executorch_key_not_utf8,
        ("executorch",),
    ),
    "litert-buffer-offset-wraps": Case(
        export("tflite", "rvm_mobilenetv3_fp32.tflite"), hostile.litert_buffer_offset_wraps, ("ai_edge_litert",)
    ),
    "metadata-checkpoint-proc-self-pagemap": Case(onnx_fp32, recorded("/proc/self/pagemap"), ("onnx",)),
    "metadata-checkpoint-proc-self-mem": Case(onnx_fp32, recorded("/proc/self/mem"), ("onnx",)),
    # docs/security.md's classes not already run through the command in tests/runtimes/test_inspection.py
    # (which does the SavedModel ReadFile/WriteFile and the TF.js ../ weights path).
    "torchscript-pickle-global-os-system": Case(TORCHSCRIPT, hostile.torchscript_pickle_global, says=REFUSED),
    "onnx-external-data-outside": Case(onnx_fp32, hostile.onnx_external_data_outside, ("onnx",), REFUSED),
    "onnx-custom-domain-op": Case(onnx_fp32, hostile.onnx_custom_domain, ("onnx",), REFUSED),
    "coreml-custom-layer": Case(lambda artifacts: None, hostile.coreml_custom_layer, ("coremltools",), REFUSED),
    "ncnn-custom-layer": Case(
        export("ncnn", "rvm_mobilenetv3_fp32_s0.5.ncnn.param", "--downsample-ratio", "0.5"),
        hostile.ncnn_custom_layer,
        ("ncnn", "pnnx"),
        REFUSED,
    ),
    "mnn-plugin-op": Case(export("mnn", mnn_edits.NAME), hostile.mnn_plugin_op, ("MNN", "onnx"), REFUSED),
}


@dataclass(frozen=True)
class Workspace:
    root: Path  # the artifacts' folders, the secret and the markers; the command's TMPDIR and cache are inside

    @property
    def secret(self) -> Path:
        return self.root / "secret.txt"

    def bait(self, case: str) -> Bait:
        return Bait(self.secret, self.root / f"marker-{case}")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    space = Workspace(tmp_path_factory.mktemp("hostile"))
    space.secret.write_text(f"rvm-secret-{secrets.token_hex(24)}\n")
    for folder in ("tmp", "cache"):
        (space.root / folder).mkdir()
    return space


@pytest.fixture(scope="module")
def corpus(artifacts: ArtifactCache, workspace: Workspace) -> Callable[[str], Path]:
    """``corpus(case)``: the hostile artifact of CASES[case], built once per module in its own folder."""
    built: Dict[str, Path] = {}

    def get(case: str) -> Path:
        if case not in built:
            spec = CASES[case]
            for module in spec.modules:
                require(module)
            folder = workspace.root / case
            folder.mkdir()
            built[case] = spec.build(spec.good(artifacts), folder, workspace.bait(case))
        return built[case]

    return get


def files(root: Path) -> Dict[Path, Tuple[int, int]]:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def verify(path: Path, workspace: Workspace) -> subprocess.CompletedProcess:
    """The installed ``rvm-verify PATH --frames 2 --size 128x96 --ratio 0.5``, run in the workspace, its
    temporary files and cache there too; a run past TIMEOUT (a hang) fails the test, its process group killed."""
    env = dict(os.environ, TMPDIR=str(workspace.root / "tmp"), RVM_VERIFY_CACHE=str(workspace.root / "cache"))
    command = [str(Path(sys.executable).parent / "rvm-verify"), str(path), *COMMAND]
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with subprocess.Popen(command, cwd=workspace.root, env=env, start_new_session=True, **pipes) as process:
        try:
            stdout, stderr = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"rvm-verify {path.name} still ran after {TIMEOUT} s (a hang)")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def assert_contained(path: Path, workspace: Workspace, bait: Bait, says: str = "") -> str:
    """Run the command on ``path``: exit 2, one ``rvm-verify: error:`` line on stderr (holding ``says``), no
    marker, and the secret in neither the output nor any file the run created or changed. Returns the line."""
    before = files(workspace.root)
    result = verify(path, workspace)
    output = result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, f"exit {result.returncode}: {output[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("rvm-verify: error: "), result.stderr[-2000:]
    assert says in lines[0], lines[0]
    assert not bait.marker.exists(), f"the payload wrote {bait.marker}"
    secret = bait.secret.read_bytes().strip()  # its random part: a unique string
    assert secret.decode() not in output, "the secret is in the command's output"
    written = [p for p, stat in files(workspace.root).items() if before.get(p) != stat and p != bait.secret]
    leaked = [p for p in written if secret in p.read_bytes()]
    assert not leaked, f"the secret was copied to {leaked}"
    return lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_artifact_is_one_line_and_touches_nothing(
    case: str, corpus: Callable[[str], Path], workspace: Workspace
) -> None:
    assert_contained(corpus(case), workspace, workspace.bait(case), CASES[case].says)


def test_checkpoint_outside_the_folder_reads_the_same_whether_it_exists(
    artifacts: ArtifactCache, workspace: Workspace
) -> None:
    """Metadata naming the secret as its checkpoint (with its sha256) and the same name in a folder that does not
    exist: the same one line, which neither reads the secret nor says which exists."""
    require("onnx")
    folder = workspace.root / "metadata-checkpoint-outside"
    folder.mkdir()
    good, sha256 = artifacts.onnx("fp32"), hostile.sha256_of(workspace.secret)
    nowhere = workspace.root / "nowhere" / workspace.secret.name
    messages = []
    for name, checkpoint in (("existing.onnx", workspace.secret), ("missing.onnx", nowhere)):
        path = hostile.onnx_recorded_checkpoint(good, folder / name, str(checkpoint), sha256)
        line = assert_contained(path, workspace, workspace.bait("metadata-checkpoint-outside"))
        messages.append(line.replace(str(path), "ARTIFACT"))
    assert messages[0] == messages[1]
