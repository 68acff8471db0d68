"""Shared fixtures: the real RVM weights in ../shared/weights and a real photograph."""

from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO.parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"


def export_artifact(*args: object) -> None:
    """``rvm-export ARGS`` in-process; the test fails with the command's output unless it exits 0."""
    from click.testing import CliRunner

    from rvm_export.export.cli import main

    result = CliRunner().invoke(main, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output


def run_documented_snippet(doc: str, video: object, folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Run the one ```python block of docs/DOC as written, in ``folder`` (where the test put the artifact under
    the name the snippet uses), with ``YOUR_VIDEO = video``; returns the snippet's variables."""
    import re

    (snippet,) = re.findall(r"```python\n(.*?)```", (REPO / "docs" / doc).read_text(), flags=re.S)
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


@pytest.fixture(scope="session")
def weights_path() -> Path:
    if not WEIGHTS.is_file():  # CI always has ../shared; a missing file is a broken setup, not a skip
        raise FileNotFoundError(f"real RVM weights expected at {WEIGHTS}")
    return WEIGHTS


@pytest.fixture(scope="session")
def real_model(weights_path: Path):
    from model import load_checkpoint

    return load_checkpoint(weights_path)


@pytest.fixture(scope="session")
def astronaut() -> torch.Tensor:
    """[1,3,512,512] float32 in 0..1."""
    from skimage import data

    return torch.from_numpy(np.ascontiguousarray(data.astronaut())).permute(2, 0, 1)[None].float() / 255


def require(module: str):
    """Import ``module`` for a test; skip when it is missing, except in CI (``CI=true``), where a missing
    dependency means a broken install and must fail instead of turning into a silent skip."""
    import importlib
    import os

    if os.environ.get("CI") == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module)


def skip_unless_ci(condition: bool, reason: str):
    """A ``skipif`` mark that never skips in CI (``CI=true``): there, what it needs must be installed."""
    import os

    return pytest.mark.skipif(condition and os.environ.get("CI") != "true", reason=reason)


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
