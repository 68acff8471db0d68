"""Inspection of a TF.js graph model (a folder, or its ``model.json``) before TF.js reads it: every weights path
of the manifest a plain relative path inside the folder (the browser fetches them as URLs), no symlink out.
"""

from pathlib import Path

from .inspection_readers import check_folder, confined, load_json, read_limited, refuse, regular_file


def inspect(path: Path) -> None:
    folder = path.parent if path.name == "model.json" else path
    model_json = folder / "model.json"
    root = check_folder(folder, path)
    confined(root, "model.json", path, "model.json")
    regular_file(model_json, path)
    model = load_json(read_limited(model_json, path), path, "model.json")
    if not isinstance(model, dict) or not isinstance(model.get("modelTopology"), dict):
        raise refuse(path, "model.json is not a TF.js graph model")
    manifest = model.get("weightsManifest", [])
    if not isinstance(manifest, list):
        raise refuse(path, "model.json's weightsManifest is not a list")
    for group in manifest:
        paths = group.get("paths", []) if isinstance(group, dict) else None
        if not isinstance(paths, list):
            raise refuse(path, "a weightsManifest group has no list of paths")
        for name in paths:
            confined(root, name, path, "weights path", plain=True)
