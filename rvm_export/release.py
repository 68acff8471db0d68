"""``make export-all``: export every release artifact, verify each against PyTorch, write a manifest.

This is the only module that uses both export/ and verify/ (they never import each other).
Each job calls the ``rvm-export`` command line in-process, so the release pipeline exercises
exactly what users run, then ``verify_artifact`` on the file it wrote.

    python -m pipeline [--checkpoint PATH] [--resnet50-checkpoint PATH] [--out artifacts] [--only onnx,...]
"""

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import click

from model import CheckpointError, infer_architecture, read_state_dict
from rvm_export.contract import tool_versions
from rvm_export.export import naming
from rvm_export.export.checkpoints import DEFAULT_CHECKPOINTS, find_checkpoint

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Job:
    name: str  # artifact file or folder name under the output folder
    target: str  # rvm-export subcommand
    variant: str
    options: List[str]  # target options besides --checkpoint/--variant/--output


def torchscript_jobs(variant: str) -> List[Job]:
    jobs = []
    for precision in ("fp32", "fp16"):
        for frozen in (False, True):
            options = ["--precision", precision, "--freeze" if frozen else "--no-freeze"]
            name = naming.torchscript_name(variant, precision, frozen)
            jobs.append(Job(name, "torchscript", variant, options))
    return jobs


# The resolutions and ratios of the official CoreML release (`s` is the ratio in the file name).
COREML_RELEASE = ((1280, 720, 0.375), (1920, 1080, 0.25))


def coreml_jobs(variant: str) -> List[Job]:
    """The official release's fixed-size models, MobileNetV3 only, in both CoreML formats."""
    if variant != "mobilenetv3":
        return []
    jobs = []
    for width, height, ratio in COREML_RELEASE:
        for precision in ("fp16", "int8"):
            for fmt in ("neuralnetwork", "mlprogram"):
                name = naming.coreml_name(variant, width, height, ratio, precision, fmt)
                options = ["--resolution", str(width), str(height), "--downsample-ratio", str(ratio)]
                jobs.append(Job(name, "coreml", variant, options + ["--precision", precision, "--format", fmt]))
    return jobs


def onnx_jobs(variant: str) -> List[Job]:
    """Dynamic-shape ONNX at the default opset, fp32 and fp16, runtime FP32 downsample_ratio."""
    return [
        Job(
            naming.onnx_name(variant, precision, opset=12), "onnx", variant, ["--precision", precision, "--opset", "12"]
        )
        for precision in ("fp32", "fp16")
    ]


def tensorflow_jobs(variant: str) -> List[Job]:
    """Channels-last SavedModel folder with a serving_default signature."""
    return [Job(naming.tensorflow_name(variant), "tensorflow", variant, [])]


def tfjs_jobs(variant: str) -> List[Job]:
    """TF.js graph models for the browser, MobileNetV3 only (as the official web release): fp32, uint8
    (the official web format) and uint16 (half the size, close to fp32)."""
    if variant != "mobilenetv3":
        return []
    return [
        Job(naming.tfjs_name(variant, quantize), "tfjs", variant, ["--quantize", quantize])
        for quantize in ("none", "uint8", "uint16")
    ]


def pt2_jobs(variant: str) -> List[Job]:
    """torch.export program, fp32, MobileNetV3 only (each ExportedProgram costs ~30 s to trace and verify)."""
    if variant != "mobilenetv3":
        return []
    return [Job(naming.pt2_name(variant), "pt2", variant, ["--precision", "fp32"])]


def openvino_jobs(variant: str) -> List[Job]:
    """OpenVINO IR (.xml + .bin) for Intel CPUs, MobileNetV3, fp32 and fp16 weights."""
    if variant != "mobilenetv3":
        return []
    return [
        Job(naming.openvino_name(variant, precision), "openvino", variant, ["--precision", precision])
        for precision in ("fp32", "fp16")
    ]


def tflite_jobs(variant: str) -> List[Job]:
    """LiteRT flatbuffer from the TensorFlow port, fp32, MobileNetV3 only (the mobile model)."""
    if variant != "mobilenetv3":
        return []
    return [Job(naming.tflite_name(variant), "tflite", variant, ["--precision", "fp32"])]


# target -> the jobs for one variant
TARGET_JOBS = {
    "torchscript": torchscript_jobs,
    "onnx": onnx_jobs,
    "tensorflow": tensorflow_jobs,
    "tfjs": tfjs_jobs,
    "coreml": coreml_jobs,
    "pt2": pt2_jobs,
    "openvino": openvino_jobs,
    "tflite": tflite_jobs,
}


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


def artifact_files(path: Path) -> List[Path]:
    """The files an artifact consists of: a folder's files, an OpenVINO .xml with its .bin, or the file."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    weights = path.with_suffix(".bin")
    return [path, weights] if path.suffix == ".xml" and weights.is_file() else [path]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for file in artifact_files(path):
        digest.update(file.read_bytes())
    return digest.hexdigest()


def size_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in artifact_files(path))


def run_job(job: Job, checkpoint: Optional[Path], out: Path) -> dict:
    from rvm_export.export.cli import main as export_main
    from rvm_export.verify.api import verify_artifact

    path = out / job.name
    args = [job.target, "--output", str(path), *job.options]
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
    report = verify_artifact(path, checkpoint)
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
def main(checkpoint: Optional[str], resnet50_checkpoint: Optional[str], out: str, only: str) -> None:
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
    targets = [t for t in only.split(",") if t] or list(TARGET_JOBS)
    unknown = [t for t in targets if t not in TARGET_JOBS]
    if unknown:
        click.echo(
            f"export-all: error: unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGET_JOBS)}", err=True
        )
        sys.exit(2)
    entries = []
    for target in targets:
        for variant, path in checkpoints.items():
            for job in TARGET_JOBS[target](variant):
                click.echo(f"\n== {job.name}")
                entries.append(run_job(job, path, out_dir))
    manifest = {
        "checkpoints": {v: (str(p) if p else None) for v, p in checkpoints.items()},
        "tools": tool_versions("onnx", "onnxruntime", "tensorflow", "coremltools", "openvino", "ai-edge-litert"),
        "artifacts": entries,
    }
    tmp = out_dir / ".manifest.json.partial"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out_dir / "manifest.json")
    click.echo(f"\n{'artifact':<48}{'status':<16}{'size MB':>9}{'max|pha err|':>14}")
    for e in entries:
        worst = e.get("verification", {}).get("worst", {}).get("pha", {}).get("max_abs", float("nan"))
        click.echo(f"{e['name']:<48}{e['status']:<16}{e.get('size_bytes', 0) / 1e6:>9.1f}{worst:>14.2e}")
    failed = [e["name"] for e in entries if e["status"] != "verified"]
    click.echo(f"\nmanifest: {out_dir / 'manifest.json'}; {len(entries) - len(failed)} verified, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
