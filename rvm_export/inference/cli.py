"""``rvm-convert`` (and ``python inference.py``): the command line of ``convert_video`` and ``convert_videos``.

    python inference.py --variant mobilenetv3 --checkpoint rvm_mobilenetv3.pth --device cpu \\
        --input-source input.mp4 --output-type video --output-composition com.mp4 \\
        --output-alpha pha.mp4 --output-foreground fgr.mp4 --output-video-mbps 4 --seq-chunk 12

One input goes through the engine (:mod:`rvm_export.inference.engine`); several, or one with ``--output-dir``,
through the library (:mod:`rvm_export.inference.library`). Errors are one line and exit status 2 here.
"""

import sys
from typing import Callable, NoReturn, Optional, Tuple, TypeVar

import click
import torch

from rvm_export import extras
from rvm_export.contract.errors import USER_ERRORS, cli_message
from rvm_export.inference.engine import (
    DEFAULT_PRESET,
    OUTPUT_TYPES,
    ConversionResult,
    Settings,
    convert,
    output_paths,
)
from rvm_export.inference.io import X264_PRESETS, InferenceError
from rvm_export.inference.jobs import ModelSource
from rvm_export.inference.library import DEFAULT_WARMUP_FRAMES, convert_library, report

T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    click.echo(f"rvm-convert: error: {message}", err=True)
    sys.exit(2)


def _as_command(action: Callable[[], T]) -> T:
    """Run ``action`` with the video extra there; a user's error or a missing optional package is one line, exit 2."""
    try:
        extras.require("rvm-convert")
        return action()
    except USER_ERRORS as exc:
        _fail(cli_message(exc))
    except ImportError as exc:  # an optional package: PyAV, Ray, or an artifact's runtime
        text = extras.explain("rvm-convert", "", exc)
        if text is None:
            raise
        _fail(text)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--variant",
    type=click.Choice(["mobilenetv3", "resnet50"]),
    default=None,
    help="Inferred from the checkpoint when omitted.",
)
@click.option(
    "--refiner",
    type=click.Choice(["deep_guided_filter", "fast_guided_filter"]),
    default=None,
    help="Inferred from the checkpoint when omitted.",
)
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None, help="RVM checkpoint (.pth).")
@click.option(
    "--artifact",
    type=click.Path(),
    default=None,
    help="An exported model (TorchScript, ONNX, SavedModel, ...) instead of --checkpoint.",
)
@click.option("--device", default="cuda" if torch.cuda.is_available() else "cpu", show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True)
@click.option(
    "--input-source",
    required=True,
    multiple=True,
    help="A video file or a folder of images; several (each given with --input-source) with --output-dir.",
)
@click.option("--input-resize", type=int, nargs=2, default=None, metavar="W H", help="Resize the input frames first.")
@click.option("--downsample-ratio", type=float, default=None, help="In (0, 1]; automatic (~512 px) when omitted.")
@click.option("--output-type", type=click.Choice(OUTPUT_TYPES), default="video", show_default=True)
@click.option("--output-composition", default=None, help="Video file, or folder for png_sequence (RGBA).")
@click.option("--output-alpha", default=None)
@click.option("--output-foreground", default=None)
@click.option("--output-video-mbps", type=float, default=None, help="Bit rate of video outputs [default: 1].")
@click.option(
    "--output-video-preset",
    type=click.Choice(X264_PRESETS),
    default=DEFAULT_PRESET,
    show_default=True,
    help="x264 preset of video outputs: slower presets compress better at the same bit rate (see README).",
)
@click.option(
    "--output-video-crf",
    type=click.FloatRange(0, 51),
    default=None,
    help="Constant quality (0 lossless, 23 x264's default) instead of --output-video-mbps.",
)
@click.option("--seq-chunk", type=int, default=1, show_default=True, help="Frames per forward pass.")
@click.option(
    "--num-workers", type=int, default=0, show_default=True, help="Image reader threads (image folders only)."
)
@click.option("--disable-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Many inputs: each one's outputs go to OUTPUT_DIR/<input stem>/, the --output-* names relative to it.",
)
@click.option("--overwrite", is_flag=True, help="With --output-dir: redo inputs that are already complete.")
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="auto|ADDRESS",
    help="With --output-dir: run the inputs on Ray (auto: RAY_ADDRESS, a running local cluster or a new one).",
)
@click.option(
    "--chunk-frames",
    type=click.IntRange(1),
    default=None,
    help="With --output-dir: split inputs longer than this into chunks run in parallel (not bit-identical).",
)
@click.option(
    "--warmup-frames",
    type=click.IntRange(0),
    default=None,
    help="Frames each chunk runs before its own, outputs dropped [default: 64].",
)
@click.option(
    "--ray-worker-cpus",
    type=click.FloatRange(min=0, min_open=True),
    default=1,
    show_default=True,
    help="CPUs (and torch threads) per Ray worker; one worker per that many CPUs of the cluster.",
)
def main(
    variant: Optional[str],
    refiner: Optional[str],
    checkpoint: Optional[str],
    artifact: Optional[str],
    device: str,
    dtype: str,
    input_source: Tuple[str, ...],
    input_resize: Optional[Tuple[int, int]],
    downsample_ratio: Optional[float],
    output_type: str,
    output_composition: Optional[str],
    output_alpha: Optional[str],
    output_foreground: Optional[str],
    output_video_mbps: Optional[float],
    output_video_preset: str,
    output_video_crf: Optional[float],
    seq_chunk: int,
    num_workers: int,
    disable_progress: bool,
    output_dir: Optional[str],
    overwrite: bool,
    ray_address: Optional[str],
    chunk_frames: Optional[int],
    warmup_frames: Optional[int],
    ray_worker_cpus: float,
) -> None:
    """Matte a video or image folder with Robust Video Matting (many of them with --output-dir)."""
    settings = Settings(
        output_paths(output_composition, output_alpha, output_foreground),
        output_type,
        tuple(input_resize) if input_resize else None,  # type: ignore[arg-type]
        downsample_ratio,
        output_video_mbps,
        output_video_preset,
        output_video_crf,
        seq_chunk,
        num_workers,
    )
    if output_dir is not None or len(input_source) > 1:
        if output_dir is None:
            _fail("several --input-source need --output-dir (the folder every input's outputs go to)")
        library_dir = output_dir

        def many() -> int:
            source = ModelSource.from_options(checkpoint, artifact, variant, refiner, device, dtype)
            source.require_here(device)
            result = convert_library(
                source, input_source, library_dir, settings, progress=not disable_progress, overwrite=overwrite,
                ray=ray_address, chunk_frames=chunk_frames,
                warmup_frames=DEFAULT_WARMUP_FRAMES if warmup_frames is None else warmup_frames,
                worker_cpus=ray_worker_cpus,
            )  # fmt: skip
            return report(result, lambda line: click.echo(line, err=True))

        sys.exit(_as_command(many))
    library = {
        "--ray": ray_address,
        "--chunk-frames": chunk_frames,
        "--warmup-frames": warmup_frames,
        "--overwrite": overwrite or None,
    }

    def one() -> ConversionResult:
        for flag, value in library.items():
            if value is not None:
                raise InferenceError(f"{flag} needs --output-dir (the folder every input's outputs go to)")
        model = ModelSource.from_options(checkpoint, artifact, variant, refiner, device, dtype).model()
        return convert(model, input_source[0], settings, progress=not disable_progress)

    result = _as_command(one)
    click.echo(
        f"converted {result.frames} frames ({result.width}x{result.height} @ {float(result.frame_rate):g} fps, "
        f"downsample_ratio {result.downsample_ratio:g}) in {result.seconds:.1f} s ({result.fps:.1f} fps)",
        err=True,
    )


if __name__ == "__main__":
    main()
