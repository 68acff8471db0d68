"""End-to-end speed of ``convert_video`` against a plain sequential loop over the same model and clip.

    python benchmarks/convert_speed.py --checkpoint ../shared/weights/rvm_mobilenetv3_fgf_tfjs.pth \\
        [--device cpu|cuda] [--width 640 --height 360 --frames 60] [--seq-chunk 4] [--threads N]

Both write the same three H.264 outputs (composition, alpha, foreground) with the same writer;
the loop does decode -> float -> model -> uint8 -> encode one step after another in one thread,
as RVM's original converter did. Prints a table of frames per second (best of --repeat runs).
"""

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference import GREEN, auto_downsample_ratio, convert_video  # noqa: E402
from inference_utils import VideoReader, VideoWriter  # noqa: E402
from model import half_precision, load_checkpoint  # noqa: E402
from verify.sequence import Case, build_sequence  # noqa: E402


def make_clip(path: Path, width: int, height: int, frames: int) -> Path:
    """A pan over the astronaut photograph, encoded once (not timed)."""
    sequence = build_sequence(Case(width, height, 1, 1.0, frames))[:, 0]
    with VideoWriter(path, frame_rate=Fraction(30), bit_rate=8_000_000) as writer:
        writer.write(torch.from_numpy(sequence))
    return path


def plain_loop(
    model: torch.nn.Module, clip: Path, out: Path, ratio: float, seq_chunk: int, device: str, dtype: torch.dtype
) -> int:
    """The sequential baseline: one thread, one step after another."""
    reader = VideoReader(clip)
    green = torch.tensor(GREEN, device=device).div(255).view(1, 3, 1, 1)
    writers = [VideoWriter(out / f"{n}.mp4", reader.frame_rate, 4_000_000) for n in ("com", "pha", "fgr")]
    rec, frames, chunk = [None] * 4, 0, []

    def run(batch: list) -> None:
        nonlocal rec
        src = torch.stack(batch).to(device, dtype)
        fgr, pha, *rec = model(src[None], *rec, ratio)
        fgr, pha = fgr[0], pha[0]
        for writer, frames_out in zip(writers, (fgr * pha + green * (1 - pha), pha, fgr), strict=True):
            writer.write(frames_out)

    with torch.inference_mode():
        for src in reader:
            chunk.append(src)
            frames += 1
            if len(chunk) == seq_chunk:
                run(chunk)
                chunk = []
        if chunk:
            run(chunk)
    for writer in writers:
        writer.close()
    return frames


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--ratio", type=float, default=None, help="default: automatic (~512 px)")
    parser.add_argument("--seq-chunk", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    dtype = torch.float16 if args.dtype == "float16" else torch.float32
    model = load_checkpoint(args.checkpoint).to(args.device)
    model = half_precision(model) if dtype == torch.float16 else model
    ratio = args.ratio or auto_downsample_ratio(args.height, args.width)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(tmp / "clip.mp4", args.width, args.height, args.frames)
        with torch.inference_mode():  # warm-up (allocator, cuDNN autotuning)
            model(
                torch.rand(1, args.seq_chunk, 3, args.height, args.width, device=args.device, dtype=dtype),
                downsample_ratio=ratio,
            )

        def loop() -> None:
            plain_loop(model, clip, tmp, ratio, args.seq_chunk, args.device, dtype)

        def pipelined() -> None:
            convert_video(
                model, str(clip), downsample_ratio=ratio, output_composition=str(tmp / "com.mp4"),
                output_alpha=str(tmp / "pha.mp4"), output_foreground=str(tmp / "fgr.mp4"),
                output_video_mbps=4, seq_chunk=args.seq_chunk, progress=False,
            )  # fmt: skip

        results = [
            ("plain sequential loop", timed(loop, args.repeat)),
            ("convert_video", timed(pipelined, args.repeat)),
        ]

    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu x{torch.get_num_threads()}"
    print(
        f"\n{args.width}x{args.height}, {args.frames} frames, ratio {ratio:g}, seq_chunk {args.seq_chunk}, "
        f"{args.dtype} on {device_name}; 3 H.264 outputs; best of {args.repeat}"
    )
    print(f"{'method':<24}{'seconds':>10}{'fps':>10}{'speed-up':>10}")
    base = results[0][1]
    for name, seconds in results:
        print(f"{name:<24}{seconds:>10.2f}{args.frames / seconds:>10.1f}{base / seconds:>9.2f}x")


if __name__ == "__main__":
    main()
