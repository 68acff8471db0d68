"""``make export-all``: export every release artifact, verify each against PyTorch, write a manifest.

This is the only module that uses both export/ and verify/ (they never import each other).
The jobs are the registry's (``TargetSpec.release``, rvm_export/targets.py). Each job calls the ``rvm-export`` command line in-process, so the release pipeline exercises
exactly what users run, then ``verify_artifact`` on the file it wrote.

    python -m rvm_export.release [--checkpoint PATH] [--resnet50-checkpoint PATH] [--out artifacts] [--only onnx,...]
"""

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Dict, Optional

import click

from model import CheckpointError, infer_architecture, read_state_dict
from rvm_export.contract import tool_versions
from rvm_export.contract.files import write_atomic
from rvm_export.export.checkpoints import DEFAULT_CHECKPOINTS, find_checkpoint
from rvm_export.targets import TARGETS, ReleaseJob, artifact_files, release_packages
from rvm_export.verify.harness import DEFAULT_FRAMES

REPO = Path(__file__).resolve().parents[1]


def find_checkpoints(checkpoint: Optional[str], resnet50_checkpoint: Optional[str]) -> Dict[str, Optional[Path]]:
    """variant -> checkpoint file, or None for a seeded random initialisation."""
    found: Dict[str, Optional[Path]] = {}
    for given in (checkpoint, resnet50_checkpoint):
        if given:
            variant, _ = infer_architecture(read_state_dict(given))
            found[variant] = Path(given)
    for variant in DEFAULT_CHECKPOINTS:
        if variant not in found:
            found[variant] = find_checkpoint(variant)
    return found


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for file in artifact_files(path):
        digest.update(file.read_bytes())
    return digest.hexdigest()


def size_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in artifact_files(path))


def run_job(job: ReleaseJob, checkpoint: Optional[Path], out: Path, frames: int = DEFAULT_FRAMES) -> dict:
    from rvm_export.export.cli import main as export_main
    from rvm_export.verify.api import verify_artifact

    path = out / job.name
    args = [job.target, "--output", str(path), *job.args]
    # No checkpoint for a variant: its artifacts are labelled random weights (rvm-export needs --seed for that).
    args += ["--checkpoint", str(checkpoint)] if checkpoint else ["--variant", job.variant, "--seed", "0"]
    entry: dict = {
        "name": job.name,
        "target": job.target,
        "variant": job.variant,
        "command": "rvm-export " + " ".join(args),
    }
    started = time.time()
    try:
        export_main.main(args, standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            return entry | {"status": "export failed", "exit_code": exc.code}
    except Exception as exc:  # report and go on with the other artifacts
        return entry | {"status": "export failed", "error": f"{type(exc).__name__}: {exc}"}
    entry["export_seconds"] = round(time.time() - started, 1)
    started = time.time()
    report = verify_artifact(path, checkpoint, frames)
    click.echo(report.table())
    entry |= {
        "status": "verified" if report.passed else "parity failed",
        "path": str(path.relative_to(out)),
        "sha256": sha256(path),
        "size_bytes": size_bytes(path),
        "metadata": json.loads(report.metadata.to_json()),
        "verification": report.summary(),
        "verify_seconds": round(time.time() - started, 1),
    }
    return entry


@click.command()
@click.option(
    "--checkpoint", type=click.Path(dir_okay=False), default=None, help="Checkpoint for its variant (inferred)."
)
@click.option("--resnet50-checkpoint", type=click.Path(dir_okay=False), default=None)
@click.option("--out", type=click.Path(file_okay=False), default=str(REPO / "artifacts"), show_default=True)
@click.option("--only", default="", help="Comma-separated targets (default: all installed).")
@click.option(
    "--frames", type=click.IntRange(min=2), default=DEFAULT_FRAMES, show_default=True, help="Frames verified per case."
)
def main(checkpoint: Optional[str], resnet50_checkpoint: Optional[str], out: str, only: str, frames: int) -> None:
    """Export and verify every release artifact; exit 1 if any fails."""
    try:
        checkpoints = find_checkpoints(checkpoint, resnet50_checkpoint)
    except CheckpointError as exc:
        click.echo(f"export-all: error: {exc}", err=True)
        sys.exit(2)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for variant, path in checkpoints.items():
        label = str(path) if path else "NONE FOUND: seeded random initialisation (seed 0), not trained weights"
        click.echo(f"checkpoint for {variant}: {label}")
    names = [t for t in only.split(",") if t] or list(TARGETS)
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        click.echo(f"export-all: error: unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}", err=True)
        sys.exit(2)
    entries = []
    for target in names:
        for variant, path in checkpoints.items():
            for job in TARGETS[target].jobs(variant):
                click.echo(f"\n== {job.name}")
                entries.append(run_job(job, path, out_dir, frames))
    manifest = {
        "checkpoints": {v: (str(p) if p else None) for v, p in checkpoints.items()},
        "tools": tool_versions(*release_packages()),
        "artifacts": entries,
    }
    write_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=1).encode())
    click.echo(f"\n{'artifact':<48}{'status':<16}{'size MB':>9}{'max|pha err|':>14}")
    for e in entries:
        worst = e.get("verification", {}).get("worst", {}).get("pha", {}).get("max_abs", float("nan"))
        click.echo(f"{e['name']:<48}{e['status']:<16}{e.get('size_bytes', 0) / 1e6:>9.1f}{worst:>14.2e}")
    failed = [e["name"] for e in entries if e["status"] != "verified"]
    click.echo(f"\nmanifest: {out_dir / 'manifest.json'}; {len(entries) - len(failed)} verified, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
