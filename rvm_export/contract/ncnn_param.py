"""The ncnn ``.param`` text as data: parsed, edited and written back (shared by the ncnn exporter, runner and
inspector, which may not import each other).

A ``.param`` is ``7767517`` (the magic), ``LAYERS BLOBS``, then one line per layer:
``Type name #bottoms #tops bottom... top... key=value...``. ncnn's loader (``Net::load_param`` in
src/net.cpp) reads exactly ``LAYERS`` layers and stops: what follows the last layer is never read. rvm-export
keeps its metadata document there, on one line ``#rvm_metadata.json {...}``, so the artifact is still the
``.param`` + ``.bin`` pair a phone app loads, and the document travels with it.

ncnn reads the file as tokens, not lines; :func:`parse` accepts only what it reads the same way as ncnn does
(every parameter token ``key=value``, a value quoted only as a whole), so a line cannot mean one thing here and
another to ncnn.

Layer parameter 31 is ncnn's per-layer feature mask (``Layer::featmask``, ``get_masked_option`` in net.cpp):
bit 0 turns fp16 arithmetic off for that layer, bit 1 fp16 storage, bit 2 bf16 storage, whatever the net's
options say. :data:`FP32_FEATMASK` on the refiner's layers keeps the guided filter in fp32 on an ARMv8.2 phone,
where ncnn's defaults compute everything else in fp16.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Set

from .metadata import METADATA_KEY
from .names import STATE_OUTPUTS

MAGIC = "7767517"
METADATA_PREFIX = f"#{METADATA_KEY} "
FEATMASK_KEY = "31"
FP32_FEATMASK = 1 | 2 | 4  # no fp16 arithmetic, no fp16 storage, no bf16 storage
_PARAM = re.compile(r'\s*(-?\d+)=("[^"\n]*"|[^\s"]+)')
_NAME = re.compile(r"[^\s]{1,255}")


@dataclass
class Layer:
    type: str
    name: str
    bottoms: List[str]
    tops: List[str]
    params: Dict[str, str] = field(default_factory=dict)  # key -> value as written (arrays: "-23300=...")

    def line(self) -> str:
        head = [self.type, self.name, str(len(self.bottoms)), str(len(self.tops)), *self.bottoms, *self.tops]
        return " ".join(head + [f"{k}={v}" for k, v in self.params.items()])

    def integer(self, key: str) -> int:
        """Parameter ``key`` as an integer, 0 when absent; ValueError (one line) when it is not an integer."""
        value = self.params.get(key, "0")
        if not re.fullmatch(r"-?[0-9]{1,10}", value):
            raise ValueError(f"layer {self.name[:40]!r} parameter {key}={value[:20]!r} is not an integer")
        return int(value)

    @property
    def featmask(self) -> int:
        return int(self.params.get(FEATMASK_KEY, "0"))


@dataclass
class Param:
    layers: List[Layer]
    blob_count: int
    trailer: List[str] = field(default_factory=list)  # non-empty lines after the last layer

    def text(self) -> str:
        lines = [MAGIC, f"{len(self.layers)} {self.blob_count}", *(layer.line() for layer in self.layers)]
        return "\n".join(lines + self.trailer) + "\n"

    def metadata_text(self) -> Optional[str]:
        found = [line[len(METADATA_PREFIX) :] for line in self.trailer if line.startswith(METADATA_PREFIX)]
        return found[-1] if found else None

    def set_metadata(self, document: str) -> None:
        self.trailer = [line for line in self.trailer if not line.startswith(METADATA_PREFIX)]
        self.trailer.append(METADATA_PREFIX + json.dumps(json.loads(document), sort_keys=True))

    def layer(self, name: str) -> Layer:
        return next(layer for layer in self.layers if layer.name == name)

    def inputs(self) -> List[Layer]:
        return [layer for layer in self.layers if layer.type == "Input"]


def parse(text: str) -> Param:
    """The layers of a ``.param`` text; ValueError (one line) for anything ncnn would read otherwise or refuse."""
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    if len(lines) < 2 or lines[0] != MAGIC:
        raise ValueError(f"the first line is not ncnn's magic {MAGIC}")
    counts = lines[1].split()
    if len(counts) != 2 or not all(c.isdigit() for c in counts):
        raise ValueError("the second line is not 'LAYERS BLOBS'")
    layer_count, blob_count = int(counts[0]), int(counts[1])
    if not 0 < layer_count <= len(lines) - 2 or blob_count <= 0:
        raise ValueError(f"it declares {layer_count} layers and {blob_count} blobs, and holds {len(lines) - 2} lines")
    layers = [_layer(line, i) for i, line in enumerate(lines[2 : 2 + layer_count])]
    return Param(layers, blob_count, lines[2 + layer_count :])


def _layer(line: str, index: int) -> Layer:
    tokens = line.split(None, 4)
    if len(tokens) < 4 or not tokens[2].isdigit() or not tokens[3].isdigit():
        raise ValueError(f"layer {index} is not 'Type name #bottoms #tops ...'")
    kind, name, n_bottoms, n_tops = tokens[0], tokens[1], int(tokens[2]), int(tokens[3])
    rest = line.split(None, 4 + n_bottoms + n_tops)
    blobs = rest[4 : 4 + n_bottoms + n_tops]
    if len(blobs) != n_bottoms + n_tops:
        raise ValueError(f"layer {index} ({name[:40]}) names fewer blobs than it declares")
    for token in [kind, name, *blobs]:
        if not _NAME.fullmatch(token):
            raise ValueError(f"layer {index} has a name longer than ncnn's 255 characters")
    tail = rest[4 + n_bottoms + n_tops] if len(rest) > 4 + n_bottoms + n_tops else ""
    params: Dict[str, str] = {}
    at = 0
    while at < len(tail):
        match = _PARAM.match(tail, at)
        if match is None:
            if tail[at:].strip():
                raise ValueError(f"layer {index} ({name[:40]}) has a parameter that is not key=value")
            break
        params[match.group(1)] = match.group(2)
        at = match.end()
    return Layer(kind, name, blobs[:n_bottoms], blobs[n_bottoms:], params)


def producers(param: Param) -> Dict[str, int]:
    """blob name -> the index of the layer that writes it."""
    return {top: i for i, layer in enumerate(param.layers) for top in layer.tops}


def ancestors(param: Param, blobs: Iterable[str]) -> Set[int]:
    """The layers whose outputs ``blobs`` depend on (their producers included)."""
    made = producers(param)
    seen: Set[int] = set()
    stack = [made[b] for b in blobs if b in made]
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        stack.extend(made[b] for b in param.layers[i].bottoms if b in made)
    return seen


def refiner_layers(param: Param, head: str) -> List[Layer]:
    """The layers the low-resolution network does not need: the guided-filter refiner and the final
    composition. ``head`` is the layer that splits the projection into the foreground residual and alpha;
    everything that the head or the recurrent states ``r1o..r4o`` depend on is the network."""
    network = ancestors(param, [*param.layer(head).tops, *STATE_OUTPUTS])
    return [layer for i, layer in enumerate(param.layers) if i not in network and layer.type != "Input"]


def projection_split(param: Param) -> Optional[str]:
    """The name of the first ``Slice`` into 3 + 1 channels: ``project_mat``'s split into the foreground
    residual and alpha (the refiner's own split of its output comes later in the file)."""
    for layer in param.layers:
        if layer.type == "Slice" and len(layer.tops) == 2 and layer.params.get("-23300") in ("2,3,-233", "2,3,1"):
            return layer.name
    return None


__all__ = [
    "FP32_FEATMASK",
    "MAGIC",
    "METADATA_PREFIX",
    "Layer",
    "Param",
    "ancestors",
    "parse",
    "producers",
    "projection_split",
    "refiner_layers",
]
