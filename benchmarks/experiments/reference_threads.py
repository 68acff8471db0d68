"""The PyTorch reference's bytes and time at one and at two intra-op threads (docs/verification.md#determinism).

    python benchmarks/experiments/reference_threads.py [--processes 8] [--runs 3]

Prints, per thread count, how many distinct digests of the reference's outputs (default cases, 4 frames) the
processes gave, and the median time of one pass over the three default cases. Run it once on an idle machine and
once while two busy loops (`python -c 'while True: pass' &`, twice) load the cores.
"""

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "rvm_mobilenetv3_fgf_tfjs.pth"


def one_process(threads: int, runs: int) -> dict:
    import numpy as np
    import torch

    from model import load_checkpoint
    from rvm_export.runtimes.rollout import rollout
    from rvm_export.runtimes.torch_runner import TorchReference
    from rvm_export.verify.harness import default_cases
    from rvm_export.verify.sequence import build_sequence

    torch.set_num_threads(threads)
    reference = TorchReference(load_checkpoint(WEIGHTS))
    reference.threads = None  # measure the thread count set above, not the verifier's pinned one
    digests, seconds = set(), []
    for _ in range(runs):
        digest, start = hashlib.sha256(), time.perf_counter()
        for case in default_cases(4):
            for _, _, (out,) in rollout([reference], build_sequence(case), case.ratio, case.batch):
                for name in sorted(out):
                    digest.update(np.ascontiguousarray(out[name]).tobytes())
        seconds.append(time.perf_counter() - start)
        digests.add(digest.hexdigest())
    return {"digests": sorted(digests), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(one_process(args.worker, args.runs)))
        return
    for threads in (1, 2):
        results = []
        for _ in range(args.processes):
            command = [sys.executable, __file__, "--worker", str(threads), "--runs", str(args.runs)]
            results.append(json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout))
        digests = {d for r in results for d in r["digests"]}
        seconds = statistics.median(s for r in results for s in r["seconds"])
        print(f"{threads} thread(s): {len(digests)} distinct digest(s) over {args.processes} processes x {args.runs} "
              f"runs; median {seconds:.2f} s per pass over the default cases (4 frames)")  # fmt: skip


if __name__ == "__main__":
    main()
