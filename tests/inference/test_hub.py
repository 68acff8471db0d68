"""hubconf.py through torch.hub.load(..., source='local'); downloads from a local URL (no internet here)."""

import functools
import http.server
import threading
from pathlib import Path

import pytest
import torch

from model import CheckpointError, MattingNetwork, sha256_file
from tests.helpers import REPO


@pytest.fixture
def hub_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def http_url(weights_path: Path):
    """A throwaway HTTP server on 127.0.0.1 serving the weights folder."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(weights_path.parent))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{weights_path.name}"
    server.shutdown()


def _hub(entry: str, **kwargs):
    return torch.hub.load(str(REPO), entry, source="local", trust_repo=True, verbose=False, **kwargs)


def _same_weights(model: MattingNetwork, reference: MattingNetwork) -> bool:
    ours, theirs = model.state_dict(), reference.state_dict()
    return ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("entry", ["mobilenetv3", "resnet50"])
def test_untrained_entries(entry: str) -> None:
    model = _hub(entry, pretrained=False)
    assert isinstance(model, MattingNetwork) and model.variant == entry and not model.training
    assert model.refiner_name == "deep_guided_filter"  # as the official checkpoints


def test_pretrained_download_from_file_url(hub_dir: Path, weights_path: Path, real_model) -> None:
    model = _hub("mobilenetv3", url=weights_path.as_uri(), progress=False)
    assert _same_weights(model, real_model) and model.refiner_name == "fast_guided_filter"
    assert [p.name for p in hub_dir.iterdir()] == [weights_path.name]  # cached by torch.hub


def test_pretrained_download_over_http_with_checksum(
    hub_dir: Path, http_url: str, weights_path: Path, real_model
) -> None:
    digest = sha256_file(weights_path)
    model = _hub("mobilenetv3", url=http_url, sha256=digest, progress=False)
    assert _same_weights(model, real_model)
    assert [p.name for p in hub_dir.iterdir()] == [f"rvm_mobilenetv3_fgf_tfjs-{digest[:16]}.pth"]
    assert _same_weights(_hub("mobilenetv3", url=http_url, sha256=digest, progress=False), real_model)  # from cache


def test_checksum_mismatch_keeps_nothing(hub_dir: Path, http_url: str) -> None:
    with pytest.raises(CheckpointError, match="does not match its SHA-256"):
        _hub("mobilenetv3", url=http_url, sha256="0" * 64, progress=False)
    assert not hub_dir.exists() or list(hub_dir.iterdir()) == []


def test_unreachable_url_and_wrong_variant(hub_dir: Path, http_url: str) -> None:
    with pytest.raises(CheckpointError, match="cannot download"):
        _hub("mobilenetv3", url="http://127.0.0.1:9/missing.pth", progress=False)
    with pytest.raises(CheckpointError, match="mobilenetv3 checkpoint"):
        _hub("resnet50", url=http_url, progress=False)


def test_local_checkpoint_and_converter(weights_path: Path, real_model) -> None:
    assert _same_weights(_hub("mobilenetv3", checkpoint=str(weights_path)), real_model)
    from inference import convert_video

    assert _hub("converter") is convert_video
