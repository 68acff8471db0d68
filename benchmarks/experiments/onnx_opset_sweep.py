"""Every supported opset exports and verifies: a table of opset x precision.

    .venv/bin/python benchmarks/experiments/onnx_opset_sweep.py [--checkpoint PTH] [--precision fp32 --precision fp16]

For each opset from MIN_OPSET to MAX_OPSET (and each precision): export a dynamic artifact,
run the closed-loop verification (an odd size at ratio 1 and < 1), print export time, node
count, worst alpha error and PASS/FAIL. Exit status 1 if any opset fails. The test suite checks
opsets 11, 12 and 20; this script checks all of them.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import onnx

from rvm_export.export.base import at_precision, load_source
from rvm_export.export.onnx import MAX_OPSET, MIN_OPSET, export_onnx
from rvm_export.verify.api import verify_artifact

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CHECKPOINT = REPO.parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT.resolve())
    parser.add_argument("--precision", action="append", choices=["fp32", "fp16"], help="Repeatable (default fp32).")
    parser.add_argument("--frames", type=int, default=3)
    args = parser.parse_args(argv)
    precisions = args.precision or ["fp32"]
    failed = 0
    print(f"{'opset':>5}  {'prec':<5}{'export s':>9}{'nodes':>7}{'pha max|e|':>12}{'r4o max|e|':>12}  result")
    with tempfile.TemporaryDirectory() as work:
        for opset in range(MIN_OPSET, MAX_OPSET + 1):
            for precision in precisions:
                source = load_source(args.checkpoint)
                path = Path(work) / f"rvm_{precision}_op{opset}.onnx"
                start = time.perf_counter()
                try:
                    metadata = source.metadata("onnx", precision, opset=opset)
                    export_onnx(at_precision(source.model, precision), path, metadata, opset)
                except Exception as exc:  # report and go on: the table is the point
                    failed += 1
                    print(f"{opset:>5}  {precision:<5}  export failed: {type(exc).__name__}: {str(exc)[:200]}")
                    continue
                seconds = time.perf_counter() - start
                nodes = len(onnx.load(str(path)).graph.node)
                report = verify_artifact(path, frames=args.frames, sizes=[(257, 143)], ratios=[1.0, 0.375])
                worst = report.worst()
                failed += not report.passed
                result = "PASS" if report.passed else f"FAIL: {report.failures[0].message()}"
                print(
                    f"{opset:>5}  {precision:<5}{seconds:>9.1f}{nodes:>7}"
                    f"{worst['pha']['max_abs']:>12.2e}{worst['r4o']['max_abs']:>12.2e}  {result}"
                )
                path.unlink()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
