"""``make export-all``: export every release artifact, verify each against PyTorch, write a manifest.

This is the only module that uses both export/ and verify/ (they never import each other).
The jobs are the registry's (``TargetSpec.release``, rvm_export/targets.py). Each job calls the ``rvm-export`` command line in-process, so the release pipeline exercises
exactly what users run, then ``verify_artifact`` on the file it wrote.

    python -m rvm_export.release [--checkpoint PATH] [--resnet50-checkpoint PATH] [--out artifacts] [--only onnx,...]
        [--force] [--junit FILE] [--signing-key KEY.pem]

Nothing in the manifest is a path of the building machine: checkpoints are named by file name and sha256,
commands are relative to the output folder. An artifact whose inputs (:func:`job_inputs`: the exporter's source,
the checkpoint's sha256, the options, the tool versions) are those the manifest records, and whose files still
hash to it, is not redone unless ``--force`` (docs/release.md).
"""

import ast
import hashlib
import json
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple

import click

from model import CheckpointError, infer_architecture, read_state_dict
from rvm_export.contract import tool_versions
from rvm_export.contract.checkpoints import CheckpointFileError, read_checkpoint
from rvm_export.contract.files import os_reason, unwritable_reason, write_atomic
from rvm_export.export.checkpoints import DEFAULT_CHECKPOINTS, find_checkpoint
from rvm_export.targets import TARGETS, ReleaseJob, artifact_files, release_packages
from rvm_export.verify.harness import DEFAULT_FRAMES
from rvm_export.verify.release_check import CheckInputError, check_files, files_sha256, require_signing_key, sign_folder
from rvm_export.verify.report import junit_case, write_junit

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
    return files_sha256(artifact_files(path))


def size_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in artifact_files(path))


# Sources every exporter's output depends on, besides its own modules: the model, the contract, the registry.
SHARED_SOURCES = ("model", "rvm_export/contract", "rvm_export/targets.py")


def _module_file(module: str) -> Optional[Path]:
    """The source file of ``module`` inside this repository, or None."""
    base = REPO.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported_modules(path: Path, module: str) -> Set[str]:
    """The rvm_export.export modules ``path`` (the module ``module``) imports, read from its syntax tree."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: List[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            stem = ".".join(p for p in (base, node.module or "") if p)
            names = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
        found |= {n for n in names if n.startswith("rvm_export.export") and _module_file(n) is not None}
    return found


def exporter_sources(target: str) -> List[Path]:
    """The source files a target's artifacts depend on: its exporter module, the rvm_export.export modules it
    imports (transitively: the TensorFlow port for tensorflow, tfjs and tflite), and :data:`SHARED_SOURCES`."""
    first = TARGETS[target].exporter.split(":")[0]
    seen: Set[str] = set()
    todo = [first]
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        todo += sorted(_imported_modules(path, module) - seen)
    files = {_module_file(m) for m in seen} | {p for shared in SHARED_SOURCES for p in _python_files(REPO / shared)}
    return sorted(p for p in files if p is not None)


def _python_files(path: Path) -> Iterable[Path]:
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def exporter_digest(target: str) -> str:
    """sha256 over the target's source files (:func:`exporter_sources`), each by its repository path."""
    digest = hashlib.sha256()
    for path in exporter_sources(target):
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def job_inputs(job: ReleaseJob, checkpoint_sha256: Optional[str]) -> dict:
    """What an artifact is made from; equal inputs and unchanged files let ``make export-all`` skip it."""
    return {
        "exporter_sha256": exporter_digest(job.target),
        "checkpoint_sha256": checkpoint_sha256,
        "args": list(job.args),
        "tools": tool_versions(*TARGETS[job.target].packages),
    }


def export_args(job: ReleaseJob, output: str, checkpoint: Optional[str]) -> List[str]:
    """``rvm-export`` arguments for ``job`` writing ``output`` from ``checkpoint`` (None: seed 0)."""
    args = [job.target, "--output", output, *job.args]
    # No checkpoint for a variant: its artifacts are labelled random weights (rvm-export needs --seed for that).
    return args + (["--checkpoint", checkpoint] if checkpoint else ["--variant", job.variant, "--seed", "0"])


def unchanged(previous: Optional[dict], inputs: dict, path: Path) -> bool:
    """The manifest's verified entry for this artifact has these inputs, and its files still hash to it."""
    if not previous or previous.get("status") != "verified" or previous.get("inputs") != inputs:
        return False
    return path.exists() and sha256(path) == previous.get("sha256")


def run_job(
    job: ReleaseJob,
    checkpoint: Optional[Path],
    out: Path,
    frames: int = DEFAULT_FRAMES,
    previous: Optional[dict] = None,
    checkpoint_sha256: Optional[str] = None,
) -> Tuple[dict, List[ET.Element]]:
    """Export and verify one artifact: (its manifest entry, its JUnit test cases). ``previous``: the manifest's
    entry from an earlier run; when it is verified with the same inputs and files, nothing is redone."""
    from rvm_export.export.cli import main as export_main
    from rvm_export.verify.api import verify_artifact

    path = out / job.name
    if checkpoint is not None and checkpoint_sha256 is None:
        checkpoint_sha256 = read_checkpoint(checkpoint).sha256
    inputs = job_inputs(job, checkpoint_sha256)
    if unchanged(previous, inputs, path):
        assert previous is not None
        click.echo(f"{job.name}: unchanged (inputs and files as in the manifest), skipped")
        reason = "unchanged since the manifest's verified run; not redone (FORCE=1 redoes it)"
        cases = ["artifact checks", *previous.get("verification", {}).get("cases", [])]
        return previous, [junit_case(job.name, case, [], skipped=reason) for case in cases]
    entry: dict = {
        "name": job.name,
        "target": job.target,
        "variant": job.variant,
        # relative to the output folder, where the manifest is: no path of the building machine
        "command": "rvm-export " + " ".join(export_args(job, job.name, checkpoint.name if checkpoint else None)),
        "inputs": inputs,
    }
    started = time.time()
    failure = None
    try:
        export_main.main(export_args(job, str(path), str(checkpoint) if checkpoint else None), standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            entry |= {"status": "export failed", "exit_code": exc.code}
            failure = f"rvm-export exited {exc.code}"
    except Exception as exc:  # report and go on with the other artifacts
        entry |= {"status": "export failed", "error": f"{type(exc).__name__}: {exc}"}
        failure = entry["error"]
    if failure is not None:
        return entry, [junit_case(job.name, "export", [failure])]
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
    return entry, report.junit_cases(job.name)


def read_manifest(path: Path) -> Dict[str, dict]:
    """name -> entry of an earlier manifest at ``path``; empty when there is none or it is not one."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8")).get("artifacts", [])
        return {e["name"]: e for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)}
    except (OSError, ValueError, AttributeError):
        return {}


def other_files(out_dir: Path, junit_path: Optional[str]) -> List[dict]:
    """The folder's files besides the artifacts that the release ships: its README and the JUnit report."""
    found = [out_dir / "README.md"] + ([Path(junit_path)] if junit_path else [])
    inside = [p for p in found if p.is_file() and p.resolve().parent == out_dir.resolve()]
    return [{"path": p.name, "sha256": files_sha256([p])} for p in inside]


def sign_release(manifest_path: Path, manifest: dict, key: Path) -> None:
    """Sign the folder, after checking it is what the manifest lists (a stale file would be signed too)."""
    problems = check_files(manifest_path, manifest)
    if problems:
        for problem in problems:
            click.echo(f"export-all: not signed: {problem}", err=True)
        click.echo("export-all: the folder is not what its manifest lists; remove or redo those, then sign", err=True)
        sys.exit(1)
    click.echo(f"signed: {sign_folder(manifest_path, key)}")


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
@click.option("--force", is_flag=True, help="Redo every artifact, even those unchanged since the manifest.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), default=None, help="Write a JUnit XML here.")
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="Sign the release folder with this PEM private key (model-signing; manifest.json.sig next to the manifest).",
)
def main(
    checkpoint: Optional[str],
    resnet50_checkpoint: Optional[str],
    out: str,
    only: str,
    frames: int,
    force: bool,
    junit_path: Optional[str],
    signing_key: Optional[str],
) -> None:
    """Export and verify every release artifact; exit 1 if any fails."""
    try:
        checkpoints = find_checkpoints(checkpoint, resnet50_checkpoint)
        hashes = {v: read_checkpoint(p).sha256 if p else None for v, p in checkpoints.items()}
    except CheckpointError as exc:
        click.echo(f"export-all: error: {exc}", err=True)
        sys.exit(2)
    except CheckpointFileError as exc:
        click.echo(f"export-all: error: the checkpoint {exc}; pass a regular .pth file of at most 2 GiB", err=True)
        sys.exit(2)
    try:
        if signing_key:
            require_signing_key(Path(signing_key))  # before minutes of exporting
    except CheckInputError as exc:
        click.echo(f"export-all: error: {exc}", err=True)
        sys.exit(2)
    problem = unwritable_reason(junit_path) if junit_path else None
    if problem:
        click.echo(f"export-all: error: {problem}; choose another --junit path", err=True)
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
    previous = {} if force else read_manifest(out_dir / "manifest.json")
    entries, suites = [], []
    for target in names:
        for variant, path in checkpoints.items():
            for job in TARGETS[target].jobs(variant):
                click.echo(f"\n== {job.name}")
                entry, cases = run_job(job, path, out_dir, frames, previous.get(job.name), hashes[variant])
                entries.append(entry)
                suites.append((job.name, cases))
    if junit_path:  # before the manifest, which lists it when it is in the folder
        try:
            write_junit(junit_path, suites, name="make export-all")
        except OSError as exc:
            click.echo(f"export-all: error: writing {junit_path} failed ({os_reason(exc)})", err=True)
            sys.exit(2)
    manifest = {
        "checkpoints": {v: ({"file": p.name, "sha256": hashes[v]} if p else None) for v, p in checkpoints.items()},
        "tools": tool_versions(*release_packages()),
        "artifacts": entries,
        "other_files": other_files(out_dir, junit_path),
    }
    write_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=1).encode())
    if signing_key:
        sign_release(out_dir / "manifest.json", manifest, Path(signing_key))
    click.echo(f"\n{'artifact':<48}{'status':<16}{'size MB':>9}{'max|pha err|':>14}")
    for e in entries:
        worst = e.get("verification", {}).get("worst", {}).get("pha", {}).get("max_abs", float("nan"))
        click.echo(f"{e['name']:<48}{e['status']:<16}{e.get('size_bytes', 0) / 1e6:>9.1f}{worst:>14.2e}")
    failed = [e["name"] for e in entries if e["status"] != "verified"]
    click.echo(f"\nmanifest: {out_dir / 'manifest.json'}; {len(entries) - len(failed)} verified, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
