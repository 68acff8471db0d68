"""What makes two exports of the same inputs the same bytes, where a third-party writer would differ run to run.

Measured causes (docs/release.md has the per-target table):

- ``torch.jit.script`` emits each module's constants in the iteration order of a ``set`` of their names, which
  depends on Python's per-process string hash: :func:`sorted_jit_constants` makes it independent of the seed.
  (PyTorch's ``.data/serialization_id`` follows the archive's content: equal content, equal id.)
- ``torch.export.save`` to a path names the archive's top folder after the file, which is the atomic writer's
  temporary name: the ``.pt2`` exporter saves to memory instead; its stored sample input was unseeded ``rand``.
- A SavedModel's ``fingerprint.pb`` holds a random ``uuid``: :func:`stable_saved_model_fingerprint` derives it
  from the fingerprint's own hashes of the graph and the checkpoint.
- TF.js ``model.json``: ``MessageToDict`` lists a node's ``attr`` map in protobuf's map order, which varies per
  process: :func:`sorted_keys` sorts every object's keys.
- MNN's converter writes a random UUID into the model: :func:`stable_mnn_uuid` replaces it in place.
- CoreML: coremltools serialises the model protobuf with its maps in per-process order, and names an
  ``.mlpackage``'s items by random UUIDs in ``Manifest.json``: :func:`stable_coreml` re-serialises the protobuf
  deterministically and names each item by a UUID derived from its path.
"""

import contextlib
import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any, Iterator


class _SortedSet(set):
    """A set that iterates in sorted order (of the items' text), whatever the process's string hash seed."""

    def __iter__(self) -> Iterator[Any]:
        return iter(sorted(super().__iter__(), key=str))


@contextlib.contextmanager
def sorted_jit_constants() -> Iterator[None]:
    """Inside the block ``torch.jit.script`` adds each module's constants in sorted order (it iterates a
    ``set`` of their names: without this, the scripted code's constant lines move with ``PYTHONHASHSEED``)."""
    from torch.jit import _recursive

    had = "set" in vars(_recursive)
    previous = vars(_recursive).get("set")
    _recursive.set = _SortedSet  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if had:
            _recursive.set = previous  # type: ignore[attr-defined]
        else:
            del _recursive.set  # type: ignore[attr-defined]


def stable_saved_model_fingerprint(folder: Path) -> None:
    """Replace the random ``uuid`` in the SavedModel ``folder``'s ``fingerprint.pb`` by one derived from the
    fingerprint's hashes (the saved model, graph, signatures, object graph and checkpoint); no file: nothing."""
    path = Path(folder) / "fingerprint.pb"
    if not path.is_file():
        return
    from tensorflow.core.protobuf import fingerprint_pb2

    fingerprint = fingerprint_pb2.FingerprintDef()
    fingerprint.ParseFromString(path.read_bytes())
    fingerprint.uuid = ""
    digest = hashlib.sha256(fingerprint.SerializeToString(deterministic=True)).digest()
    fingerprint.uuid = str(int.from_bytes(digest[:16], "big"))  # TensorFlow's form: a 128-bit decimal number
    path.write_bytes(fingerprint.SerializeToString(deterministic=True))


def sorted_keys(value: Any) -> Any:
    """``value`` (parsed JSON) with every object's keys in sorted order (arrays keep theirs)."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


# MNN's Net.mnn_uuid: a flatbuffer string (uint32 length 36, then the text) near the start of the file.
_MNN_UUID = re.compile(rb"\x24\x00\x00\x00([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\x00")


def stable_mnn_uuid(data: bytes, window: int = 4096) -> bytes:
    """``data`` (an .mnn model) with the random UUID its converter writes replaced, in place, by one derived from
    the other bytes; unchanged unless exactly one such string is in the first ``window`` bytes."""
    found = list(_MNN_UUID.finditer(data[:window]))
    if len(found) != 1:
        return data
    begin, end = found[0].span(1)
    blank = data[:begin] + b"0" * (end - begin) + data[end:]
    stable = str(uuid.UUID(bytes=hashlib.sha256(blank).digest()[:16], version=4)).encode()
    return data[:begin] + stable + data[end:]


COREML_ITEMS = uuid.UUID("6b1f6a4e-3c2d-5b7a-9e1f-52564d2d6578")  # namespace of the derived item identifiers


def _deterministic_coreml_proto(path: Path) -> None:
    from coremltools.proto import Model_pb2

    model = Model_pb2.Model()
    model.ParseFromString(path.read_bytes())
    path.write_bytes(model.SerializeToString(deterministic=True))


def stable_coreml(path: Path) -> None:
    """Make a saved CoreML model at ``path`` (an ``.mlmodel`` file or an ``.mlpackage`` folder) the same bytes for
    the same model: its protobuf serialised deterministically; a package's item identifiers derived from each
    item's path (uuid5) instead of random, its manifest's entries in sorted order."""
    path = Path(path)
    if path.is_file():
        _deterministic_coreml_proto(path)
        return
    manifest_path = path / "Manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    entries = manifest.get("itemInfoEntries", {})
    renamed = {old: str(uuid.uuid5(COREML_ITEMS, str(entry.get("path", old)))) for old, entry in entries.items()}
    manifest["itemInfoEntries"] = {renamed[old]: entry for old, entry in entries.items()}
    if manifest.get("rootModelIdentifier") in renamed:
        root = entries[manifest["rootModelIdentifier"]]
        manifest["rootModelIdentifier"] = renamed[manifest["rootModelIdentifier"]]
        model_file = path / "Data" / str(root.get("path", ""))
        if model_file.is_file() and model_file.resolve().is_relative_to(path.resolve()):
            _deterministic_coreml_proto(model_file)
    manifest_path.write_text(json.dumps(sorted_keys(manifest), indent=4) + "\n", encoding="utf-8")


__all__ = [
    "stable_coreml",
    "sorted_jit_constants",
    "sorted_keys",
    "stable_mnn_uuid",
    "stable_saved_model_fingerprint",
]
