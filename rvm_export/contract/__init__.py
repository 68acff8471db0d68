"""What every exported artifact promises: tensor names, layouts and the metadata it carries.

Shared by ``export/`` (which writes it) and ``verify/`` (which reads it); neither imports the other.
"""

from .metadata import METADATA_KEY, ArtifactMetadata, tool_versions
from .names import INPUT_NAMES, OUTPUT_NAMES, STATE_INPUTS, STATE_OUTPUTS

__all__ = [
    "INPUT_NAMES",
    "METADATA_KEY",
    "OUTPUT_NAMES",
    "STATE_INPUTS",
    "STATE_OUTPUTS",
    "ArtifactMetadata",
    "tool_versions",
]
