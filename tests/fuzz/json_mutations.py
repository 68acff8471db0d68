"""JSON mutations: documents with huge shapes and sizes, wrong types, missing keys and deep nesting, the rvm
metadata every artifact embeds (also edited in place inside any file), and the TF.js formats' tables
(``model.json`` and its weight shards; the same artifact in Node.js and in headless Chromium)."""

import json
import random
import re
from pathlib import Path
from typing import Any, List, Sequence, Tuple

from tests.fuzz.mutations import (
    CASE,
    HUGE_INTS,
    Ctx,
    Format,
    Mutator,
    Skip,
    append_bytes,
    drop_file,
    flip_bytes,
    truncate,
)

# JSON documents ------------------------------------------------------------------------------------------

DEEP = 100_000  # nesting depth of the deep-nesting mutation


def _json_paths(value: Any, prefix: Tuple = ()) -> List[Tuple]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _json_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value[:64]):
            paths += _json_paths(item, prefix + (index,))
    return paths


def _get(doc: Any, path: Tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _forged_value(rng: random.Random, old: Any) -> Tuple[Any, str]:
    """A replacement for one JSON value: a forged size or count, a wrong type, or null."""
    if isinstance(old, list) and old and all(isinstance(v, (int, float, str)) for v in old):
        choice = rng.choice(["huge-dims", "negative-dims", "rank", "repeat", "strings", "empty"])
        if choice == "huge-dims":
            huge = rng.choice([2**31 - 1, 2**32, 10**9, 2**62])
            return [type(v)(huge) if isinstance(v, str) else huge for v in old], f"every element {huge}"
        if choice == "negative-dims":
            return [-7] * len(old), "every element -7"
        if choice == "rank":
            return old * 40, f"{len(old) * 40} elements (was {len(old)})"
        if choice == "repeat":
            return old + old, "elements doubled"
        if choice == "strings":
            return ["x"] * len(old), "strings"
        return [], "empty list"
    if isinstance(old, bool):
        return rng.choice([(None, "null"), ("true", "a string"), (2**40, "a huge number")])
    if isinstance(old, (int, float)):
        value = rng.choice(HUGE_INTS + (1e308, 0.5, 0, "64"))
        return value, f"{value!r}"
    if isinstance(old, str):
        if re.fullmatch(r"-?\d+", old):  # TF.js stores sizes as strings
            value = rng.choice(["2147483647", "99999999999999", "-5", "18446744073709551616", "x"])
            return value, f"{value!r}"
        value = rng.choice(["", "x" * 5000, "../../../etc/passwd", "\u0000", "float128", 12])
        return value, f"{value!r}"[:40]
    if isinstance(old, list):
        return rng.choice([([], "empty list"), (old * 3, f"{len(old) * 3} items"), ({}, "an object")])
    if isinstance(old, dict):
        return rng.choice([({}, "an empty object"), ([], "a list"), ("x", "a string"), (7, "a number")])
    return rng.choice([(1, "1"), ("x", "a string")])


def mutate_json_text(ctx: Ctx, text: str, focus: Sequence[str] = (), what: str = "") -> Tuple[str, str]:
    """``text`` with one forgery applied to its JSON document (or broken as text when it does not parse)."""
    rng = ctx.rng
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if doc is None or rng.random() < 0.08:
        cut = rng.randrange(max(1, len(text)))
        return text[:cut], f"{what} JSON cut at character {cut} of {len(text)}"
    if rng.random() < 0.07:
        return "[" * DEEP + "]" * DEEP, f"{what} JSON replaced by lists nested {DEEP} deep"
    paths = _json_paths(doc)
    if not paths:
        return rng.choice(["[]", "null", '"x"', "7"]), f"{what} JSON document replaced by a non-object"
    focused = [p for p in paths if p and isinstance(p[-1], str) and p[-1] in focus]
    path = rng.choice(focused if focused and rng.random() < 0.8 else paths)
    parent, key = _get(doc, path[:-1]), path[-1]
    label = "/".join(str(k) for k in path)
    op = rng.random()
    if op < 0.15:
        del parent[key]
        desc = f"removed {label}"
    elif op < 0.22:
        parent[key] = "__RVM_DEEP__"
        text = json.dumps(doc).replace('"__RVM_DEEP__"', "[" * DEEP + "]" * DEEP)
        return text, f"{what} {label} replaced by lists nested {DEEP} deep"
    else:
        parent[key], change = _forged_value(rng, parent[key])
        desc = f"{label} set to {change}"
    return json.dumps(doc), f"{what} {desc}".strip()


def mutate_json_file(ctx: Ctx, path: Path, focus: Sequence[str] = ()) -> str:
    text, desc = mutate_json_text(ctx, path.read_text(encoding="utf-8", errors="replace"), focus, ctx.rel(path))
    path.write_text(text, encoding="utf-8")
    return desc


METADATA_FOCUS = (
    "width",
    "height",
    "downsample_ratio",
    "static",
    "variant",
    "refiner",
    "precision",
    "format",
    "seed",
    "checkpoint",
    "checkpoint_sha256",
    "schema",
    "options",
    "layout",
    "inference_precision",
    "opset",
)


def mutate_metadata_text(ctx: Ctx, text: str) -> Tuple[str, str]:
    return mutate_json_text(ctx, text, METADATA_FOCUS, "metadata")


METADATA_MARK = b'"checkpoint_sha256"'


def metadata_inplace(ctx: Ctx, path: Path) -> str:
    """Same-length edits in the embedded metadata JSON, wherever it is stored (no container to rewrite)."""
    data = bytearray(path.read_bytes())
    at = data.find(METADATA_MARK)
    if at < 0:
        raise Skip("no embedded metadata")
    start = data.rfind(b"{", max(0, at - 4000), at)
    end = _json_end(data, start) if start >= 0 else -1
    if end < 0:
        raise Skip("metadata not delimited")
    region = bytes(data[start : end + 1])
    rng = ctx.rng
    edits = [
        (rb"\d", b"9", "digits set to 9"),
        (rb"mobilenetv3|resnet50", None, "variant renamed"),
        (rb"fp32|fp16|int8|uint8", b"fp99", "precision renamed"),
        (rb'"(variant|refiner|precision|options|format)"', None, "a key renamed (missing)"),
        (rb"null", b"9999", "null set to a number"),
        (rb"[{]", b"[", "an object opened as a list"),
        (rb'"', b"'", "a quote replaced"),
        (rb"\d+(\.\d+)?", None, "a number replaced by letters"),
    ]
    pattern, replacement, label = rng.choice(edits)
    matches = list(re.finditer(pattern, region))
    if not matches:
        raise Skip("nothing to edit")
    chosen = rng.sample(matches, min(len(matches), rng.choice([1, 1, 3])))
    for m in chosen:
        old = m.group(0)
        if replacement is not None and len(replacement) == len(old):
            new = replacement
        else:
            new = (
                bytes(rng.choice(b"xyz") for _ in old)
                if not old.startswith(b'"')
                else b'"' + b"q" * (len(old) - 2) + b'"'
            )
        region = region[: m.start()] + new + region[m.end() :]
    data[start : end + 1] = region
    path.write_bytes(bytes(data))
    return f"embedded metadata in {ctx.rel(path)}: {label} ({len(chosen)} place(s), same length)"


def _json_end(data: bytes, start: int) -> int:
    """The offset of the brace that closes the JSON object opening at ``start``, or -1."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, min(len(data), start + 100_000)):
        byte = data[i]
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte == 0x7B:
            depth += 1
        elif byte == 0x7D:
            depth -= 1
            if depth == 0:
                return i
    return -1


def mutate_metadata_file(ctx: Ctx, path: Path) -> str:
    text, desc = mutate_metadata_text(ctx, path.read_text(encoding="utf-8", errors="replace"))
    path.write_text(text, encoding="utf-8")
    return f"{ctx.rel(path)}: {desc}"


def _tfjs_shards(ctx: Ctx) -> List[Path]:
    return sorted(ctx.root.glob("*.bin"))


TFJS_MANIFEST_FOCUS = ("shape", "dtype", "paths", "name", "weights", "quantization", "scale", "min", "original_dtype")
TFJS_TOPOLOGY_FOCUS = ("shape", "dim", "size", "dtype", "type", "i", "list", "value", "tensor", "op", "input", "attr")


TFJS_KINDS: Tuple[Tuple[str, Mutator], ...] = (
    ("weightsManifest JSON", lambda c: _tfjs_json(c, "weightsManifest", TFJS_MANIFEST_FOCUS)),
    ("truncate shard", lambda c: truncate(c, c.rng.choice(_tfjs_shards(c)))),
    ("modelTopology JSON", lambda c: _tfjs_json(c, "modelTopology", TFJS_TOPOLOGY_FOCUS)),
    ("metadata JSON", lambda c: _tfjs_json(c, "userDefinedMetadata", METADATA_FOCUS)),
    ("truncate model.json", lambda c: truncate(c, c.root / "model.json")),
    ("model.json bytes", lambda c: flip_bytes(c, c.root / "model.json", head=c.rng.random() < 0.3)),
    ("shard removed or grown", lambda c: _tfjs_shard_edit(c)),
    (
        "model.json JSON",
        lambda c: mutate_json_file(
            c, c.root / "model.json", ("format", "weightsManifest", "modelTopology", "signature")
        ),
    ),
    ("shard bytes", lambda c: flip_bytes(c, c.rng.choice(_tfjs_shards(c)), head=False)),
)


def _tfjs_json(ctx: Ctx, key: str, focus: Sequence[str]) -> str:
    path = ctx.root / "model.json"
    doc = json.loads(path.read_text())
    if key not in doc:
        raise Skip(f"model.json has no {key}")
    part = doc[key]
    if key == "userDefinedMetadata" and isinstance(part, dict) and "rvm_metadata.json" in part:
        text, desc = mutate_metadata_text(ctx, json.dumps(part["rvm_metadata.json"]))
        marker = "__RVM_PART__"
        part["rvm_metadata.json"] = marker
        path.write_text(json.dumps(doc).replace(json.dumps(marker), text))
        return f"model.json userDefinedMetadata: {desc}"
    text, desc = mutate_json_text(ctx, json.dumps(part), focus, key)
    marker = "__RVM_PART__"
    doc[key] = marker
    path.write_text(json.dumps(doc).replace(json.dumps(marker), text))
    return f"model.json {desc}"


def _tfjs_shard_edit(ctx: Ctx) -> str:
    shards = _tfjs_shards(ctx)
    if ctx.rng.random() < 0.5:
        return drop_file(ctx, shards)
    return append_bytes(ctx, ctx.rng.choice(shards))


FORMATS = (
    Format("tfjs", "tfjs", "rvm_tfjs", (), CASE, TFJS_KINDS),
    # the same artifact read by TF.js in headless Chromium (its own fetch and loader), on the wasm backend
    Format("tfjs-browser", "tfjs", "rvm_tfjs", (), CASE + ("--tfjs-backend", "wasm"), TFJS_KINDS),
)
