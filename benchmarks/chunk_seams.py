"""Alpha error at the seams of ``--chunk-frames`` against the sequential run, as a function of ``--warmup-frames``.

A chunk that starts at frame ``s`` runs from ``s - W`` with a fresh recurrent state and drops the first ``W``
outputs. This runs the real weights over the verifier's moving-camera sequence (rvm_export/verify/sequence.py,
uint8 frames as a decoder hands them out) once sequentially, then, for every seam and every W, the chunk that
starts there, through the backend convert_video uses, and compares each of the chunk's frames with the same
frame of the sequential run using the verifier's statistics (rvm_export/verify/compare.py): max |e|, its
99.9th percentile and MAD x1e3, on the float alpha (before the outputs' rounding to 1/255). The table gives the
worst frame of all chunks for each W, and the frame (counted from the seam) where it was.

    python benchmarks/chunk_seams.py --checkpoint ../shared/weights/rvm_mobilenetv3_fgf_tfjs.pth
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import load_checkpoint  # noqa: E402
from rvm_export.inference.backends import make_backend  # noqa: E402
from rvm_export.verify.compare import alpha_values, difference_stats  # noqa: E402
from rvm_export.verify.sequence import Case, build_sequence  # noqa: E402


def alphas(model: torch.nn.Module, frames: np.ndarray, ratio: float) -> np.ndarray:
    """Float alpha [T,H,W] of uint8 frames [T,H,W,3], one frame per call, the state carried from the first."""
    backend = make_backend(model)
    out = []
    for frame in frames:
        _, pha = backend(torch.from_numpy(frame[None]), ratio)
        out.append(pha[0, 0].float().numpy())
    return np.stack(out)


def worst(ref: np.ndarray, test: np.ndarray) -> dict:
    """The largest of each statistic over the frames, and where the largest max |e| was."""
    rows = []
    for t in range(len(ref)):
        stats = difference_stats(ref[t], test[t])
        stats["mad_1e3"] = alpha_values(ref[t], test[t], None, None)[0]
        rows.append(stats)
    keys = ("max_abs", "q999", "mad_1e3")
    result = {k: max(r[k] for r in rows) for k in keys}
    result["at"] = int(np.argmax([r["max_abs"] for r in rows]))
    result["last"] = rows[-1]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--size", default="640x360", help="WxH of the sequence [640x360]")
    parser.add_argument("--ratio", type=float, default=0.375, help="downsample ratio [0.375, as 720p's default]")
    parser.add_argument("--chunk-frames", type=int, default=40, help="frames per chunk [40]")
    parser.add_argument("--chunks", type=int, default=3, help="chunks (seams = chunks - 1) [3]")
    parser.add_argument("--warmups", default="0,1,2,4,8,16,24,32", help="W values [0,1,2,4,8,16,24,32]")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    warmups = [int(v) for v in args.warmups.split(",")]
    length = args.chunk_frames * args.chunks
    sequence = build_sequence(Case(width, height, 1, 1.0, length))[:, 0]
    frames = (sequence.transpose(0, 2, 3, 1) * 255 + 0.5).astype(np.uint8)
    model = load_checkpoint(args.checkpoint)
    start = time.perf_counter()
    sequential = alphas(model, frames, args.ratio)
    seconds = time.perf_counter() - start
    seams = [args.chunk_frames * k for k in range(1, args.chunks)]
    print(
        f"# {width}x{height}, ratio {args.ratio:g}, {length} frames of the moving-camera sequence, chunks of "
        f"{args.chunk_frames} (seams at {', '.join(map(str, seams))}), torch {torch.__version__}, "
        f"{args.threads} threads; sequential {length / seconds:.1f} fps"
    )
    print("| W | max abs | q99.9 | MAD x1e3 | worst frame after the seam | max abs, last frame of the chunk |")
    print("|---|---|---|---|---|---|")
    for w in warmups:
        results = []
        for s in seams:
            end = s + args.chunk_frames
            chunk = alphas(model, frames[max(0, s - w) : end], args.ratio)[min(w, s) :]
            results.append(worst(sequential[s:end], chunk))
        top = {k: max(r[k] for r in results) for k in ("max_abs", "q999", "mad_1e3")}
        at = max(results, key=lambda r: r["max_abs"])["at"]
        last = max(r["last"]["max_abs"] for r in results)
        print(f"| {w} | {top['max_abs']:.4f} | {top['q999']:.4f} | {top['mad_1e3']:.3f} | {at} | {last:.4f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
