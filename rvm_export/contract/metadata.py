"""Metadata stored inside every artifact, so ``rvm-verify ARTIFACT`` needs no other argument.

Each format stores the same JSON document under :data:`METADATA_KEY` where the format allows:
TorchScript ``_extra_files``, ONNX ``metadata_props``, a SavedModel asset, TF.js
``userDefinedMetadata``, CoreML ``user_defined_metadata``.
"""

import importlib.metadata
import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from .errors import ExportError

METADATA_KEY = "rvm_metadata.json"
# ExecuTorch (.pte) has no free-form metadata field: the document is the String a constant method of this name
# returns (written by export/executorch.py, read by runtimes/pte_format.py).
METADATA_METHOD = "rvm_metadata"
SCHEMA_VERSION = 1
# The values the verifier can act on; a document naming others (a forged or damaged file) is refused on reading.
# tests/test_errors.py checks them against model.network and verify.tolerances.
VARIANTS = ("mobilenetv3", "resnet50")
REFINERS = ("deep_guided_filter", "fast_guided_filter")
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "uint8", "uint16")
LAYOUTS = ("NCHW", "NHWC")
SHA256 = re.compile(r"[0-9a-f]{64}")


def created_time() -> Optional[str]:
    """The time an artifact records: ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention) in UTC ISO 8601,
    or None without it, so two exports of the same inputs are the same bytes. A value that is not a whole
    number of seconds raises ExportError (the command lines make it one line, exit 2)."""
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise ExportError(
            f"SOURCE_DATE_EPOCH is {raw[:40]!r}, not a whole number of seconds since 1970; unset or fix it"
        )
    return datetime.fromtimestamp(int(raw), timezone.utc).isoformat(timespec="seconds")


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
    checkpoint: Optional[str]  # the file name (never a path) it was exported from; None for a seeded random one
    checkpoint_sha256: Optional[str]
    seed: Optional[int] = None  # set when the weights are a seeded random initialisation
    layout: str = "NCHW"  # NHWC for TensorFlow / TF.js
    options: Dict[str, Any] = field(default_factory=dict)  # target specifics: opset, static size, ratio...
    tools: Dict[str, str] = field(default_factory=dict)
    created: Optional[str] = field(default_factory=created_time)  # SOURCE_DATE_EPOCH, else None (reproducible)
    schema: int = SCHEMA_VERSION
    # Set by the verifier only, for an artifact that carries no metadata: field -> where its value came from.
    inferred: Dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "ArtifactMetadata":
        """Parse and check a document; anything the verifier could not act on raises ValueError, one line."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"the metadata document is a JSON {type(data).__name__}, not an object")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        missing = [
            k
            for k in ("format", "variant", "refiner", "precision", "checkpoint", "checkpoint_sha256")
            if k not in known
        ]
        if missing:
            raise ValueError(f"the metadata document lacks {', '.join(missing)}")
        metadata = cls(**known)
        metadata.check()
        return metadata

    def check(self) -> None:
        """Raise ValueError naming the first field whose value is of the wrong type or not one we know."""
        choices = {"variant": VARIANTS, "refiner": REFINERS, "precision": PRECISIONS, "layout": LAYOUTS}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"metadata field {name} is {_shown(value)}, not one of {', '.join(allowed)}")
        types = {
            "format": (str,),
            "checkpoint": (str, type(None)),
            "checkpoint_sha256": (str, type(None)),
            "seed": (int, type(None)),
            "options": (dict,),
            "tools": (dict,),
            "created": (str, type(None)),
            "schema": (int,),
            "inferred": (dict,),
        }
        for name, allowed_types in types.items():
            value = getattr(self, name)
            if not isinstance(value, allowed_types) or isinstance(value, bool):
                raise ValueError(f"metadata field {name} is {_shown(value)}, of the wrong type")
        if self.checkpoint_sha256 is not None and not SHA256.fullmatch(self.checkpoint_sha256):
            raise ValueError(f"metadata field checkpoint_sha256 is {_shown(self.checkpoint_sha256)}, not a sha256")
        if self.checkpoint_sha256 is None and self.seed is None:
            raise ValueError("metadata names neither a checkpoint_sha256 nor a seed for its weights")

    @property
    def weights_label(self) -> str:
        """Human-readable origin of the weights."""
        if self.checkpoint_sha256 is None:
            return f"seeded random initialisation (seed {self.seed})"
        return f"{self.checkpoint} (sha256 {self.checkpoint_sha256[:12]})"


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
