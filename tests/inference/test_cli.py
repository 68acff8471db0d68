"""The documented command line, run verbatim as a subprocess from the repository root."""

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, read_video


def test_documented_command_line(weights_path: Path, clip: Path, tmp_path: Path) -> None:
    command = [
        sys.executable, "inference.py",
        "--variant", "mobilenetv3",
        "--checkpoint", str(weights_path),
        "--device", "cpu",
        "--input-source", str(clip),
        "--downsample-ratio", "0.25",
        "--output-type", "video",
        "--output-composition", str(tmp_path / "composition.mp4"),
        "--output-alpha", str(tmp_path / "alpha.mp4"),
        "--output-foreground", str(tmp_path / "foreground.mp4"),
        "--output-video-mbps", "4",
        "--seq-chunk", "12",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "converted 10 frames (160x96 @ 25 fps, downsample_ratio 0.25)" in done.stderr
    for name in ("composition", "alpha", "foreground"):
        frames, rate = read_video(tmp_path / f"{name}.mp4")
        assert frames.shape == (10, 96, 160, 3) and rate == 25
