"""The measurement behind verify/tolerances.py: for each artifact, its error against PyTorch fp32
beside the reference's own noise at the artifact's precision, as ratios, at several sequence lengths.

    python benchmarks/experiments/noise_calibration.py ARTIFACT... [--frames 4 --frames 30] [--size 320x192 --ratio 0.5]

Prints, per artifact and length, the worst ratio (error / noise floor) of each statistic over every
output, frame and case, the worst absolute errors, and whether the gate passed. The tolerance's ratio
must sit above the worst ratio of every good artifact, with head-room; its floors and ceilings above
and below the absolute figures.
"""

from typing import Tuple

import click

from rvm_export.verify.api import verify_artifact
from rvm_export.verify.cli import parse_size
from rvm_export.verify.tolerances import METRICS


@click.command()
@click.argument("artifacts", nargs=-1, required=True)
@click.option("--frames", "frame_counts", multiple=True, type=int, default=(4, 30), show_default=True)
@click.option("--size", "sizes", multiple=True, callback=parse_size)
@click.option("--ratio", "ratios", multiple=True, type=float)
@click.option("--checkpoint", default=None)
def main(artifacts: Tuple[str, ...], frame_counts: Tuple[int, ...], sizes: list, ratios: tuple, checkpoint) -> None:
    header = f"{'artifact':<46}{'frames':>7}" + "".join(f"{'ratio ' + m:>16}" for m in METRICS)
    header += f"{'pha max':>10}{'noise':>10}{'state max':>11}{'MAD':>8}{'ratio MAD':>10}  verdict"
    print(header)
    for artifact in artifacts:
        for frames in frame_counts:
            report = verify_artifact(artifact, checkpoint, frames, sizes, ratios)
            stats = [s for r in report.results for s in r.stats]
            alpha = [a for r in report.results for a in r.alpha]
            ratios_ = {m: max(s.ratio[m] for s in stats) for m in METRICS}
            pha = [s for s in stats if s.output == "pha"]
            states = [s for s in stats if s.output.startswith("r")]
            mad_ratio = max(a.mad_1e3 / max(a.noise_mad_1e3, 1e-12) for a in alpha)
            row = f"{artifact[-46:]:<46}{frames:>7}" + "".join(f"{ratios_[m]:>16.2f}" for m in METRICS)
            row += f"{max(s.max_abs for s in pha):>10.2e}{max(s.noise_floor['max_abs'] for s in pha):>10.2e}"
            row += f"{max(s.max_abs for s in states):>11.2e}{max(a.mad_1e3 for a in alpha):>8.3f}{mad_ratio:>10.2f}"
            row += "  PASS" if report.passed else f"  FAIL {report.failures[0].message()}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
