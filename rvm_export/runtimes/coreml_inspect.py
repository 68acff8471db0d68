"""Inspection of a CoreML model (``.mlmodel``, or an ``.mlpackage`` folder) before coremltools opens it: the spec
parsed with its generated message class, the package's ``Manifest.json`` and weight files confined to the
package, no custom layer or custom model (CoreML instantiates the class they name), only NeuralNetwork and ML
Program models. Why: docs/security.md.
"""

from pathlib import Path
from typing import Any, Iterator, Optional, Set, Tuple

from .inspection_readers import (
    MAX_BINARY_BYTES,
    check_folder,
    confined,
    inside,
    load_json,
    parse_message,
    read_limited,
    real,
    refuse,
    regular_file,
    show,
)

COREML_MODEL_TYPES = frozenset({"neuralNetwork", "mlProgram"})


def _coreml_models(spec: Any) -> Iterator[Any]:
    """The model and every model of its pipelines."""
    stack = [spec]
    while stack:
        model = stack.pop()
        yield model
        kind = model.WhichOneof("Type")
        if kind in ("pipeline", "pipelineClassifier", "pipelineRegressor"):
            stack.extend(getattr(model, kind).pipeline.models if kind != "pipeline" else model.pipeline.models)


def _coreml_ops(spec: Any) -> Tuple[Set[str], Set[str], Set[str]]:
    """An ML Program's op types (nested blocks included), a NeuralNetwork's layer kinds, and the ML Program's
    weight file names (its blobFileValue fileNames)."""
    ops: Set[str] = set()
    layers: Set[str] = set()
    blobs: Set[str] = set()
    for model in _coreml_models(spec):
        kind = model.WhichOneof("Type")
        if kind == "mlProgram":
            blocks = [b for f in model.mlProgram.functions.values() for b in f.block_specializations.values()]
            while blocks:
                block = blocks.pop()
                for op in block.operations:
                    ops.add(op.type)
                    blocks.extend(op.blocks)
                    values = list(op.attributes.values()) + [
                        a.value for arg in op.inputs.values() for a in arg.arguments if a.HasField("value")
                    ]
                    blobs.update(v.blobFileValue.fileName for v in values if v.WhichOneof("value") == "blobFileValue")
        elif kind and kind.startswith("neuralNetwork"):
            layers.update(layer.WhichOneof("layer") for layer in getattr(model, kind).layers)
    return ops, layers, blobs


def _read_coreml_spec(model_file: Path, file: Path) -> Any:
    from coremltools.proto import Model_pb2

    data = read_limited(model_file, file, MAX_BINARY_BYTES)
    return parse_message(Model_pb2.Model(), data, file, f"{model_file.name} is not a readable CoreML spec")


def _inspect_coreml_spec(spec: Any, file: Path, model_dir: Optional[Path], package: Optional[Path]) -> None:
    for model in _coreml_models(spec):
        kind = model.WhichOneof("Type")
        if kind == "neuralNetwork":
            for layer in model.neuralNetwork.layers:
                if layer.WhichOneof("layer") == "custom":
                    raise refuse(file, f"layer {show(layer.name)} is a custom layer (class "
                                  f"{show(layer.custom.className)}) CoreML would load code for")  # fmt: skip
        elif kind == "customModel":
            raise refuse(file, f"it is a custom model (class {show(model.customModel.className)}) CoreML would "
                          "load code for")  # fmt: skip
        elif kind not in COREML_MODEL_TYPES:
            raise refuse(file, f"it holds a {show(kind)} model, not a neural network or ML Program")
    ops, layers, blobs = _coreml_ops(spec)
    for blob in sorted(blobs):
        if package is None or model_dir is None or not blob.startswith("@model_path/"):
            raise refuse(file, f"weight file {show(blob)} is not inside the model package (@model_path/...)")
        resolved = confined(model_dir, blob[len("@model_path/") :], file, "weight file")
        if not inside(package, resolved):
            raise refuse(file, f"weight file {show(blob)} resolves to {resolved}, outside the model package")


def inspect(path: Path) -> None:
    if path.is_dir():
        package = check_folder(path, path)
        manifest_file = path / "Manifest.json"
        confined(package, "Manifest.json", path, "Manifest.json")
        regular_file(manifest_file, path)
        manifest = load_json(read_limited(manifest_file, path), path, "Manifest.json")
        items = manifest.get("itemInfoEntries") if isinstance(manifest, dict) else None
        if not isinstance(items, dict):
            raise refuse(path, "Manifest.json has no itemInfoEntries")
        data = package / "Data"
        for key, item in items.items():
            where = item.get("path") if isinstance(item, dict) else None
            resolved = confined(data, where, path, f"Manifest.json entry {show(key)} path")
            if not inside(package, resolved):
                raise refuse(path, f"Manifest.json entry {show(key)} resolves outside the package")
        root = items.get(manifest.get("rootModelIdentifier"))
        if not isinstance(root, dict):
            raise refuse(path, "Manifest.json's rootModelIdentifier names no entry")
        model_file = real(data / root["path"])
        regular_file(model_file, path)
        _inspect_coreml_spec(_read_coreml_spec(model_file, path), path, model_file.parent, package)
    else:
        regular_file(path, path)
        _inspect_coreml_spec(_read_coreml_spec(path, path), path, None, None)
