"""``rvm-verify ARTIFACT``: exit 0 on parity, 1 on a parity failure, 2 on bad input.

``rvm-verify --manifest FOLDER/manifest.json [--public-key KEY.pub]``: the release folder against its manifest
(and signature); exit 0 when it matches, 1 when it does not, 2 on bad input."""

import sys
from pathlib import Path
from typing import NoReturn, Optional, Tuple

import click

from rvm_export.contract.errors import USER_ERRORS, cli_message
from rvm_export.contract.files import os_reason, unwritable_reason

from ..targets import backends
from .api import verify_artifact
from .harness import DEFAULT_FRAMES


def parse_wxh(
    value: str, minimum: int = 1, example: str = "320x192", param_hint: Optional[str] = None
) -> Tuple[int, int]:
    """'WIDTHxHEIGHT' -> (width, height), each at least ``minimum``; a click usage error otherwise."""
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT (e.g. {example})", param_hint=param_hint)
    if w < minimum or h < minimum:
        bound = "positive" if minimum == 1 else f"at least {minimum}"
        raise click.BadParameter(f"{value!r}: width and height must be {bound}", param_hint=param_hint)
    return w, h


def parse_size(ctx: click.Context, param: click.Parameter, values: Tuple[str, ...]) -> list:
    return [parse_wxh(value) for value in values]


@click.command()
@click.argument("artifact", type=click.Path(), required=False)
@click.option(
    "--manifest",
    "manifest_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Check the release folder of this manifest.json instead of one artifact: every listed file there with "
    "its sha256 and metadata, nothing unlisted (no frames are run).",
)
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --manifest: also verify the folder's signature (manifest.json.sig) against this PEM public key.",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    default=None,
    help="The checkpoint the artifact was exported from (default: the path in its metadata).",
)
@click.option(
    "--frames", type=click.IntRange(min=2), default=DEFAULT_FRAMES, show_default=True, help="Frames per sequence."
)
@click.option("--size", "sizes", multiple=True, callback=parse_size, help="WIDTHxHEIGHT; repeatable.")
@click.option(
    "--ratio", "ratios", multiple=True, type=click.FloatRange(0, 1, min_open=True), help="Downsample ratio; repeatable."
)
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default=None,
    help="Where the artifact runs (TorchScript, ONNX); default: CPU, or CUDA for ONNX when available.",
)
@click.option(
    "--tfjs-backend",
    type=click.Choice(backends()),
    default=None,
    help="Where a TF.js artifact runs: node (default: Node.js, WebAssembly) or headless Chromium on webgl, "
    "webgl-f16 (float16 textures, as many phones; judged at fp16 bounds), wasm or cpu.",
)
@click.option("--json", "json_path", type=click.Path(), default=None, help="Write the full report here.")
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a JUnit XML report here (one test case per case, plus the artifact's own checks), for CI.",
)
@click.option(
    "--localize",
    is_flag=True,
    help="On a failure, replay the failing case and print the first diverging module (ONNX, unfrozen TorchScript).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Draw per-frame error curves and the worst alpha error map to this PNG (needs matplotlib).",
)
@click.option(
    "--require-sandbox",
    is_flag=True,
    help="Refuse (exit 2) where the runtime cannot run in a confined child process (Landlock); "
    "RVM_REQUIRE_SANDBOX=1 does the same. Without it an unconfined run says so in the report's first line.",
)
def main(
    artifact: Optional[str],
    manifest_path: Optional[str],
    public_key: Optional[str],
    checkpoint: Optional[str],
    frames: int,
    sizes: list,
    ratios: tuple,
    batch: int,
    device: Optional[str],
    tfjs_backend: Optional[str],
    json_path: Optional[str],
    junit_path: Optional[str],
    localize: bool,
    plot_path: Optional[str],
    require_sandbox: bool,
) -> None:
    """Check ARTIFACT numerically against PyTorch over a closed-loop multi-frame sequence.

    Exit status: 0 parity, 1 parity failure (or an artifact that fails to run), 2 bad input. The checkpoint is
    the one recorded in the artifact's metadata unless --checkpoint is given.

    With --manifest instead of ARTIFACT: exit 0 when the release folder matches its manifest (and signature,
    with --public-key), 1 when it does not (one line per problem), 2 on bad input."""
    if manifest_path is not None or public_key is not None:
        check_manifest(artifact, manifest_path, public_key)
    if artifact is None:
        fail("give an ARTIFACT to verify, or --manifest FOLDER/manifest.json to check a release folder")
    for option, path in (("--json", json_path), ("--junit", junit_path), ("--plot", plot_path)):
        problem = unwritable_reason(path) if path else None  # before minutes of verification
        if problem:
            fail(f"{problem}; choose another {option} path")
    if plot_path:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            fail("--plot needs matplotlib: pip install 'rvm-export[plot]'")
    try:
        report = verify_artifact(
            artifact,
            checkpoint,
            frames,
            sizes,
            ratios,
            batch,
            device,
            localize=localize,
            backend=tfjs_backend,
            require_sandbox=require_sandbox,
        )
    except USER_ERRORS as exc:
        fail(cli_message(exc))
    click.echo(report.table())
    if json_path:
        try:
            report.write_json(json_path)
        except OSError as exc:
            fail(f"writing the report {json_path} failed ({os_reason(exc)}); choose another --json path")
    if junit_path:
        try:
            report.write_junit(junit_path)
        except OSError as exc:
            fail(f"writing the report {junit_path} failed ({os_reason(exc)}); choose another --junit path")
    if plot_path:
        from .plot import plot_report

        try:
            plot_report(report, plot_path)
        except OSError as exc:
            fail(f"writing the plot {plot_path} failed ({os_reason(exc)}); choose another --plot path")
        click.echo(f"plot: {plot_path}")
    sys.exit(0 if report.passed else 1)


def check_manifest(artifact: Optional[str], manifest: Optional[str], public_key: Optional[str]) -> NoReturn:
    from .release_check import CheckInputError, check_release

    if artifact is not None or manifest is None:
        fail("--manifest checks a release folder and takes no ARTIFACT; --public-key needs --manifest")
    try:
        problems = check_release(Path(manifest), Path(public_key) if public_key else None)
    except CheckInputError as exc:
        fail(str(exc))
    for problem in problems:
        click.echo(f"rvm-verify: FAIL: {problem}", err=True)
    if problems:
        sys.exit(1)
    signed = f", signature verified with {public_key}" if public_key else " (signature not checked: no --public-key)"
    click.echo(f"release {manifest}: every listed file present, hashed and labelled as listed, none extra{signed}")
    sys.exit(0)


def fail(message: str) -> NoReturn:
    """Bad input: one line on stderr, exit code 2."""
    click.echo(f"rvm-verify: error: {message}", err=True)
    sys.exit(2)
