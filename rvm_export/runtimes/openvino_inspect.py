"""Inspection of an OpenVINO IR (``.xml`` + ``.bin``) before OpenVINO reads it: UTF-8 only and no DTD (pugixml reads
other encodings too), standard opsets only (an extension's ops need its library), every layer's ``offset``/``size``
inside the ``.bin`` and against its shape's bytes, whatever the case of ``Constant``. Why: docs/security.md.
"""

import re
from pathlib import Path
from typing import Dict, List, Tuple

from .inspection_readers import companion_bin_size, read_limited, refuse, regular_file, show

_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_XML_ENCODING = re.compile(r"""<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")


def _utf8_xml(xml: bytes) -> str:
    """The XML's text when it is UTF-8 (or ASCII), refused (ValueError) otherwise: OpenVINO's reader (pugixml)
    also takes UTF-16, UTF-32 and Latin-1 by their byte-order mark or declaration, in which a byte search for
    ``<!DOCTYPE`` sees nothing; only UTF-8 is accepted, and the DTD check reads the decoded text."""
    if xml.startswith((b"\xfe\xff", b"\xff\xfe")) or b"\0" in xml:
        raise ValueError("it is not UTF-8 (a UTF-16 or UTF-32 byte-order mark or NUL bytes)")
    try:
        text = xml.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 (byte {exc.start})")
    declared = _XML_ENCODING.match(text.lstrip("\ufeff"))
    if declared and declared.group(1).lower() not in ("utf-8", "utf8", "us-ascii", "ascii"):
        raise ValueError(f"it declares the encoding {declared.group(1)!r}; only UTF-8 is accepted")
    return text


def _openvino_layers(xml: bytes) -> List[Tuple[str, str, Dict[str, str]]]:
    """(type, version, data attributes) of every layer of an IR, nested bodies included. Refuses (ValueError)
    an XML that is not UTF-8 or declares a DTD or entities, before parsing it."""
    import xml.etree.ElementTree as ElementTree

    text = _utf8_xml(xml)
    if _DTD.search(text):
        raise ValueError("it declares a DTD or entities")
    root = ElementTree.fromstring(xml)
    if root.tag != "net":
        raise ValueError(f"its root element is <{root.tag}>, not <net>")
    layers = []
    for layer in root.iter("layer"):
        data = layer.find("data")
        layers.append((layer.get("type", ""), layer.get("version", ""), dict(data.attrib) if data is not None else {}))
    return layers


# Bits per element of OpenVINO's element types (openvino/core/type/element_type.hpp), for the bytes a constant of
# a shape needs; a type outside it is not checked that way (its offset and size still are).
_OV_ELEMENT_BITS = {
    "boolean": 8, "bf16": 16, "f16": 16, "f32": 32, "f64": 64, "i4": 4, "i8": 8, "i16": 16, "i32": 32, "i64": 64,
    "u1": 1, "u2": 2, "u3": 3, "u4": 4, "u6": 6, "u8": 8, "u16": 16, "u32": 32, "u64": 64, "nf4": 4,
    "f8e4m3": 8, "f8e5m2": 8, "f8e8m0": 8, "f4e2m1": 4,
}  # fmt: skip


def _check_openvino_weights(path: Path, kind: str, data: Dict[str, str], size: int) -> None:
    """A layer's ``offset``/``size`` into the .bin: plain decimal numbers, ``offset + size`` within the file (in
    Python's integers, so no overflow), and at least the bytes its shape and element type need. OpenVINO looks
    layer types up case-insensitively and reads ``Const`` and any case of ``Constant`` alike (the latter without
    its own shape check: tried), so this runs for every layer that has either attribute, whatever its type."""
    shown = f"layer type {show(kind)}"
    values = {k: data[k] for k in ("offset", "size") if k in data}
    if not all(re.fullmatch(r"[0-9]{1,20}", v.strip()) for v in values.values()):
        raise refuse(path, f"a {shown}'s offset/size {show(values)} are not plain numbers")
    offset, length = int(values.get("offset", "0")), int(values.get("size", "0"))
    if offset + length > size:
        raise refuse(path, f"a {shown} reads bytes {offset}..{offset + length} of {path.stem}.bin, which holds {size}")
    bits = _OV_ELEMENT_BITS.get(data.get("element_type", "").strip().lower())
    dims = [d.strip() for d in data.get("shape", "").split(",") if d.strip()]
    if bits and all(re.fullmatch(r"[0-9]{1,20}", d) for d in dims):
        count = 1
        for d in dims:
            count *= int(d)
        needed = (count * bits + 7) // 8
        if needed > length:
            raise refuse(path, f"a {shown} of shape [{', '.join(dims)}] needs {needed} bytes and its size is {length}")


def inspect(path: Path) -> None:
    regular_file(path, path)
    size = companion_bin_size(path)
    try:
        layers = _openvino_layers(read_limited(path, path))
    except ValueError as exc:  # our refusal of a DTD, or ElementTree's ParseError (a ValueError... not always)
        raise refuse(path, f"the IR's XML is refused: {exc}")
    except Exception as exc:  # xml.etree.ElementTree.ParseError
        raise refuse(path, f"the IR's XML is not readable ({exc.__class__.__name__}: {exc})")
    for kind, version, data in layers:
        if not re.fullmatch(r"opset[0-9]+", version):
            raise refuse(path, f"layer type {show(kind)} comes from {show(version)}, not a standard opset: "
                          "an extension OpenVINO would load code for")  # fmt: skip
        if "offset" in data or "size" in data:
            _check_openvino_weights(path, kind, data, size)
