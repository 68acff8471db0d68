"""TorchHub entry points, as in RVM:

    model = torch.hub.load("PeterL1n/RobustVideoMatting", "mobilenetv3")   # or "resnet50"
    model = torch.hub.load("/path/to/this/repo", "mobilenetv3", source="local", pretrained=False)
    convert_video = torch.hub.load("/path/to/this/repo", "converter", source="local")

``pretrained=True`` downloads the official release checkpoint with
``torch.hub.load_state_dict_from_url`` (cached under ``torch.hub.get_dir()/checkpoints``). Where
the checkpoint's SHA-256 is known (``sha256=`` or :data:`RELEASES`) the cached file name carries
its prefix and torch.hub checks it while downloading; a mismatch keeps nothing. ``checkpoint=``
loads a local file instead; ``url=`` points at a mirror.
"""

from pathlib import Path
from typing import Callable, Optional
from urllib.error import URLError
from urllib.parse import urlparse

dependencies = ["torch"]

import torch  # noqa: E402  (torch.hub reads ``dependencies`` before anything is imported)

from model import CheckpointError, MattingNetwork, build_model, load_checkpoint  # noqa: E402

RELEASE_URL = "https://github.com/PeterL1n/RobustVideoMatting/releases/download/v1.0.0"
# variant -> (url, sha256 or None). The official release publishes no checksums; none is invented here.
RELEASES = {
    "mobilenetv3": (f"{RELEASE_URL}/rvm_mobilenetv3.pth", None),
    "resnet50": (f"{RELEASE_URL}/rvm_resnet50.pth", None),
}


def download_state_dict(url: str, sha256: Optional[str] = None, progress: bool = True) -> dict:
    """The state_dict at ``url`` via torch.hub's cache, verified against ``sha256`` when given."""
    name = Path(urlparse(url).path).name or "checkpoint.pth"
    if sha256:
        stem, suffix = Path(name).stem.split("-")[0], Path(name).suffix
        name = f"{stem}-{sha256.lower()[:16]}{suffix}"  # torch.hub checks the hash prefix in the name
    try:
        return torch.hub.load_state_dict_from_url(
            url, map_location="cpu", progress=progress, check_hash=bool(sha256), file_name=name, weights_only=True
        )
    except URLError as exc:
        raise CheckpointError(f"cannot download {url} ({exc.reason}); pass checkpoint='local.pth' or url='mirror'")
    except RuntimeError as exc:
        if "invalid hash value" in str(exc):
            raise CheckpointError(f"{url} does not match its SHA-256 {sha256}; the download was discarded")
        raise CheckpointError(f"{url} is not a readable checkpoint: {str(exc).strip().splitlines()[0]}")


def _entry(
    variant: str,
    pretrained: bool,
    progress: bool,
    refiner: Optional[str],
    checkpoint: Optional[str],
    url: Optional[str],
    sha256: Optional[str],
) -> MattingNetwork:
    if checkpoint is not None:
        return load_checkpoint(checkpoint, variant, refiner)
    if not pretrained:
        return MattingNetwork(variant, refiner or "deep_guided_filter").eval()
    default_url, default_sha = RELEASES[variant]
    state = download_state_dict(url or default_url, sha256 or (None if url else default_sha), progress)
    return build_model(state, variant, refiner)


def mobilenetv3(
    pretrained: bool = True,
    progress: bool = True,
    refiner: Optional[str] = None,
    checkpoint: Optional[str] = None,
    url: Optional[str] = None,
    sha256: Optional[str] = None,
) -> MattingNetwork:
    """RVM with the MobileNetV3 backbone, in eval mode. ``refiner`` defaults to what the weights hold."""
    return _entry("mobilenetv3", pretrained, progress, refiner, checkpoint, url, sha256)


def resnet50(
    pretrained: bool = True,
    progress: bool = True,
    refiner: Optional[str] = None,
    checkpoint: Optional[str] = None,
    url: Optional[str] = None,
    sha256: Optional[str] = None,
) -> MattingNetwork:
    """RVM with the ResNet50 backbone, in eval mode. ``refiner`` defaults to what the weights hold."""
    return _entry("resnet50", pretrained, progress, refiner, checkpoint, url, sha256)


def converter() -> Callable:
    """``convert_video`` (needs the project's ``video`` extra: av, tqdm)."""
    try:
        import av  # noqa: F401
    except ImportError:
        raise ImportError("convert_video needs PyAV; pip install 'rvm-export[video]' (or: pip install av tqdm)")
    from inference import convert_video

    return convert_video
