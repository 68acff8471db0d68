"""Session fixtures for everything expensive: the real weights (../shared/weights), the model and source
loaded from them once, a real photograph, and the artifacts exported once and reused by every test that
reads them. Plain helpers are in tests/helpers.py."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import WEIGHTS, ArtifactCache


@pytest.fixture(scope="session")
def weights_path() -> Path:
    if not WEIGHTS.is_file():  # CI always has ../shared; a missing file is a broken setup, not a skip
        raise FileNotFoundError(f"real RVM weights expected at {WEIGHTS}")
    return WEIGHTS


@pytest.fixture(scope="session")
def real_model(weights_path: Path):
    """The fp32 MattingNetwork with the real weights (shared: never modify it; load your own to edit)."""
    from model import load_checkpoint

    return load_checkpoint(weights_path)


@pytest.fixture(scope="session")
def source(weights_path: Path):
    """``load_source`` of the real weights, for exporting in-process (shared: never modify its model)."""
    from rvm_export.export.base import load_source

    return load_source(weights_path)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory, weights_path: Path) -> ArtifactCache:
    """Artifacts exported once per run (``artifacts.export(target, name, *args)``, ``.onnx(...)``,
    ``.coreml(fmt, precision)``); read-only, copy one before editing it. Under pytest-xdist the workers share
    one folder beside their own temporary folders, so each artifact is exported by one of them."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return ArtifactCache(tmp_path_factory.getbasetemp().parent / "shared_artifacts")
    return ArtifactCache(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="session")
def astronaut() -> torch.Tensor:
    """[1,3,512,512] float32 in 0..1."""
    from skimage import data

    return torch.from_numpy(np.ascontiguousarray(data.astronaut())).permute(2, 0, 1)[None].float() / 255


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the marks
def pytest_collection_modifyitems(items: list) -> None:
    """``make test`` runs two pytest-xdist workers (``--dist loadgroup``): a test that uses a module- or
    class-scoped fixture (an export, a video, a Ray cluster) runs in the same worker as the rest of its module,
    so that the fixture is made once; every other test goes to whichever worker is free."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        scopes = {d.scope for defs in (info.name2fixturedefs.values() if info else ()) for d in defs}
        if scopes & {"module", "class", "package"}:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
