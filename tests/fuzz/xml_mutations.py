"""OpenVINO IR mutations: XML attributes (sizes, offsets, shapes, types) forged, elements removed, the metadata
element; and OpenVINO's table (the ``.xml`` and its ``.bin``)."""

import html
import re
from pathlib import Path

from tests.fuzz.json_mutations import mutate_metadata_text
from tests.fuzz.mutations import CASE, Ctx, Format, Skip, append_bytes, flip_bytes, truncate

# OpenVINO XML ---------------------------------------------------------------------------------------------

XML_ATTR = re.compile(
    rb'\b(shape|offset|size|element_type|precision|from-layer|from-port|to-layer|to-port|version|type|id)="([^"]*)"'
)
XML_DIM = re.compile(rb"<dim>(-?\d+)</dim>")


def xml_attribute(ctx: Ctx, path: Path) -> str:
    data = path.read_bytes()
    rng = ctx.rng
    if rng.random() < 0.2:
        matches, label = list(XML_DIM.finditer(data)), "dim"
    else:
        matches = list(XML_ATTR.finditer(data))
        focused = [m for m in matches if m.group(1) in (b"shape", b"offset", b"size", b"element_type")]
        matches = focused if focused and rng.random() < 0.7 else matches
        label = ""
    if not matches:
        raise Skip("no attributes")
    m = rng.choice(matches)
    name = label or m.group(1).decode()
    values = {
        "shape": [b"2147483647, 2147483647", b"1000000, 1000000, 1000", b"-5", b"1,1,1,1,1,1,1,1,1,1", b"x", b""],
        "offset": [b"18446744073709551615", b"9223372036854775807", b"99999999999", b"-1", b"x"],
        "size": [b"18446744073709551615", b"9223372036854775807", b"99999999999", b"0", b"-1", b"x"],
        "element_type": [b"f64", b"foo", b"u1", b"string", b"dynamic", b""],
        "precision": [b"FP64", b"XYZ", b""],
        "version": [b"opset999", b"", b"x"],
        "type": [b"NoSuchOp", b"", b"Parameter"],
        "dim": [b"2147483647", b"-7", b"0", b"99999999999999999999"],
    }.get(name, [b"999999", b"-1", b"0", b"x", b"18446744073709551615"])
    value = rng.choice(values)
    group = 1 if label else 2
    if name in ("offset", "size") and rng.random() < 0.4 and m.group(2).isdigit():
        value = str(int(m.group(2)) + rng.choice([1, 4, 10**6])).encode()
    data = data[: m.start(group)] + value + data[m.end(group) :]
    path.write_bytes(data)
    return f"xml {name}={m.group(group).decode(errors='replace')[:30]!r} -> {value.decode()[:30]!r}"


def xml_remove(ctx: Ctx, path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    rng = ctx.rng
    choice = rng.choice(["layer", "edge", "data", "rt_info"])
    patterns = {
        "layer": r"<layer [^>]*>.*?</layer>\s*",
        "edge": r"<edge [^>]*/>\s*",
        "data": r"<data [^>]*/>\s*",
        "rt_info": r"<rt_info>.*?</rt_info>\s*",
    }
    matches = list(re.finditer(patterns[choice], text, flags=re.S))
    if not matches:
        raise Skip(f"no {choice}")
    m = rng.choice(matches)
    path.write_text(text[: m.start()] + text[m.end() :], encoding="utf-8")
    return f"xml: removed one <{choice}> element"


def xml_metadata(ctx: Ctx, path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    found = list(re.finditer(r'(<rvm_metadata\.json value=")([^"]*)(")', text))
    if not found:
        raise Skip("no rt_info metadata")
    m = found[-1] if ctx.rng.random() < 0.8 else ctx.rng.choice(found)  # the last: the one the runner reads
    new, desc = mutate_metadata_text(ctx, html.unescape(m.group(2)))
    path.write_text(text[: m.start(2)] + html.escape(new, quote=True) + text[m.end(2) :], encoding="utf-8")
    return f"xml rt_info {desc}"


def _ov_bin(ctx: Ctx) -> Path:
    return ctx.root.with_suffix(".bin")


FORMATS = (
    Format(
        "openvino",
        "openvino",
        "rvm.xml",
        (),
        CASE,
        (
            ("xml attribute", lambda c: xml_attribute(c, c.root)),
            ("truncate .bin", lambda c: truncate(c, _ov_bin(c))),
            ("truncate .xml", lambda c: truncate(c, c.root)),
            ("metadata JSON", lambda c: xml_metadata(c, c.root)),
            ("xml element removed", lambda c: xml_remove(c, c.root)),
            ("xml attribute", lambda c: xml_attribute(c, c.root)),
            (".xml bytes", lambda c: flip_bytes(c, c.root, head=c.rng.random() < 0.5)),
            (".bin bytes", lambda c: flip_bytes(c, _ov_bin(c), head=False)),
            (".bin grown", lambda c: append_bytes(c, _ov_bin(c))),
        ),
    ),
)
