"""The TF.js graph model with the refiner as it was before: variance as E[x²] - E[x]² (naive moments), to set
beside the exported one (moments about the window mean, rvm_export/export/tf_port/guided_filter.py) on each
TF.js backend.

    .venv/bin/python benchmarks/experiments/tfjs_naive_refiner.py --output naive_tfjs [--checkpoint PTH]
    .venv/bin/rvm-bench naive_tfjs artifacts/rvm_mobilenetv3_tfjs --frames 3 --rounds 2 \\
        --tfjs-backend node --tfjs-backend webgl --tfjs-backend webgl-f16 --tfjs-backend wasm \\
        --size 320x192 --ratio 0.5 --size 512x288 --ratio 0.5      # accuracy at 320x192 r0.5; again with --ratio 1

Writes an fp32 TF.js artifact from the real weights with ``net.refiner.naive_moments = True`` and the
exporter's metadata (its options say which refiner it holds), so ``rvm-bench`` and ``rvm-verify`` run it
like any artifact. An experiment, not an export option: docs/tfjs.md ("Half-precision WebGL: the refiner's
moments are taken about the local mean") shows what it measured (the naive form gives NaN/Inf on float16
textures at ratio 0.5).
"""

import argparse
from pathlib import Path
from typing import List, Optional

from rvm_export.export.base import load_source
from rvm_export.export.tf_port import from_torch
from rvm_export.export.tfjs import export_tfjs

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO.parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"


def export_naive(checkpoint: Path, output: Path) -> Path:
    source = load_source(checkpoint)
    net = from_torch(source.model)
    net.refiner.naive_moments = True
    metadata = source.metadata("tfjs", "fp32", quantization="none")
    metadata.layout = "NHWC"
    metadata.options["refiner_moments"] = "naive E[x^2] - E[x]^2 (benchmarks/experiments/tfjs_naive_refiner.py)"
    return export_tfjs(net, output, metadata, "none")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=WEIGHTS)
    parser.add_argument("--output", type=Path, required=True, help="The TF.js folder to write (e.g. naive_tfjs).")
    args = parser.parse_args(argv)
    print(f"wrote {export_naive(args.checkpoint, args.output)}")


if __name__ == "__main__":
    main()
