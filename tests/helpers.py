"""Plain helpers for every test file, imported one way: ``from tests.helpers import ...``.

The fixtures (the loaded real model, the session's artifact cache) are in ``tests/conftest.py``;
what is here is importable at collection time: the one path to the real weights, ``require`` and
``skip_unless_ci`` (in CI a missing test dependency fails instead of skipping), exporting through the
CLI in-process and the session's :class:`ArtifactCache`, broken artifacts several files build, commands
with an extra missing, running a doc's snippets as written, PyTorch's reference alpha and the video
helpers of the inference tests."""

import hashlib
import importlib
import os
import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"  # beside the checkout, in CI as here
WEIGHTS = SHARED / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"  # the real MobileNetV3 weights
OFFICIAL_DOC = SHARED / "seed" / "rvm_inference_doc_zh.md"  # the official inference documentation
GREEN = np.array([120, 255, 155], np.float32) / 255  # convert_video's composition background


# --- Test dependencies: skip here, fail in CI ----------------------------------------------------


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def require(module: str):
    """Import ``module`` for a test; skip when it is missing, except in CI (``CI=true``), where a missing
    dependency means a broken install and must fail instead of turning into a silent skip."""
    if in_ci():
        return importlib.import_module(module)
    return pytest.importorskip(module)


def skip_unless_ci(condition: bool, reason: str):
    """A ``skipif`` mark that never skips in CI (``CI=true``): there, what it needs must be installed."""
    return pytest.mark.skipif(condition and not in_ci(), reason=reason)


def node_missing() -> bool:
    """No Node.js, or no `npm ci` in rvm_export/runtimes/node (what the TF.js runner runs in)."""
    from rvm_export.runtimes.tfjs import NODE_DIR

    return shutil.which("node") is None or not (NODE_DIR / "node_modules").is_dir()


def requires_node():
    """Skip TF.js-in-Node tests where Node.js or its packages are missing, but never in CI (``CI=true``)."""
    return skip_unless_ci(node_missing(), reason="needs Node.js and `npm ci` in rvm_export/runtimes/node")


def browser_missing() -> bool:
    """No Chromium, or no TF.js bundle from `npm ci` in verify/runners/node (what the browser runner serves)."""
    from rvm_export.runtimes.base import RunnerError
    from rvm_export.runtimes.tfjs_browser import TFJS_DIST, chromium_path

    try:
        chromium_path()
    except RunnerError:
        return True
    return not (TFJS_DIST / "tf.min.js").is_file()


def requires_browser():
    """Skip browser tests where Chromium or the TF.js bundle is missing, but never in CI (``CI=true``)."""
    return skip_unless_ci(
        browser_missing(), reason="needs Chromium (tools/install_chromium.sh) and `npm ci` in verify/runners/node"
    )


# --- Exporting ---------------------------------------------------------------------------------


def export_artifact(*args: object) -> None:
    """``rvm-export ARGS`` in-process; the test fails with the command's output unless it exits 0."""
    from click.testing import CliRunner

    from rvm_export.export.cli import main

    result = CliRunner().invoke(main, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output


COREML_CASE = (128, 96, 0.5)  # width, height, ratio of the CoreML test models: small, and size x ratio integer


class ArtifactCache:
    """Artifacts exported once per test run into one folder and shared by every test that reads them (the
    session fixture ``artifacts``). Read-only: copy one before editing it.

    The folder may be shared by several pytest processes (``pytest -n 2``, pytest-xdist): each artifact has its
    own folder, named by its options, a lock file that the process exporting it holds, and a ``.done`` marker
    written after its export succeeded; the others wait on the lock, then read it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._done: Dict[tuple, Path] = {}

    def once(self, key: tuple, name: str, make: Callable[[Path], object]) -> Path:
        """The artifact ``make(path)`` writes at ``path`` (named ``name``), made once per run for ``key``."""
        if key in self._done:
            return self._done[key]
        from filelock import FileLock

        slot = self.folder / hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        path = slot / name
        with FileLock(str(slot) + ".lock"):
            if not (slot / ".done").is_file():
                shutil.rmtree(slot, ignore_errors=True)  # a failed export's leftovers
                slot.mkdir(parents=True)
                make(path)
                (slot / ".done").touch()
        self._done[key] = path
        return path

    def export(self, target: str, name: str, *args: str, checkpoint: Optional[Path] = WEIGHTS) -> Path:
        """``rvm-export TARGET [--checkpoint CKPT] ARGS --output NAME``, once per distinct call."""
        ckpt = ["--checkpoint", checkpoint] if checkpoint else []
        return self.once(
            ("cli", target, name, *args, str(checkpoint)),
            name,
            lambda path: export_artifact(target, *ckpt, *args, "--output", path),
        )

    def onnx(
        self,
        precision: str = "fp32",
        opset: int = 12,
        static: Optional[Tuple[int, int]] = None,
        ratio: Optional[float] = None,
        resnet50: bool = False,
    ) -> Path:
        """The real MobileNetV3 weights exported to ONNX with these options, in-process.

        ``resnet50``: a seeded ResNet50 with the deep guided filter instead (no real weights exist)."""
        name = (
            f"rvm_{'resnet50' if resnet50 else 'mobilenetv3'}_{precision}_op{opset}"
            + (f"_{static[0]}x{static[1]}" if static else "")
            + ".onnx"
        )

        def make(path: Path) -> None:
            from rvm_export.export.base import at_precision, load_source
            from rvm_export.export.onnx import export_onnx

            source = load_source(None, "resnet50", "deep_guided_filter") if resnet50 else load_source(WEIGHTS)
            options = {"opset": opset, "static": list(static) if static else None, "downsample_ratio": ratio}
            metadata = source.metadata("onnx", precision, **options)
            export_onnx(at_precision(source.model, precision), path, metadata, opset, static, ratio)

        return self.once(("onnx", precision, opset, static, ratio, resnet50), name, make)

    def coreml(self, fmt: str, precision: str) -> Path:
        """The real weights as a CoreML model at :data:`COREML_CASE` (conversion is the slow part)."""
        from rvm_export.targets import COREML_SUFFIXES

        width, height, ratio = COREML_CASE
        name = f"rvm_{width}x{height}_s{ratio:g}_{precision}{COREML_SUFFIXES[fmt]}"
        args = ["--resolution", str(width), str(height), "--downsample-ratio", str(ratio)]
        return self.export("coreml", name, *args, "--precision", precision, "--format", fmt)


def copy_artifact(path: Path, folder: Path, name: Optional[str] = None) -> Path:
    """A copy of the artifact at ``path`` (a file with its companion files, or a folder) in ``folder``."""
    from rvm_export.targets import target_of

    target = folder / (name or path.name)
    if path.is_dir():
        shutil.copytree(path, target)
        return target
    shutil.copy(path, target)
    for suffix in target_of(path).companions:
        if path.with_suffix(suffix).is_file():
            shutil.copy(path.with_suffix(suffix), target.with_suffix(suffix))
    return target


def rewrite_zip(source: Path, path: Path, edit: Callable[[str, bytes], Optional[bytes]]) -> Path:
    """A copy of the zip archive ``source`` (a .pt2) at ``path``, each entry's bytes passed through
    ``edit(name, data)``: what it returns is stored, None leaves the entry out."""
    import zipfile

    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as out:
        for entry in original.infolist():
            data = edit(entry.filename, original.read(entry))
            if data is not None:
                out.writestr(entry, data)
    return path


def perturb_tfjs_weights(good: Path, folder: Path) -> Path:
    """A copy of the TF.js model ``good`` in ``folder`` with its largest float32 weight tensor x1.05."""
    import json

    bad = copy_artifact(good, folder, "perturbed_tfjs")
    model = json.loads((bad / "model.json").read_text())
    (group,) = model["weightsManifest"]
    data = bytearray(b"".join((bad / p).read_bytes() for p in group["paths"]))
    offset, target = 0, None
    for spec in group["weights"]:
        size = int(np.prod(spec["shape"])) * 4
        if spec["dtype"] == "float32" and (target is None or size > target[1]):
            target = (offset, size)
        offset += size
    start, size = target
    data[start : start + size] = (
        (np.frombuffer(bytes(data[start : start + size]), "<f4") * 1.05).astype("<f4").tobytes()
    )
    for p in group["paths"]:
        (bad / p).unlink()
    group["paths"] = ["group1-shard1of1.bin"]
    (bad / "group1-shard1of1.bin").write_bytes(bytes(data))
    (bad / "model.json").write_text(json.dumps(model))
    return bad


# --- Missing extras: commands in a subprocess where some modules fail to import -------------------

BLOCKER = Path(__file__).parent / "data" / "block_imports"  # its sitecustomize blocks $RVM_BLOCK_IMPORTS


def run_blocked(command: str, args: list, blocked: str, cwd: Path) -> subprocess.CompletedProcess:
    """The installed ``command ARGS`` with the modules ``blocked`` (comma-separated) unimportable."""
    env = dict(os.environ, PYTHONPATH=str(BLOCKER), RVM_BLOCK_IMPORTS=blocked)
    bin_dir = Path(sys.executable).parent
    return subprocess.run(
        [str(bin_dir / command), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def assert_one_line(result: subprocess.CompletedProcess, command: str, subject: str, extra: str, module: str) -> None:
    """Exit 2 and one line on stderr that names the extra to install."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == (
        f"{command}: error: {subject} needs the {extra} extra (no module named {module!r}): "
        f"pip install 'rvm-export[{extra}]'"
    )


# --- Broken ONNX artifacts (graph edits on a copy of a good one) ------------------------------------


def rewrite_onnx(source: Path, path: Path, edit: Callable, strip_metadata: bool = False) -> Path:
    """``source`` with ``edit(graph)`` applied (and its metadata removed), saved at ``path``."""
    import onnx

    model = onnx.load(str(source))
    if strip_metadata:
        del model.metadata_props[:]
    if edit is not None:
        edit(model.graph)
    onnx.save(model, str(path))
    return path


def perturb_first_conv(graph) -> None:
    """The first convolution's weight x1.05."""
    from onnx import numpy_helper

    weight_name = next(n.input[1] for n in graph.node if n.op_type == "Conv")
    init = next(i for i in graph.initializer if i.name == weight_name)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.05, weight_name))


def disconnect_states(graph) -> None:
    """Every frame starts from zero state: the state inputs are still there but unused."""
    from onnx import helper, numpy_helper

    from rvm_export.contract import STATE_INPUTS

    zero = numpy_helper.from_array(np.zeros([1, 1, 1, 1], np.float32), "zero_state")
    graph.node.insert(0, helper.make_node("Constant", [], ["zero_state"], value=zero))
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in STATE_INPUTS:
                node.input[i] = "zero_state"


def always_refine(graph) -> None:
    """The official export's behaviour: the refiner also runs at ratio 1 (where PyTorch skips it)."""
    from onnx import helper

    from rvm_export.export.onnx_graph import GATE_IF_NAME

    index, gate = next((i, n) for i, n in enumerate(graph.node) if n.name == GATE_IF_NAME)
    branch = next(a.g for a in gate.attribute if a.name == "else_branch")
    graph.initializer.extend(branch.initializer)
    nodes = list(branch.node)
    for out, inner in zip(gate.output, branch.output, strict=True):
        nodes.append(helper.make_node("Identity", [inner.name], [out]))
    graph.node.remove(gate)
    for offset, node in enumerate(nodes):
        graph.node.insert(index + offset, node)


# --- Documentation -----------------------------------------------------------------------------


def doc_snippets(doc: str | Path) -> List[str]:
    """The ```python blocks of ``docs/DOC`` (or of the file ``doc``), verbatim."""
    path = doc if isinstance(doc, Path) else REPO / "docs" / doc
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def run_snippet(snippet: str, video: object, folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Run ``snippet`` in ``folder`` (where the test put the artifact under the name the snippet uses) with
    ``YOUR_VIDEO = video``; returns the snippet's variables."""
    monkeypatch.chdir(folder)
    scope: dict = {"YOUR_VIDEO": video}
    exec(snippet, scope)
    return scope


def last_reference_pha(model: torch.nn.Module, frames: object, ratio: float) -> np.ndarray:
    """PyTorch's alpha for the last of ``frames`` ([1,3,H,W] each), the recurrent state carried from the first."""
    rec = [None] * 4
    with torch.inference_mode():
        for frame in frames:
            _, pha, *rec = model(torch.as_tensor(frame), *rec, downsample_ratio=ratio)
    return pha.numpy()


# --- Video (the inference tests): clips encoded with PyAV directly, not with the code under test ---


def encode_clip(path: Path, width: int, height: int, frames: int, rate: Fraction) -> np.ndarray:
    """Write a pan over the astronaut as near-lossless H.264; return the RGB uint8 frames [T,H,W,3]."""
    import av

    from rvm_export.verify.sequence import Case, build_sequence

    sequence = build_sequence(Case(width, height, 1, 1.0, frames))[:, 0]
    arrays = (sequence.transpose(0, 2, 3, 1) * 255 + 0.5).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv444p"  # any size, little chroma loss
        stream.options = {"crf": "12"}
        for array in arrays:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    return arrays


def reference_alpha(model: torch.nn.Module, frames: np.ndarray, ratio: float) -> np.ndarray:
    """Alpha as uint8 [T,H,W] from a plain frame-by-frame loop that carries the recurrent state."""
    src = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)
    rec, out = [None] * 4, []
    with torch.inference_mode():
        for t in range(len(src)):
            _, pha, *rec = model(src[t : t + 1], *rec, ratio)
            out.append(pha)
    return (torch.cat(out)[:, 0] * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


def read_video(path: Path) -> tuple[np.ndarray, Fraction]:
    """Decode a video with PyAV directly: RGB uint8 frames [T,H,W,3] and the average frame rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    return frames, rate


def read_pngs(folder: Path) -> np.ndarray:
    """All images of a folder in name order, as a uint8 array [T,H,W(,C)]."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.iterdir())])


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders a conversion may have left behind."""
    return [p.name for p in folder.iterdir() if ".partial-" in p.name]
