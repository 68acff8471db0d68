"""Metadata stored inside every artifact, so ``rvm-verify ARTIFACT`` needs no other argument.

Each format stores the same JSON document under :data:`METADATA_KEY` where the format allows:
TorchScript ``_extra_files``, ONNX ``metadata_props``, a SavedModel asset, TF.js
``userDefinedMetadata``, CoreML ``user_defined_metadata``.
"""

import importlib.metadata
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Optional

METADATA_KEY = "rvm_metadata.json"
SCHEMA_VERSION = 1


def tool_versions(*packages: str) -> Dict[str, str]:
    """Installed versions of ``packages`` (plus torch), for provenance."""
    versions = {}
    for name in ("torch", *packages):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass
class ArtifactMetadata:
    """Provenance and contract of one exported artifact."""

    format: str  # torchscript | onnx | tensorflow | tfjs | coreml
    variant: str  # mobilenetv3 | resnet50
    refiner: str  # deep_guided_filter | fast_guided_filter
    precision: str  # fp32 | fp16 | int8 | uint8
    checkpoint: Optional[str]  # the file it was exported from; None for a seeded random initialisation
    checkpoint_sha256: Optional[str]
    seed: Optional[int] = None  # set when the weights are a seeded random initialisation
    layout: str = "NCHW"  # NHWC for TensorFlow / TF.js
    options: Dict[str, Any] = field(default_factory=dict)  # target specifics: opset, static size, ratio...
    tools: Dict[str, str] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    schema: int = SCHEMA_VERSION
    # Set by the verifier only, for an artifact that carries no metadata: field -> where its value came from.
    inferred: Dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "ArtifactMetadata":
        data = json.loads(text)
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    @property
    def weights_label(self) -> str:
        """Human-readable origin of the weights."""
        if self.checkpoint_sha256 is None:
            return f"seeded random initialisation (seed {self.seed})"
        return f"{self.checkpoint} (sha256 {self.checkpoint_sha256[:12]})"
