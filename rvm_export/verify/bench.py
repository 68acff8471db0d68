"""``rvm-bench ARTIFACT...``: speed and accuracy of artifacts side by side, one row each.

Lives in ``verify/`` because it is the verifier's machinery used for timing: the same runners
(``open_artifact``: any format ``rvm-verify`` runs, with or without rvm-export's metadata:
an official ONNX file is read with ``--checkpoint``), the same real-photograph sequences, the same
PyTorch fp32 reference and error statistics. Speed is measured, never asserted (README, "Speed").

Method: per size, every artifact gets one warm-up pass, then ``--rounds`` timed rounds of
``--frames`` frames at batch 1, each round starting from the first-frame state and carrying the
states frame to frame (the documented inference loop). Rounds are interleaved across artifacts,
with the order rotated each round, so a busy machine slows them alike; the median round is
reported. Accuracy is measured on the first size: alpha MAD x1e3 (worst frame) and the worst pixel
of pha and fgr against the PyTorch fp32 model, each backend carrying its own state.
"""

import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import click
import numpy as np

from model import CheckpointError
from rvm_export.contract import tool_versions
from rvm_export.targets import artifact_files

from ..runtimes import Runner, RunnerError, artifact_kind
from ..runtimes.rollout import rollout
from ..runtimes.torch_runner import TorchReference
from .api import open_artifact
from .cli import parse_wxh
from .sequence import Case, build_sequence

DEFAULT_CASES = ((1920, 1080, 0.25), (1280, 720, 0.375))


@dataclass
class Row:
    artifact: str
    format: str
    precision: str
    size_mb: float
    ms_per_frame: Dict[str, Optional[float]] = field(default_factory=dict)  # case label -> median ms
    alpha_mad_1e3: Optional[float] = None
    pha_max_err: Optional[float] = None
    fgr_max_err: Optional[float] = None


def case_label(width: int, height: int, ratio: float) -> str:
    return f"{width}x{height} r{ratio:g}"


def artifact_mb(path: Path) -> float:
    """Every file of the artifact (a folder's, OpenVINO's .xml and .bin), as the manifest counts them."""
    return sum(p.stat().st_size for p in artifact_files(path)) / 1e6


def pin_threads(runner: Runner, threads: int) -> None:
    """Give every backend the same number of intra-op threads (ONNX Runtime, PyTorch)."""
    import torch

    torch.set_num_threads(threads)
    if runner.kind == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = runner.session  # type: ignore[attr-defined]
        runner.session = ort.InferenceSession(str(runner.path), options, providers=session.get_providers())  # type: ignore[attr-defined]


def runs_case(runner: Runner, case: Tuple[int, int, float]) -> bool:
    """False when a fixed-shape artifact (ONNX --static, CoreML) cannot run this size/ratio."""
    fixed = runner.fixed_case()
    return fixed is None or (fixed[0], fixed[1]) == case[:2] and bool(np.isclose(fixed[2], case[2]))


def run_sequence(runner: Runner, frames: np.ndarray, ratio: float) -> None:
    for _ in rollout([runner], frames, ratio):
        pass


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_case(
    runners: Sequence[Runner], case: Tuple[int, int, float], frames: int, rounds: int, clock: str = "wall"
) -> List[Optional[float]]:
    """Median ms per frame of each runner over interleaved rounds (None: cannot run this case)."""
    width, height, ratio = case
    sequence = build_sequence(Case(width, height, 1, ratio, frames))
    active = [i for i, r in enumerate(runners) if runs_case(r, case)]
    for i in active:
        run_sequence(runners[i], sequence[:2], ratio)  # warm-up: allocations, first-run graph work
    times: Dict[int, List[float]] = {i: [] for i in active}
    for k in range(rounds):
        order = active[k % len(active) :] + active[: k % len(active)] if active else []
        for i in order:
            start = CLOCKS[clock]()
            run_sequence(runners[i], sequence, ratio)
            times[i].append((CLOCKS[clock]() - start) * 1000 / frames)
    return [statistics.median(times[i]) if i in times else None for i in range(len(runners))]


def accuracy(runner: Runner, reference: TorchReference, case: Tuple[int, int, float], frames: int) -> Dict[str, float]:
    """Worst alpha MAD x1e3 and worst pha/fgr pixel over a closed-loop sequence vs PyTorch fp32."""
    width, height, ratio = case
    worst = {"alpha_mad_1e3": 0.0, "pha_max_err": 0.0, "fgr_max_err": 0.0}
    for _, _, (ref, out) in rollout([reference, runner], build_sequence(Case(width, height, 1, ratio, frames)), ratio):
        errors = {name: np.abs(out[name].astype(np.float64) - ref[name]) for name in ("pha", "fgr")}
        worst["alpha_mad_1e3"] = max(worst["alpha_mad_1e3"], float(errors["pha"].mean()) * 1e3)  # the verifier's MAD
        for name, err in errors.items():
            worst[f"{name}_max_err"] = max(worst[f"{name}_max_err"], float(err.max()))
    return worst


def benchmark(
    paths: Sequence[str | Path],
    cases: Sequence[Tuple[int, int, float]] = DEFAULT_CASES,
    checkpoint: Optional[str | Path] = None,
    frames: int = 4,
    rounds: int = 5,
    threads: int = 2,
    clock: str = "wall",
) -> List[Row]:
    """One row per artifact: speed at every case, accuracy at the first case it runs."""
    ratios = sorted({c[2] for c in cases})
    opened = [open_artifact(p, checkpoint, "cpu", ratios) for p in paths]
    runners = [runner for runner, _ in opened]
    for runner in runners:
        pin_threads(runner, threads)
    rows = [
        Row(str(p), artifact_kind(p), r.metadata.precision, round(artifact_mb(Path(p)), 1))  # type: ignore[union-attr]
        for p, r in zip(paths, runners, strict=True)
    ]
    for case in cases:
        for row, ms in zip(rows, time_case(runners, case, frames, rounds, clock), strict=True):
            row.ms_per_frame[case_label(*case)] = ms
    for row, (runner, reference) in zip(rows, opened, strict=True):
        case = next((c for c in cases if runs_case(runner, c)), None)
        if case is not None:
            for name, value in accuracy(runner, TorchReference(reference), case, frames).items():
                setattr(row, name, value)
    return rows


def table(rows: Sequence[Row], cases: Sequence[Tuple[int, int, float]]) -> str:
    """Markdown table; speed-up relative to the first row per size."""
    labels = [case_label(*c) for c in cases]
    head = ["artifact", "format", "precision", "MB"]
    for label in labels:
        head += [f"{label} fps", "ms/frame", "x first"]
    head += ["alpha MAD x1e3", "pha max err", "fgr max err"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    base = rows[0].ms_per_frame if rows else {}
    for row in rows:
        cells = [Path(row.artifact).name, row.format, row.precision, f"{row.size_mb:.1f}"]
        for label in labels:
            ms, ref = row.ms_per_frame.get(label), base.get(label)
            cells += (
                ["-", "-", "-"] if ms is None else [f"{1000 / ms:.2f}", f"{ms:.1f}", f"{ref / ms:.2f}" if ref else "-"]
            )
        cells += [f"{v:.3g}" if v is not None else "-" for v in (row.alpha_mad_1e3, row.pha_max_err, row.fgr_max_err)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_cases(sizes: Sequence[str], ratios: Sequence[float]) -> List[Tuple[int, int, float]]:
    """--size/--ratio pairs: equal counts pair up; one ratio applies to every size; none: the defaults."""
    if not sizes:
        if ratios:
            raise click.BadParameter(
                "--ratio needs --size WxH (the defaults pair their own ratios)", param_hint="--ratio"
            )
        return list(DEFAULT_CASES)
    parsed = [parse_wxh(value, minimum=16, example="1920x1080", param_hint="--size") for value in sizes]
    if len(ratios) > 1 and len(ratios) != len(parsed):
        raise click.BadParameter(
            f"{len(ratios)} ratios for {len(parsed)} sizes; give one ratio, or one per size", param_hint="--ratio"
        )
    ratios = list(ratios) or [0.25]
    ratios = ratios * len(parsed) if len(ratios) == 1 else ratios
    return [(w, h, r) for (w, h), r in zip(parsed, ratios, strict=True)]


@click.command()
@click.argument("artifacts", nargs=-1, required=True, type=click.Path())
@click.option("--size", "sizes", multiple=True, help="WIDTHxHEIGHT; repeatable (default 1920x1080 and 1280x720).")
@click.option(
    "--ratio",
    "ratios",
    multiple=True,
    type=click.FloatRange(0, 1, min_open=True),
    help="Downsample ratio: one for all sizes or one per --size (default 0.25 and 0.375 with the default sizes).",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    default=None,
    help="The checkpoint the artifacts come from (default: the path in their metadata).",
)
@click.option("--frames", type=click.IntRange(min=2), default=4, show_default=True, help="Frames per round.")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True, help="Timed rounds (median).")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="Intra-op threads.")
@click.option(
    "--clock",
    type=click.Choice(sorted(CLOCKS)),
    default="wall",
    show_default=True,
    help="wall: elapsed time. cpu: this process's CPU time, which other jobs on a shared machine barely move "
    "(use with --threads 1: idle threads that spin would count).",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write the rows here.")
def main(
    artifacts: Tuple[str, ...],
    sizes: Tuple[str, ...],
    ratios: Tuple[float, ...],
    checkpoint: Optional[str],
    frames: int,
    rounds: int,
    threads: int,
    clock: str,
    json_path: Optional[str],
) -> None:
    """Frames per second and accuracy vs PyTorch fp32 of each ARTIFACT, measured side by side on the CPU."""
    cases = parse_cases(sizes, ratios)
    try:
        rows = benchmark(artifacts, cases, checkpoint, frames, rounds, threads, clock)
    except (RunnerError, CheckpointError) as exc:
        click.echo(f"rvm-bench: error: {exc}", err=True)
        sys.exit(2)
    versions = ", ".join(f"{k} {v}" for k, v in tool_versions("onnxruntime").items())
    click.echo(
        f"CPU, {threads} intra-op threads, {clock} clock, batch 1, {frames} frames x {rounds} interleaved rounds "
        "(median); "
        f"{versions}; {os.cpu_count()} cores visible"
    )
    click.echo(table(rows, cases))
    if json_path:
        document = {
            "cases": [case_label(*c) for c in cases],
            "threads": threads,
            "clock": clock,
            "frames": frames,
            "rounds": rounds,
            "rows": [asdict(r) for r in rows],
        }
        Path(json_path).write_text(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
