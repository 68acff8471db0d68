"""What every export target shares: where the weights come from, metadata, atomic writes."""

import contextlib
import copy
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Tuple

import torch

from model import MattingNetwork, half_precision, load_checkpoint, seeded_random_model, sha256_file
from rvm_export import targets
from rvm_export.contract import ArtifactMetadata, tool_versions
from rvm_export.contract.errors import ExportError
from rvm_export.contract.files import PendingPath, os_reason, unwritable_reason

PRECISIONS = ("fp32", "fp16")


@dataclass
class ModelSource:
    """The fp32 reference model plus where its weights came from."""

    model: MattingNetwork
    checkpoint: Optional[str]
    checkpoint_sha256: Optional[str]
    seed: Optional[int]

    @property
    def label(self) -> str:
        if self.checkpoint is None:
            return f"seeded random initialisation (seed {self.seed}), NOT trained weights"
        return f"{self.checkpoint} (sha256 {self.checkpoint_sha256})"

    def metadata(self, target: str, precision: str, **options: object) -> ArtifactMetadata:
        """The metadata of a ``target`` artifact at ``precision``: its layout and recorded tool versions come
        from the target's spec; ``options`` are the target's own (opset, static size, ...)."""
        spec = targets.TARGETS.get(target)  # None: an ad-hoc format (a test double, an eager GPU run)
        return ArtifactMetadata(
            format=target,
            variant=self.model.variant,
            refiner=self.model.refiner_name,
            precision=precision,
            checkpoint=Path(self.checkpoint).name if self.checkpoint is not None else None,  # no machine path
            checkpoint_sha256=self.checkpoint_sha256,
            seed=self.seed,
            layout=spec.layout if spec else "NCHW",
            options=dict(options),
            tools=tool_versions(*(spec.packages if spec else ())),
        )


def load_source(
    checkpoint: Optional[str | Path],
    variant: Optional[str] = None,
    refiner: Optional[str] = None,
    seed: int = 0,
) -> ModelSource:
    """Real weights from ``checkpoint``, or a seeded random initialisation when it is None."""
    if checkpoint is None:
        model = seeded_random_model(variant or "mobilenetv3", refiner or "deep_guided_filter", seed)
        return ModelSource(model, None, None, seed)
    path = Path(checkpoint)
    model = load_checkpoint(path, variant, refiner)
    return ModelSource(model, str(path), sha256_file(path), None)


REDUCED = {"fp16": torch.float16, "bf16": torch.bfloat16}  # network dtypes; the refiner stays in fp32


def at_precision(model: MattingNetwork, precision: str, allowed: Tuple[str, ...] = PRECISIONS) -> MattingNetwork:
    """The model converted to ``precision`` (fp16 and bf16 keep the guided-filter refiner in fp32). A reduced
    precision converts a copy: the caller's model (a session's shared reference) keeps its fp32 weights."""
    if precision not in allowed:
        raise ExportError(f"unknown precision {precision!r}; choose one of {', '.join(allowed)}", "precision")
    return half_precision(copy.deepcopy(model), REDUCED[precision]) if precision in REDUCED else model.float()


@contextlib.contextmanager
def atomic_output(output: str | Path, folder: Optional[bool] = None) -> Iterator[Path]:
    """Yield a temporary path beside ``output`` (same suffix); move it into place only on success.

    An interrupted or failed export leaves nothing that looks like a finished artifact, and an OS
    error while writing (permission, read-only filesystem, disk full) becomes an ExportError.
    Works for files and for directories (SavedModel, TF.js, .mlpackage); ``folder`` says which the
    artifact is, so a file artifact refuses an existing folder at ``output`` (None: either)."""
    output = Path(output)
    as_folder = output.is_dir() if folder is None else folder
    problem = unwritable_reason(output, folder=as_folder)
    if problem is None and as_folder and output.is_dir() and any(output.iterdir()):
        if not any((output / m).exists() for m in targets.folder_markers()):  # an earlier artifact may be replaced
            problem = f"{output} is a non-empty folder that is not an artifact"
    if problem is not None:
        raise ExportError(f"{problem}; choose another output path", "output")
    pending = PendingPath(output)
    try:
        yield pending.tmp
        if not pending.tmp.exists():
            raise ExportError(f"the exporter wrote nothing for {output}")
        pending.commit()
    except OSError as exc:
        raise ExportError(
            f"writing {output} failed ({os_reason(exc)}); free some space or choose another output path", "output"
        )
    except ExportError:
        raise
    except Exception as exc:
        # Writers that wrap the OS error in their own exception (TensorFlow, coremltools): a full disk is
        # still the user's to fix. Anything else is a bug and keeps its traceback.
        if _nearly_full(output.parent):
            raise ExportError(f"writing {output} failed: the disk is full ({type(exc).__name__}); free some space")
        raise
    finally:
        pending.discard()


def _nearly_full(folder: Path, margin: int = 16 << 20) -> bool:
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False
