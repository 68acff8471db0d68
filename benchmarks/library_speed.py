"""Throughput of ``rvm-convert --output-dir`` over N videos: one after another in one process against ``--ray auto``.

Encodes N clips of the verifier's moving-camera sequence (each from its own start frame, so they differ), then
times the command line as a user runs it (a fresh process each, model loading and, for Ray, the local cluster's
start-up included) and prints one row per mode. ``--ray-cluster`` also times ``--ray auto`` joining a cluster
started beforehand with ``ray start --head`` (its start-up not counted), and stops that cluster afterwards.

    python benchmarks/library_speed.py --checkpoint ../shared/weights/rvm_mobilenetv3_fgf_tfjs.pth
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rvm_export.verify.sequence import Case, build_sequence  # noqa: E402

BIN = Path(sys.executable).parent


def encode(path: Path, width: int, height: int, frames: int, offset: int) -> None:
    import av

    sequence = build_sequence(Case(width, height, 1, 1.0, frames + offset))[offset:, 0]
    arrays = (sequence.transpose(0, 2, 3, 1) * 255 + 0.5).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "16"}
        for array in arrays:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())


def run(command: list, env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    print(f"#   {done.stderr.strip().splitlines()[-1]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--frames", type=int, default=90, help="frames per video [90]")
    parser.add_argument("--ray-cluster", action="store_true", help="also join a cluster started beforehand")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    folder = Path(tempfile.mkdtemp(prefix="rvm-library-"))
    try:
        inputs = []
        for i in range(args.videos):
            inputs += ["--input-source", str(folder / f"clip{i}.mp4")]
            encode(folder / f"clip{i}.mp4", width, height, args.frames, 7 * i)
        base = [str(BIN / "rvm-convert"), "--checkpoint", args.checkpoint, "--device", "cpu", *inputs]
        base += ["--output-alpha", "pha.mp4", "--output-composition", "com.mp4", "--disable-progress", "--overwrite"]
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)
        total = args.videos * args.frames
        print(
            f"# {args.videos} videos of {width}x{height}, {args.frames} frames each ({total} frames); {os.cpu_count()} CPUs"
        )
        modes = [
            ("one process, sequential", []),
            ("--ray auto (local cluster started by the command)", ["--ray", "auto"]),
        ]
        rows = []
        for label, extra in modes:
            seconds = run(base + ["--output-dir", str(folder / "out")] + extra, env)
            rows.append((label, seconds))
        if args.ray_cluster:
            subprocess.run(
                [str(BIN / "ray"), "start", "--head", "--include-dashboard=false"], capture_output=True, check=True
            )
            try:
                seconds = run(base + ["--output-dir", str(folder / "out"), "--ray", "auto"], env)
                rows.append(("--ray auto (joining a running `ray start --head`)", seconds))
            finally:
                subprocess.run([str(BIN / "ray"), "stop"], capture_output=True)
        print("| mode | wall s | fps (all videos) | vs sequential |")
        print("|---|---|---|---|")
        for label, seconds in rows:
            print(f"| {label} | {seconds:.1f} | {total / seconds:.1f} | {rows[0][1] / seconds:.2f}x |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
