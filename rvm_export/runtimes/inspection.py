"""Inspect an artifact before anything of it runs: :func:`inspect_artifact`, the one entry point.

Each format's inspector is ``inspect(path)`` in ``runtimes/<target>_inspect.py``, beside its runtime, with that
format's allowlists; the registry (``rvm_export/targets.py``, ``TargetSpec.inspector``) names it as it names the
runner. They read the artifact's files as data only, with the shared readers of ``inspection_readers.py``, and
refuse in one line that names the file and the op or the path (no name from the file can forge a line) what a
loader would act on: ops that touch files, the console, Python or the network; paths out of the artifact's folder;
custom ops, layers and extensions a runtime would load code for; pickles that name a Python callable.

The operator allowlists of TorchScript, ``.pt2`` and SavedModel graphs are the pinned registries less explicit
refused lists (``inspection_ops.py``), kept as generated literals (``inspection_oplists.py``). The other sets in
the inspectors (pickle globals, sympy names, checkpoint-function ops, object-graph classes...) are what our
exporters and torch's and TensorFlow's own savers write, kept literal so that an exporter change that adds one
fails tests/runtimes/test_inspection.py until it is added on purpose.

What each loader guarantees by itself, what is read and refused per format, and why: docs/security.md.
"""

from pathlib import Path

from rvm_export.contract.errors import RunnerError
from rvm_export.targets import TARGETS, load_entry


def inspect_artifact(path: Path, kind: str) -> None:
    """Check the ``kind`` artifact (a target name of ``rvm_export/targets.py``) at ``path`` before anything of
    it runs; raises :class:`RunnerError` (one line naming the file and the op or path it refuses) when it holds
    something no RVM graph written by rvm-export holds. Reads the artifact's files as data only."""
    path = Path(path)
    if kind not in TARGETS:
        raise RunnerError(f"cannot inspect {path}: unknown artifact kind {kind!r}")
    inspector = load_entry(TARGETS[kind].inspector)
    if not path.exists():
        raise RunnerError(f"artifact not found: {path}")
    inspector(path)


__all__ = ["inspect_artifact"]
