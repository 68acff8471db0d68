"""What every fuzz mutation stands on: :class:`Ctx` (the artifact copy being edited and its random stream),
:class:`Skip`, :class:`Format` (one reader's table: the target, the good artifact, the rvm-verify case and the
mutations in order of priority), and the mutations of any file: truncation, byte changes, forged words, appended
bytes, a file removed. The format-aware mutations are in one module per encoding beside this one."""

import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

# --- Mutations ----------------------------------------------------------------------------------------

HUGE_32 = (0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0x40000000, 0x10000000)
HUGE_64 = (2**63 - 1, 2**64 - 1, 2**40, 2**62, 2**33)
HUGE_INTS = (2**31 - 1, 2**31, 2**32, 2**40, 2**53, 2**62, 10**12, -1, -(2**31))


class Skip(Exception):
    """This mutation does not apply to this artifact (nothing of its kind in the file)."""


@dataclass
class Ctx:
    """One mutation at work: the artifact copy it edits and the random numbers it draws."""

    rng: random.Random
    root: Path  # the artifact: a file, or a folder

    def file(self, relative: str = "") -> Path:
        return self.root / relative if relative else self.root

    def rel(self, path: Path) -> str:
        return path.name if path == self.root else str(path.relative_to(self.root.parent))


def _pick_offset(rng: random.Random, size: int, head: bool) -> int:
    return rng.randrange(min(size, 1024)) if head else rng.randrange(size)


def truncate(ctx: Ctx, path: Path) -> str:
    data = path.read_bytes()
    n = len(data)
    at = ctx.rng.choice([0, 1, 4, 8, 16, 64, 512, 4096, n // 4, n // 2, n - 64, n - 8, n - 1, ctx.rng.randrange(n)])
    at = max(0, min(at, n - 1))
    path.write_bytes(data[:at])
    return f"truncated {ctx.rel(path)} to {at} of {n} bytes"


def flip_bytes(ctx: Ctx, path: Path, head: bool, window: Optional[Tuple[int, int]] = None) -> str:
    data = bytearray(path.read_bytes())
    if not data:
        raise Skip("empty file")
    count = ctx.rng.choice([1, 1, 2, 3, 4, 8, 32])
    if window is not None:
        lo, hi = max(0, window[0]), min(len(data), window[1])
        offsets = sorted(ctx.rng.randrange(lo, hi) for _ in range(count))
    else:
        offsets = sorted(_pick_offset(ctx.rng, len(data), head) for _ in range(count))
    for offset in offsets:
        data[offset] ^= ctx.rng.randrange(1, 256)
    path.write_bytes(bytes(data))
    where = "in the first KB of" if head else "of"
    return f"changed {count} byte(s) {where} {ctx.rel(path)} at {shown_offsets(offsets)}"


def forge_word(ctx: Ctx, path: Path, head: bool) -> str:
    """A 4- or 8-byte little-endian word set to a huge value (a forged size, count or offset)."""
    data = bytearray(path.read_bytes())
    width = ctx.rng.choice([4, 8])
    if len(data) <= width:
        raise Skip("file too short")
    value = ctx.rng.choice(HUGE_32 if width == 4 else HUGE_64)
    offset = _pick_offset(ctx.rng, len(data) - width, head)
    offset -= offset % width
    data[offset : offset + width] = value.to_bytes(width, "little")
    path.write_bytes(bytes(data))
    return f"wrote {value:#x} as a {width}-byte word at offset {offset} of {ctx.rel(path)}"


def append_bytes(ctx: Ctx, path: Path) -> str:
    extra = bytes(ctx.rng.randrange(256) for _ in range(ctx.rng.choice([1, 7, 100, 4096])))
    with path.open("ab") as f:
        f.write(extra)
    return f"appended {len(extra)} random bytes to {ctx.rel(path)}"


def shown_offsets(offsets: Sequence[int]) -> str:
    shown = ", ".join(str(o) for o in offsets[:4])
    return shown + (f" (+{len(offsets) - 4} more)" if len(offsets) > 4 else "")


# Folders -----------------------------------------------------------------------------------------------------


def drop_file(ctx: Ctx, candidates: Sequence[Path]) -> str:
    existing = [p for p in candidates if p.exists()]
    if not existing:
        raise Skip("nothing to drop")
    victim = ctx.rng.choice(existing)
    if victim.is_dir():
        shutil.rmtree(victim)
    else:
        victim.unlink()
    return f"removed {ctx.rel(victim)}"


def weighted(ctx: Ctx, choices: Sequence[Tuple[float, Path]]) -> Path:
    present = [(w, p) for w, p in choices if p.is_file() and p.stat().st_size]
    total = sum(w for w, _ in present)
    pick = ctx.rng.random() * total
    for w, p in present:
        pick -= w
        if pick <= 0:
            return p
    return present[-1][1]


# --- A format's table -----------------------------------------------------------------------------------------

Mutator = Callable[[Ctx], str]
CASE = ("--frames", "2", "--size", "64x48", "--ratio", "0.5")  # the rvm-verify arguments of each input
FIXED_CASE = ("--frames", "2")  # CoreML and ExecuTorch: the size and ratio are baked in


@dataclass(frozen=True)
class Format:
    name: str
    target: str
    artifact: str  # name of the seeded artifact the driver exports
    export_args: Tuple[str, ...]
    case: Tuple[str, ...]
    kinds: Tuple[Tuple[str, Mutator], ...]  # in order of priority: a few inputs cover the first kinds
