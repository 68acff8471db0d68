"""What the confined child process costs per verification, per runtime: the artifact opened and stepped in this
process (the runner class alone, as before the child existed) against the same artifact through ``open_runner``
(inspection, then the confined child: its start, its imports, the arrays through shared memory).

    python benchmarks/confinement_cost.py ARTIFACT [ARTIFACT ...] [--size 512x288] [--ratio 0.5] [--frames 4]

Prints one row per artifact: open time in-process / confined, median frame time in-process / confined, and the
added time of a default verification (open + its frames). Rounds are interleaved (in-process, confined, ...) so a
busy machine slows both alike; the machine's CPU goes beside the numbers (``lscpu``).
"""

import argparse
import statistics
import time
from pathlib import Path
from typing import Callable, List, Tuple

import numpy as np

from rvm_export.runtimes import Runner, artifact_kind, open_runner, runner_class
from rvm_export.runtimes.inspection import inspect_artifact
from rvm_export.runtimes.torch_runner import reference_model
from rvm_export.verify.harness import default_cases


def timed(make: Callable[[], object]) -> Tuple[object, float]:
    start = time.perf_counter()
    value = make()
    return value, time.perf_counter() - start


def frames_ms(runner: object, width: int, height: int, ratio: float, frames: int) -> List[float]:
    fixed = runner.fixed_case()  # type: ignore[attr-defined]
    if fixed is not None:
        width, height, ratio = fixed
    ratio = runner.fixed_ratio() or ratio  # type: ignore[attr-defined]
    state = runner.initial_state(1)  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    times = []
    for _ in range(frames):
        src = rng.random((1, 3, height, width), np.float32)
        start = time.perf_counter()
        _, state = runner.infer(src, state, ratio)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - start) * 1e3)
    return times[1:] or times  # the first frame plans shapes in most runtimes


def measure(path: Path, width: int, height: int, ratio: float, frames: int, rounds: int) -> dict:
    kind = artifact_kind(path)
    cls = runner_class(kind)
    opens = {"in-process": [], "confined": []}
    steps = {"in-process": [], "confined": []}
    for _ in range(rounds):
        for mode in ("in-process", "confined"):
            if mode == "in-process":
                runner, seconds = timed(lambda: (inspect_artifact(path, kind), cls.on_device(path, None))[1])
            else:
                runner, seconds = timed(lambda: open_runner(path))
            try:
                if getattr(runner, "wants_reference", type(runner).bind_reference is not Runner.bind_reference):
                    runner.bind_reference(reference_model(runner.metadata, artifact=path))  # CoreML off macOS
                opens[mode].append(seconds)
                steps[mode] += frames_ms(runner, width, height, ratio, frames)
            finally:
                runner.close()  # type: ignore[attr-defined]
    row = {"artifact": path.name, "kind": kind}
    for mode in opens:
        row[f"open {mode} s"] = statistics.median(opens[mode])
        row[f"frame {mode} ms"] = statistics.median(steps[mode])
    verification_frames = sum(c.frames for c in default_cases())
    row["added per verification s"] = (row["open confined s"] - row["open in-process s"]) + verification_frames * (
        row["frame confined ms"] - row["frame in-process ms"]
    ) / 1e3
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", nargs="+", type=Path)
    parser.add_argument("--size", default="512x288")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    for index, path in enumerate(args.artifacts):  # each row as soon as it is measured
        row = measure(path, width, height, args.ratio, args.frames, args.rounds)
        if index == 0:
            print("| " + " | ".join(row) + " |")
            print("|" + "---|" * len(row))
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
