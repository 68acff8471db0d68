"""ncnn ``.param`` text mutations: a number forged, a layer line removed or duplicated, the metadata line; and
ncnn's table (the ``.param`` and its ``.bin``)."""

import re
from pathlib import Path

from tests.fuzz.json_mutations import mutate_metadata_text
from tests.fuzz.mutations import CASE, HUGE_INTS, Ctx, Format, Skip, append_bytes, flip_bytes, forge_word, truncate


def _ncnn_bin(ctx: Ctx) -> Path:
    return ctx.root.with_suffix(".bin")


def ncnn_metadata(ctx: Ctx, path: Path) -> str:
    """The .param's metadata line (``#rvm_metadata.json {...}``, after the last layer) mutated as JSON."""
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    index = next((i for i, line in enumerate(lines) if line.startswith("#rvm_metadata.json ")), None)
    if index is None:
        raise Skip("no metadata line")
    text, desc = mutate_metadata_text(ctx, lines[index][len("#rvm_metadata.json ") :])
    lines[index] = "#rvm_metadata.json " + text.replace("\n", " ")
    path.write_text("\n".join(lines), encoding="utf-8")
    return f"{ctx.rel(path)} metadata line: {desc}"


def ncnn_number(ctx: Ctx, path: Path) -> str:
    """One number of the .param (a count, a layer's blob count or a key=value parameter) set to a forged value."""
    text = path.read_text(encoding="utf-8", errors="replace")
    numbers = [m for m in re.finditer(r"(?<![\w.])-?[0-9]+(?![\w.])", text) if not text[: m.start()].endswith("#")]
    metadata_at = text.find("#rvm_metadata.json")
    numbers = [m for m in numbers if metadata_at < 0 or m.start() < metadata_at]
    if not numbers:
        raise Skip("no numbers")
    match = ctx.rng.choice(numbers)
    value = ctx.rng.choice(HUGE_INTS + (0, 1, 2, 3, 255, 256, 65536))
    path.write_text(text[: match.start()] + str(value) + text[match.end() :], encoding="utf-8")
    return f"{ctx.rel(path)}: {match.group(0)} at offset {match.start()} set to {value}"


def ncnn_line(ctx: Ctx, path: Path) -> str:
    """One layer line of the .param removed or duplicated (counts and blobs no longer agree)."""
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    layers = [i for i in range(2, len(lines)) if lines[i] and not lines[i].startswith("#")]
    if not layers:
        raise Skip("no layer lines")
    index = ctx.rng.choice(layers)
    if ctx.rng.random() < 0.5:
        removed = lines.pop(index)
        what = f"removed layer line {index} ({removed.split(' ')[0]})"
    else:
        lines.insert(index, lines[index])
        what = f"duplicated layer line {index}"
    path.write_text("\n".join(lines), encoding="utf-8")
    return f"{ctx.rel(path)}: {what}"


FORMATS = (
    Format(
        "ncnn",
        "ncnn",
        "rvm.ncnn.param",
        ("--downsample-ratio", "0.5"),
        CASE,
        (
            ("param number", lambda c: ncnn_number(c, c.root)),
            ("truncate .bin", lambda c: truncate(c, _ncnn_bin(c))),
            ("metadata line", lambda c: ncnn_metadata(c, c.root)),
            ("layer line", lambda c: ncnn_line(c, c.root)),
            ("truncate .param", lambda c: truncate(c, c.root)),
            (".param bytes", lambda c: flip_bytes(c, c.root, head=c.rng.random() < 0.5)),
            (".bin bytes", lambda c: flip_bytes(c, _ncnn_bin(c), head=False)),
            (".bin grown", lambda c: append_bytes(c, _ncnn_bin(c))),
            ("param number", lambda c: ncnn_number(c, c.root)),
            (".bin word forged", lambda c: forge_word(c, _ncnn_bin(c), head=c.rng.random() < 0.5)),
        ),
    ),
)
