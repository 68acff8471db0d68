"""The PyTorch reference and the TorchScript runner."""

import contextlib
import io
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

from model import CheckpointError, MattingNetwork, build_model, seeded_random_model
from rvm_export.contract import METADATA_KEY, ArtifactMetadata
from rvm_export.contract.checkpoints import (
    MAX_CHECKPOINT_BYTES,
    CheckpointFile,
    CheckpointFileError,
    find_by_sha256,
    read_checkpoint,
    recorded_name,
    search_folders,
)
from rvm_export.contract.errors import USER_ERRORS, first_line
from rvm_export.contract.metadata import SHA256

from .base import (
    LARGE_TENSOR,
    ArtifactFacts,
    Outputs,
    Probe,
    Runner,
    RunnerError,
    load_error,
    precision_of,
    to_numpy_outputs,
)


def _run_module(
    module: Any,
    src: np.ndarray,
    state: Optional[List[torch.Tensor]],
    ratio: float,
    dtype: torch.dtype,
    device: str = "cpu",
    allow_tf32: bool = False,
) -> Tuple[Outputs, List[torch.Tensor]]:
    """One frame; the recurrent state stays on ``device`` in the module's own dtype.

    cuDNN convolutions default to TF32 on Ampere and newer GPUs, which is not fp32: measured on an
    H100 with the real weights, alpha differs from fp32 by up to 1.5e-2. An fp32 artifact is
    therefore checked with TF32 off unless ``allow_tf32``."""
    rec = state if state is not None else [None] * 4
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=allow_tf32):
        out = module(torch.from_numpy(src).to(device, dtype), *rec, downsample_ratio=float(ratio))
    if not isinstance(out, (list, tuple)) or len(out) != 6:
        raise RunnerError(f"expected 6 outputs [fgr, pha, r1..r4], got {type(out).__name__} of {len(out)}")
    return to_numpy_outputs([t.float().cpu().numpy() for t in out]), list(out[2:])


# The reference runs on one intra-op thread, whatever the machine: a CPU kernel that splits its work (and
# its sums) across threads gives results that depend on the thread count, and a verdict must not depend on
# the machine or its load. On one thread every kernel's order of operations is fixed. See
# docs/verification.md "Determinism" for what was measured and what it costs.
REFERENCE_THREADS = 1


@contextlib.contextmanager
def intra_op_threads(threads: Optional[int]) -> Iterator[None]:
    """PyTorch's intra-op thread count set to ``threads`` inside the block (None: left as it is)."""
    if threads is None or threads == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class TorchReference:
    """The fp32 PyTorch MattingNetwork every artifact is compared against; deterministic by construction
    (:data:`REFERENCE_THREADS`), so the same frames give the same bytes on an idle or a loaded machine."""

    kind = "pytorch"
    threads: Optional[int] = REFERENCE_THREADS

    def __init__(self, model: MattingNetwork, dtype: torch.dtype = torch.float32) -> None:
        """``dtype``: the input dtype; the model must already be at that precision (see verify.noise)."""
        self.model = model.eval() if dtype != torch.float32 else model.float().eval()
        self.dtype = dtype

    def initial_state(self, batch: int) -> Any:
        return None

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        with intra_op_threads(self.threads):
            return _run_module(self.model, src, state, downsample_ratio, self.dtype)


def checkpoint_state(found: CheckpointFile) -> Dict[str, torch.Tensor]:
    """The state_dict in ``found``'s bytes, unpickled only as tensors (``weights_only=True``)."""
    try:
        state = torch.load(io.BytesIO(found.data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types on foreign bytes
        raise CheckpointError(f"{found.path.name} is not a readable PyTorch checkpoint: {first_line(exc)}")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{found.path.name} holds a {type(state).__name__}, not a state_dict of tensors")
    return state


def read_user_checkpoint(checkpoint: str | Path) -> CheckpointFile:
    """The checkpoint a user passed (``--checkpoint``): anywhere they choose, but a regular file of bounded size."""
    try:
        return read_checkpoint(checkpoint)
    except CheckpointFileError as exc:
        raise RunnerError(
            f"the checkpoint {str(checkpoint)[:200]!r} {exc}; pass an RVM .pth file of at most "
            f"{MAX_CHECKPOINT_BYTES >> 30} GiB",
            "checkpoint",
        )


def reference_model(
    metadata: ArtifactMetadata, checkpoint: Optional[str | Path] = None, artifact: Optional[str | Path] = None
) -> MattingNetwork:
    """The fp32 PyTorch model the artifact was exported from: what verification compares against, and what CoreML
    on Linux reads its saved weights into.

    The checkpoint is ``checkpoint`` when the user names one (anywhere), else the file whose sha256 the metadata
    records, looked for only in :func:`~rvm_export.contract.checkpoints.search_folders` (``./checkpoints``, the
    repository's, the shared weights, and ``artifact``'s folder), never at a path the metadata gives. Either is
    a regular file of bounded size, unpickled with ``weights_only=True``. When none matches, the one message
    names the file name and sha256 wanted and says nothing of which paths exist."""
    if metadata.checkpoint_sha256 is None:
        if checkpoint is not None:
            raise RunnerError("the artifact holds a seeded random initialisation; pass no checkpoint", "checkpoint")
        seed = metadata.seed or 0
        if not isinstance(seed, int) or isinstance(seed, bool) or not -(2**63) <= seed < 2**64:  # torch's range
            raise RunnerError(f"the artifact's metadata records the seed {str(seed)[:40]!r}, not a torch seed")
        try:
            return seeded_random_model(metadata.variant, metadata.refiner, seed)
        except (ValueError, TypeError) as exc:  # an unknown variant or refiner
            raise RunnerError(f"the artifact's metadata does not name a model: {first_line(exc)}")
    wanted = metadata.checkpoint_sha256
    if not isinstance(wanted, str) or not SHA256.fullmatch(wanted):  # a damaged metadata document
        raise RunnerError(f"the artifact's metadata records checkpoint_sha256 {str(wanted)[:40]!r}, not a sha256")
    if checkpoint is not None:
        found = read_user_checkpoint(checkpoint)
        if found.sha256 != wanted:
            raise RunnerError(
                f"{str(checkpoint)[:200]} (sha256 {found.sha256[:12]}) is not the checkpoint the artifact was "
                f"exported from (sha256 {wanted[:12]}); pass the right checkpoint",
                "checkpoint",
            )
    else:
        located = find_by_sha256(wanted, metadata.checkpoint, artifact)
        if located is None:
            name = recorded_name(metadata.checkpoint) or "its checkpoint"
            folders = ", ".join(str(f) for f in search_folders(artifact))
            raise RunnerError(
                f"the artifact was exported from {name!r} (sha256 {wanted}); no regular file of at most "
                f"{MAX_CHECKPOINT_BYTES >> 30} GiB with that sha256 is in {folders}: put it there or pass the file",
                "checkpoint",
            )
        found = located
    try:
        return build_model(checkpoint_state(found), metadata.variant, metadata.refiner)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, USER_ERRORS):  # CheckpointError: the checkpoint's own problem, already one line
            raise
        raise RunnerError(f"the artifact's metadata does not name a model: {first_line(exc)}")


def metadata_from(text: str | bytes, path: Path) -> ArtifactMetadata:
    """The metadata document an artifact embeds; a damaged one (not JSON, not an object, fields missing) is
    refused with one line instead of the JSON parser's traceback."""
    try:
        return ArtifactMetadata.from_json(text)
    except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: arrays nested thousands deep
        raise load_error(path, f"an artifact with a readable {METADATA_KEY}", exc)


def torch_device(device: Optional[str]) -> str:
    """The device a torch-based runner opens on: the CPU by default; "cuda" only where this torch has one."""
    if device == "cuda" and not torch.cuda.is_available():
        raise RunnerError("no CUDA device is available to this torch; run on the CPU", "device")
    return device or "cpu"


TORCH_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class TorchScriptRunner(Runner):
    kind = "torchscript"

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        self.path = Path(path)
        self.device = device
        self.module, self.metadata = _load(self.path, device)
        self._facts = _facts(self.module)
        # The artifact's own weights decide the input dtype, not its metadata's claim (which verify.api checks).
        self.dtype = TORCH_DTYPES.get(self._facts.precision or "fp32", torch.float32)

    @classmethod
    def on_device(cls, path: Path, device: Optional[str]) -> "TorchScriptRunner":
        return cls(path, torch_device(device))

    @classmethod
    def read_metadata(cls, path: Path) -> Optional[ArtifactMetadata]:
        return _load(path)[1]

    def facts(self) -> ArtifactFacts:
        return self._facts

    def set_threads(self, threads: int) -> None:
        torch.set_num_threads(threads)

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        return _run_module(self.module, src, state, downsample_ratio, self.dtype, self.device)

    def probe(self) -> Optional["TorchScriptProbe"]:
        """A scripted (not frozen) module keeps its module tree: each submodule can be called alone."""
        return TorchScriptProbe(self) if any(True for _ in self.module.named_children()) else None


def _facts(module: Any) -> ArtifactFacts:
    """Precision from the parameters, or from the graph's tensor constants when the module is frozen."""
    params = [str(p.dtype).removeprefix("torch.") for p in module.parameters() if p.numel() >= LARGE_TENSOR]
    if params:
        return precision_of(params, "parameters")
    constants = []
    for node in module.graph.findAllNodes("prim::Constant"):
        if node.output().type().kind() == "TensorType":
            value = node.output().toIValue()
            if value.is_floating_point() and value.numel() >= LARGE_TENSOR:
                constants.append(str(value.dtype).removeprefix("torch."))
    return precision_of(constants, "frozen graph constants")


def _load(path: Path, device: str = "cpu") -> Tuple[Any, Optional[ArtifactMetadata]]:
    extra = {METADATA_KEY: ""}
    try:
        module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as exc:  # torch raises bare RuntimeErrors for foreign or truncated files
        raise load_error(path, "a loadable TorchScript file", exc)
    metadata = metadata_from(extra[METADATA_KEY], path) if extra[METADATA_KEY] else None
    return module.eval(), metadata


def first_tensor(value: Any) -> Optional[torch.Tensor]:
    """The tensor a module returned (the first of a tuple), or None."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


class TorchScriptProbe(Probe):
    """Each scripted submodule called on the reference's inputs to it: a module's own error."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.scripted = dict(runner.module.named_modules())

    def initial_state(self, batch: int) -> Any:
        return None

    def infer(self, src: np.ndarray, state: Any, ratio: float) -> Any:
        ref = self.recorder
        dtype = self.runner.dtype
        cast = lambda v: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v  # noqa: E731
        by_module: Dict[str, np.ndarray] = {}
        with torch.inference_mode():
            for name in ref.order:
                scripted = self.scripted.get(name)
                if scripted is None or name not in ref.inputs:
                    continue
                args, kwargs = ref.inputs[name]
                try:
                    out = scripted(*[cast(a) for a in args], **{k: cast(v) for k, v in kwargs.items()})
                except Exception:  # a module whose scripted signature differs: not comparable
                    continue
                tensor = first_tensor(out)
                if tensor is not None:
                    by_module[name] = tensor.double().cpu().numpy()
            outputs, new_state = self.runner.infer(src, state, ratio)
        return by_module, new_state
