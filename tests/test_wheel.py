"""A normal (non-editable) install carries what the runners need: the wheel holds the TF.js runner's
Node.js script and lockfile (never node_modules), and every package and module of the project."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO, skip_unless_ci

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


def test_wheel_holds_the_node_runner_and_browser_page(wheel_names: set) -> None:
    for name in ("node/tfjs_runner.mjs", "node/package.json", "node/package-lock.json", "browser/runner.html"):
        assert f"rvm_export/runtimes/{name}" in wheel_names
    assert "rvm_export/runtimes/browser/runner.js" in wheel_names
    assert not [n for n in wheel_names if "node_modules" in n]


def test_wheel_installs_one_package_and_the_documented_import_names(wheel_names: set) -> None:
    """rvm_export plus what the RVM documentation imports (model, inference, inference_utils); no hubconf."""
    top_level = {name.split("/")[0] for name in wheel_names if not name.startswith("rvm_export-")}
    assert top_level == {"rvm_export", "model", "inference.py", "inference_utils.py"}
    sources = {p.relative_to(REPO).as_posix() for p in REPO.glob("rvm_export/**/*.py") if "node_modules" not in p.parts}
    sources |= {p.relative_to(REPO).as_posix() for p in (REPO / "model").glob("*.py")}
    assert sources <= wheel_names, sorted(sources - wheel_names)


def test_wheel_holds_no_fuzzing_code(wheel_names: set) -> None:
    """The fuzz driver, its mutations and per-format tables are test code (tests/fuzz/, ``python -m tests.fuzz``)."""
    assert not [n for n in wheel_names if "fuzz" in n.lower()]


@skip_unless_ci(shutil.which("node") is None, reason="needs Node.js on PATH")
def test_tfjs_runner_says_how_to_install_its_npm_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rvm_export.contract import METADATA_KEY, ArtifactMetadata
    from rvm_export.runtimes import tfjs
    from rvm_export.runtimes.base import RunnerError

    meta = ArtifactMetadata("tfjs", "mobilenetv3", "fast_guided_filter", "fp32", None, None, seed=0, layout="NHWC")
    model = tmp_path / "model" / "model.json"
    model.parent.mkdir()
    model.write_text(json.dumps({"userDefinedMetadata": {METADATA_KEY: json.loads(meta.to_json())}}))
    monkeypatch.setattr(tfjs, "NODE_DIR", tmp_path)  # an installed copy: script and lockfile, no node_modules
    with pytest.raises(RunnerError, match=f"cd {tmp_path} && npm ci --omit=dev"):
        tfjs.TfjsRunner(model)
