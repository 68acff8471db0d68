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
of pha and fgr against the PyTorch fp32 model, each backend carrying its own state (NaN when an
output is not finite).

``--eager`` adds a first row: the checkpoint's MattingNetwork itself in PyTorch eager (fp32, CPU),
timed in the same rounds, the baseline the other rows' "x first" compare with. ``--tfjs-backend``
(repeatable) runs every TF.js artifact on each backend named, one row per backend. ``--threads``
pins the intra-op threads of PyTorch, ONNX Runtime, OpenVINO, LiteRT and TensorFlow (TF.js picks
its own).
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

from model import MattingNetwork, load_checkpoint
from rvm_export.contract import tool_versions
from rvm_export.contract.errors import USER_ERRORS, cli_message
from rvm_export.targets import TARGETS, artifact_files

from ..runtimes import Runner, RunnerError, artifact_kind
from ..runtimes.rollout import rollout
from ..runtimes.torch_runner import TorchReference
from ..targets import backends
from .api import open_artifact
from .cli import parse_wxh
from .limits import MachineLimits, case_work, measure_machine
from .sequence import Case, build_sequence

DEFAULT_CASES = ((1920, 1080, 0.25), (1280, 720, 0.375))


@dataclass
class Row:
    artifact: str
    format: str
    precision: str
    size_mb: Optional[float]
    backend: Optional[str] = None  # the runtime backend (--tfjs-backend); None: the runner's default
    ms_per_frame: Dict[str, Optional[float]] = field(default_factory=dict)  # case label -> median ms
    alpha_mad_1e3: Optional[float] = None
    pha_max_err: Optional[float] = None
    fgr_max_err: Optional[float] = None
    limit_ms: Dict[str, float] = field(default_factory=dict)  # case label -> the machine's limit (limits.py)
    variant: str = "mobilenetv3"
    refiner: str = "fast_guided_filter"


def case_label(width: int, height: int, ratio: float) -> str:
    return f"{width}x{height} r{ratio:g}"


def artifact_mb(path: Path) -> float:
    """Every file of the artifact (a folder's, OpenVINO's .xml and .bin), as the manifest counts them."""
    return sum(p.stat().st_size for p in artifact_files(path)) / 1e6


class EagerRunner(TorchReference):
    """``--eager``: the checkpoint's MattingNetwork as it is, PyTorch eager fp32 on the CPU (no artifact)."""

    kind = "pytorch-eager"
    threads = None  # timed with the --threads every row gets, not the reference's fixed one

    def fixed_case(self) -> None:
        return None


def eager_model(
    checkpoint: Optional[str | Path], opened: Sequence[Tuple[Runner, MattingNetwork]]
) -> Tuple[MattingNetwork, Path]:
    """The fp32 model of ``--checkpoint``, else the reference of the first artifact (its checkpoint)."""
    if checkpoint is not None:
        return load_checkpoint(checkpoint), Path(checkpoint)
    if not opened:
        raise RunnerError("the PyTorch eager row without an artifact needs the checkpoint to run", option="checkpoint")
    runner, reference = opened[0]
    return reference, Path(runner.metadata.checkpoint or "seeded random weights")  # type: ignore[union-attr]


def pin_threads(runner: Runner, threads: int) -> None:
    """Give every row the same number of intra-op threads: PyTorch's, and the runner's own runtime's."""
    import torch

    torch.set_num_threads(threads)
    if hasattr(runner, "set_threads"):
        runner.set_threads(threads)


def runs_case(runner: Runner, case: Tuple[int, int, float]) -> bool:
    """False when a fixed-shape artifact (ONNX --static, CoreML, ExecuTorch) cannot run this size/ratio, or an
    artifact with its ratio baked in (ncnn) is asked for another ratio."""
    fixed = runner.fixed_case()
    if fixed is None:
        baked = getattr(runner, "fixed_ratio", lambda: None)()  # the eager row is no artifact runner
        return baked is None or bool(np.isclose(baked, case[2]))
    return (fixed[0], fixed[1]) == case[:2] and bool(np.isclose(fixed[2], case[2]))


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
        values = {"alpha_mad_1e3": errors["pha"].mean() * 1e3}  # the verifier's MAD
        values |= {f"{name}_max_err": err.max() for name, err in errors.items()}
        for key, value in values.items():
            worst[key] = float(np.maximum(worst[key], value))  # NaN stays NaN (max() would drop it)
    return worst


def benchmark(
    paths: Sequence[str | Path],
    cases: Sequence[Tuple[int, int, float]] = DEFAULT_CASES,
    checkpoint: Optional[str | Path] = None,
    frames: int = 4,
    rounds: int = 5,
    threads: int = 2,
    clock: str = "wall",
    eager: bool = False,
    tfjs_backends: Sequence[str] = (),
    limits: Optional[MachineLimits] = None,
) -> List[Row]:
    """One row per artifact (per TF.js backend), after the PyTorch eager row with ``eager``: speed at every
    case, accuracy at the first case it runs, and the machine's limit for it (``limits``: measured on
    ``threads`` before anything runs when None)."""
    ratios = sorted({c[2] for c in cases})
    kinds = [artifact_kind(p) for p in paths]
    if tfjs_backends and not any(TARGETS[k].backends for k in kinds):
        offered = ", ".join(t.title for t in TARGETS.values() if t.backends)
        raise RunnerError(f"a runtime backend applies to {offered} artifacts only, and none was given", "tfjs_backend")
    limits = limits or measure_machine(threads)
    rows: List[Row] = []
    opened: List[Tuple[Runner, MattingNetwork]] = []
    for path, kind in zip(paths, kinds, strict=True):
        for backend in tfjs_backends if TARGETS[kind].backends and tfjs_backends else [None]:
            # the thread count goes to the runtime's child before it starts (TensorFlow fixes it then)
            runner, reference = open_artifact(path, checkpoint, "cpu", ratios, backend, threads=threads)
            meta = runner.metadata
            assert meta is not None
            mb = round(artifact_mb(Path(path)), 1)
            rows.append(Row(str(path), kind, meta.precision, mb, backend, variant=meta.variant, refiner=meta.refiner))
            opened.append((runner, reference))
    if eager:
        model, source = eager_model(checkpoint, opened)
        size = round(source.stat().st_size / 1e6, 1) if source.is_file() else None
        rows.insert(
            0, Row(str(source), EagerRunner.kind, "fp32", size, variant=model.variant, refiner=model.refiner_name)
        )
        opened.insert(0, (EagerRunner(model), model))  # type: ignore[arg-type]
    runners = [runner for runner, _ in opened]
    for runner in runners:
        pin_threads(runner, threads)
    for case in cases:
        for row, ms in zip(rows, time_case(runners, case, frames, rounds, clock), strict=True):
            row.ms_per_frame[case_label(*case)] = ms
            work = case_work(*case, variant=row.variant, refiner=row.refiner)
            row.limit_ms[case_label(*case)] = work.limit_ms(limits, row.precision)
    for row, (runner, reference) in zip(rows, opened, strict=True):
        case = next((c for c in cases if runs_case(runner, c)), None)
        if case is not None:
            for name, value in accuracy(runner, TorchReference(reference), case, frames).items():
                setattr(row, name, value)
    return rows


def table(rows: Sequence[Row], cases: Sequence[Tuple[int, int, float]]) -> str:
    """Markdown table; speed-up relative to the first row per size, and time over the machine's limit."""
    labels = [case_label(*c) for c in cases]
    head = ["artifact", "format", "precision", "MB"]
    for label in labels:
        head += [f"{label} fps", "ms/frame", "x first", "limit ms", "x limit"]
    head += ["alpha MAD x1e3", "pha max err", "fgr max err"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    base = rows[0].ms_per_frame if rows else {}
    for row in rows:
        kind = f"{row.format} {row.backend}" if row.backend else row.format
        cells = [Path(row.artifact).name, kind, row.precision, "-" if row.size_mb is None else f"{row.size_mb:.1f}"]
        for label in labels:
            ms, ref, limit = row.ms_per_frame.get(label), base.get(label), row.limit_ms.get(label)
            shown_limit = "-" if limit is None else f"{limit:.1f}"
            if ms is None:
                cells += ["-", "-", "-", shown_limit, "-"]
                continue
            cells += [f"{1000 / ms:.2f}", f"{ms:.1f}", f"{ref / ms:.2f}" if ref else "-", shown_limit]
            cells.append(f"{ms / limit:.1f}" if limit else "-")
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
@click.argument("artifacts", nargs=-1, type=click.Path())
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
@click.option(
    "--eager",
    is_flag=True,
    help="Add a first row: the checkpoint's model in PyTorch eager (fp32, CPU), timed in the same rounds "
    "(--checkpoint, else the first artifact's checkpoint; with --checkpoint no ARTIFACT is needed).",
)
@click.option(
    "--tfjs-backend",
    "tfjs_backends",
    multiple=True,
    type=click.Choice(backends()),
    help="Run every TF.js artifact on this backend (node: Node.js, the default; the others in headless "
    "Chromium); repeatable: one row per backend.",
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
    eager: bool,
    tfjs_backends: Tuple[str, ...],
    json_path: Optional[str],
) -> None:
    """Frames per second and accuracy vs PyTorch fp32 of each ARTIFACT, measured side by side on the CPU."""
    if not artifacts and not eager:
        raise click.UsageError("give at least one ARTIFACT (or --eager --checkpoint CKPT)")
    cases = parse_cases(sizes, ratios)
    limits = measure_machine(threads)
    try:
        rows = benchmark(artifacts, cases, checkpoint, frames, rounds, threads, clock, eager, tfjs_backends, limits)
    except USER_ERRORS as exc:
        click.echo(f"rvm-bench: error: {cli_message(exc)}", err=True)
        sys.exit(2)
    versions = ", ".join(f"{k} {v}" for k, v in tool_versions("onnxruntime").items())
    click.echo(
        f"CPU, {threads} intra-op threads, {clock} clock, batch 1, {frames} frames x {rounds} interleaved rounds "
        "(median); "
        f"{versions}; {os.cpu_count()} cores visible"
    )
    click.echo(
        f"Limit (docs/verification.md): {limits.describe()}; per frame "
        + "; ".join(
            f"{case_label(*c)} {w.gflop:.2f} GFLOP + {w.full_res_mb:.0f} MB"
            for c, w in ((c, case_work(*c)) for c in cases)
        )
    )
    click.echo(table(rows, cases))
    if json_path:
        document = {
            "cases": [case_label(*c) for c in cases],
            "threads": threads,
            "clock": clock,
            "frames": frames,
            "rounds": rounds,
            "limits": asdict(limits),
            "rows": [asdict(r) for r in rows],
        }
        Path(json_path).write_text(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
