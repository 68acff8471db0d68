"""A normal (non-editable) install carries what the runners need: the wheel holds the TF.js runner's
Node.js script and lockfile (never node_modules), and every package and module of the project."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import skip_unless_ci

REPO = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "artifacts", "build", "*.egg-info", "__pycache__", ".*_cache", "tests"
)


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(REPO, source, ignore=SKIP)  # build from a copy: no build/ or egg-info in the checkout
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp), "."],
        cwd=source,
        check=True,
        timeout=300,
    )
    (wheel,) = tmp.glob("rvm_export-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_wheel_holds_the_node_runner_files(wheel_names: set) -> None:
    for name in ("tfjs_runner.mjs", "package.json", "package-lock.json"):
        assert f"verify/runners/node/{name}" in wheel_names
    assert not [n for n in wheel_names if "node_modules" in n]


def test_wheel_holds_every_package_and_module(wheel_names: set) -> None:
    for package in ("model", "export", "export/tensorflow", "verify", "verify/runners", "contract"):
        sources = {p.relative_to(REPO).as_posix() for p in (REPO / package).glob("*.py")}
        assert sources <= wheel_names, sorted(sources - wheel_names)
    for module in ("pipeline", "inference", "inference_utils", "inference_backends", "hubconf"):
        assert f"{module}.py" in wheel_names


@skip_unless_ci(shutil.which("node") is None, reason="needs Node.js on PATH")
def test_tfjs_runner_says_how_to_install_its_npm_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from contract import METADATA_KEY, ArtifactMetadata
    from verify.runners import tfjs
    from verify.runners.base import RunnerError

    meta = ArtifactMetadata("tfjs", "mobilenetv3", "fast_guided_filter", "fp32", None, None, seed=0, layout="NHWC")
    model = tmp_path / "model" / "model.json"
    model.parent.mkdir()
    model.write_text(json.dumps({"userDefinedMetadata": {METADATA_KEY: json.loads(meta.to_json())}}))
    monkeypatch.setattr(tfjs, "NODE_DIR", tmp_path)  # an installed copy: script and lockfile, no node_modules
    with pytest.raises(RunnerError, match=f"cd {tmp_path} && npm ci --omit=dev"):
        tfjs.TfjsRunner(model)
