"""End-to-end speed of ``convert_video`` against the model alone on the same frames (and a plain loop),
plus the quality each x264 preset costs.

    python benchmarks/convert_speed.py --checkpoint ../shared/weights/rvm_mobilenetv3_fgf_tfjs.pth \\
        [--device cpu|cuda] [--width 1280 --height 720 --frames 36 --ratio 0.375 --seq-chunk 12] \\
        [--presets veryfast,medium] [--repeat 3]

- "model alone": the same backend call ``convert_video`` makes, on the clip's frames already decoded
  into memory (no decoding, no rendering, no encoding): the speed ``convert_video`` can at best reach.
- "plain loop": decode -> model -> encode one step after another in one thread, as RVM's original
  converter did (x264's default preset, medium).
- "convert_video <preset>": the pipelined converter with that x264 preset at the default bit rate.

All methods run interleaved (one of each per round, ``--repeat`` rounds) and the table shows medians,
because the machine may be shared. On a loaded machine wall time follows the share of the cores each run
got, so the table also shows the CPU time each method spent (all threads): "cpu vs model" is the model's
CPU time over the method's, which is the wall-time ratio on an otherwise idle machine if the pipeline keeps
the cores as busy as the model alone does (a lower bound when its extra threads fill the model's idle moments). Every run writes the same three H.264 outputs (composition, alpha,
foreground) at 1 Mbit/s. Quality: PSNR (dB) of each preset's composition against a lossless (CRF 0)
encode of the same composition, over all frames.
"""

import argparse
import resource
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference import DEFAULT_PRESET, GREEN, auto_downsample_ratio, convert_video  # noqa: E402
from model import half_precision, load_checkpoint  # noqa: E402
from rvm_export.inference import engine  # noqa: E402  (the encoder settings convert_video reads)
from rvm_export.inference.backends import TorchBackend  # noqa: E402
from rvm_export.inference.io import VideoReader, VideoWriter  # noqa: E402
from rvm_export.verify.sequence import Case, build_sequence  # noqa: E402

MBPS = 1.0
DEFAULT_PLAN = (engine.ENCODER_THREADS, engine.ENCODER_NICE)


def make_clip(path: Path, width: int, height: int, frames: int) -> Path:
    """A pan over the astronaut photograph, encoded once (not timed)."""
    sequence = build_sequence(Case(width, height, 1, 1.0, frames))[:, 0]
    with VideoWriter(path, frame_rate=Fraction(30), bit_rate=8_000_000) as writer:
        writer.write(torch.from_numpy(sequence))
    return path


def model_alone(model: torch.nn.Module, chunks: List[np.ndarray], ratio: float, device: str, dtype) -> None:
    """The model on frames already in memory, through the backend convert_video uses."""
    backend = TorchBackend(model, device, dtype)
    for chunk in chunks:
        fgr, pha = backend(torch.from_numpy(chunk), ratio)
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def plain_loop(
    model: torch.nn.Module, clip: Path, out: Path, ratio: float, seq_chunk: int, device: str, dtype: torch.dtype
) -> None:
    """The sequential baseline: one thread, one step after another."""
    reader = VideoReader(clip)
    green = torch.tensor(GREEN, device=device).div(255).view(1, 3, 1, 1)
    rate = reader.frame_rate
    writers = [VideoWriter(out / f"loop_{n}.mp4", rate, int(MBPS * 1e6)) for n in ("com", "pha", "fgr")]
    rec, chunk = [None] * 4, []

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
            if len(chunk) == seq_chunk:
                run(chunk)
                chunk = []
        if chunk:
            run(chunk)
    for writer in writers:
        writer.close()


def convert(model, clip: Path, out: Path, ratio: float, seq_chunk: int, spec: str, crf=None) -> None:
    """``spec``: PRESET[/THREADS[/NICE]]: an x264 preset, FFmpeg threads per encoder and the encoder threads'
    nice increment (default: rvm_export.inference.engine.ENCODER_THREADS and ENCODER_NICE)."""
    preset, *plan = spec.split("/")
    engine.ENCODER_THREADS = int(plan[0]) if plan else DEFAULT_PLAN[0]
    engine.ENCODER_NICE = int(plan[1]) if len(plan) > 1 else DEFAULT_PLAN[1]
    tag = "crf0" if crf == 0 else spec.replace("/", "_")
    convert_video(
        model, str(clip), downsample_ratio=ratio, output_composition=str(out / f"com_{tag}.mp4"),
        output_alpha=str(out / f"pha_{tag}.mp4"), output_foreground=str(out / f"fgr_{tag}.mp4"),
        output_video_mbps=None if crf is not None else MBPS, seq_chunk=seq_chunk, progress=False,
        output_video_preset=preset, output_video_crf=crf,
    )  # fmt: skip


def cpu_seconds() -> float:
    """CPU time of this process, all threads (FFmpeg's and OpenMP's included), user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def psnr(a: Path, b: Path) -> float:
    """PSNR (dB) over all frames and channels of two videos of the same size."""
    squared, count = 0.0, 0
    for x, y in zip(VideoReader(a).iter_arrays(), VideoReader(b).iter_arrays(), strict=True):
        diff = x.astype(np.float64) - y.astype(np.float64)
        squared += float((diff * diff).sum())
        count += diff.size
    return 10 * np.log10(255**2 / (squared / count)) if squared else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--frames", type=int, default=36)
    parser.add_argument("--ratio", type=float, default=0.375, help="0: automatic (~512 px)")
    parser.add_argument("--seq-chunk", type=int, default=12)
    parser.add_argument(
        "--presets",
        default=f"{DEFAULT_PRESET},medium",
        help="x264 presets for convert_video, comma-separated; PRESET/THREADS/NICE also sets the encoder threads",
    )
    parser.add_argument("--no-loop", action="store_true", help="skip the plain sequential loop")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the table shows medians")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    dtype = torch.float16 if args.dtype == "float16" else torch.float32
    model = load_checkpoint(args.checkpoint).to(args.device)
    model = half_precision(model) if dtype == torch.float16 else model
    ratio = args.ratio or auto_downsample_ratio(args.height, args.width)
    presets = [p for p in args.presets.split(",") if p]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(tmp / "clip.mp4", args.width, args.height, args.frames)
        frames = np.stack(list(VideoReader(clip).iter_arrays()))
        chunks = [frames[i : i + args.seq_chunk] for i in range(0, len(frames), args.seq_chunk)]
        methods: Dict[str, Callable[[], None]] = {
            "model alone": lambda: model_alone(model, chunks, ratio, args.device, dtype)
        }
        if not args.no_loop:
            methods["plain loop (medium)"] = lambda: plain_loop(
                model, clip, tmp, ratio, args.seq_chunk, args.device, dtype
            )
        for preset in presets:
            methods[f"convert_video {preset}"] = lambda p=preset: convert(model, clip, tmp, ratio, args.seq_chunk, p)
        model_alone(model, chunks[:1], ratio, args.device, dtype)  # warm-up (allocator, cuDNN autotuning)
        seconds: Dict[str, List[float]] = {name: [] for name in methods}
        cpu: Dict[str, List[float]] = {name: [] for name in methods}
        for round_ in range(args.repeat):
            for name, run in methods.items():
                start, cpu_start = time.perf_counter(), cpu_seconds()
                run()
                seconds[name].append(time.perf_counter() - start)
                cpu[name].append(cpu_seconds() - cpu_start)
                print(
                    f"round {round_ + 1}: {name} {seconds[name][-1]:.2f} s, cpu {cpu[name][-1]:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
        convert(model, clip, tmp, ratio, args.seq_chunk, "medium", crf=0)  # lossless reference
        files = {p: tmp / f"com_{p.replace('/', '_')}.mp4" for p in presets}
        quality = {p: psnr(f, tmp / "com_crf0.mp4") for p, f in files.items()}
        sizes = {p: f.stat().st_size for p, f in files.items()}

    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu x{torch.get_num_threads()}"
    print(
        f"\n{args.width}x{args.height}, {args.frames} frames, ratio {ratio:g}, seq_chunk {args.seq_chunk}, "
        f"{args.dtype} on {device_name}; 3 H.264 outputs at {MBPS:g} Mbit/s; median of {args.repeat} interleaved rounds"
    )
    print(
        f"{'method':<28}{'seconds':>9}{'fps':>8}{'vs model':>10}{'cpu s':>8}{'cpu vs model':>14}"
        f"{'com PSNR dB':>13}{'com KB':>8}"
    )
    base, base_cpu = statistics.median(seconds["model alone"]), statistics.median(cpu["model alone"])
    for name, runs in seconds.items():
        median, median_cpu = statistics.median(runs), statistics.median(cpu[name])
        preset = name.removeprefix("convert_video ") if name.startswith("convert_video") else None
        extra = f"{quality[preset]:>13.2f}{sizes[preset] / 1024:>8.0f}" if preset else ""
        print(
            f"{name:<28}{median:>9.2f}{args.frames / median:>8.2f}{base / median:>10.2f}"
            f"{median_cpu:>8.1f}{base_cpu / median_cpu:>14.2f}{extra}"
        )
    print("all rounds (s): " + "; ".join(f"{n}: {', '.join(f'{s:.2f}' for s in r)}" for n, r in seconds.items()))


if __name__ == "__main__":
    main()
