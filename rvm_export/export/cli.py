"""``rvm-export``: one subcommand per target of the registry (``rvm_export/targets.py``).

Targets are imported lazily, so ``rvm-export onnx`` works without TensorFlow installed; a target
whose extra is missing says which one to install. A target's module holds its click ``command``,
which resolves the weights with :func:`source_options` and writes through :func:`export_with`.

Without ``--output`` an artifact goes to ``artifacts/`` under the name ``make export-all`` gives it;
without ``--checkpoint`` the checkpoint is looked for where ``make export-all`` looks
(export/checkpoints.py). Random weights only with an explicit ``--seed``.
"""

import contextlib
import functools
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

import click

from model import REFINERS, VARIANTS
from rvm_export import extras, targets
from rvm_export.contract import ArtifactMetadata
from rvm_export.contract.errors import USER_ERRORS, cli_message

from .base import ExportError, ModelSource, load_source
from .checkpoints import checkpoint_candidates, find_checkpoint


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(targets.TARGETS)

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        if name not in targets.TARGETS:
            return None
        try:
            extras.require("rvm-export", name)
            return targets.load_entry(targets.TARGETS[name].exporter)
        except ImportError as exc:
            text = extras.explain("rvm-export", name, exc)
            if text is None:
                raise
            return _missing_extra_command(name, text)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the targets from the registry, without importing every exporter's runtime for ``--help``."""
        rows = [(name, spec.summary) for name, spec in targets.TARGETS.items()]
        with formatter.section("Targets"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImportError as exc:  # an optional module imported only while exporting
            text = extras.explain("rvm-export", ctx.invoked_subcommand or "", exc)
            if text is None:
                raise
            click.echo(f"rvm-export: error: {text}", err=True)
            sys.exit(2)


def _missing_extra_command(name: str, text: str) -> click.Command:
    """Stands in for a target whose extra is not installed: listed in --help, fails with ``text``."""

    def fail(args: tuple) -> None:
        click.echo(f"rvm-export: error: {text}", err=True)
        sys.exit(2)

    return click.Command(
        name,
        callback=fail,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        help=f"(not installed) {text}",
        context_settings={"ignore_unknown_options": True, "help_option_names": []},
    )


def source_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--checkpoint/--variant/--refiner/--seed, resolved into a ``source: ModelSource`` argument."""

    @click.option(
        "--checkpoint",
        type=click.Path(dir_okay=False),
        default=None,
        help="Official-layout RVM checkpoint (.pth). Default: the first found of ./checkpoints/rvm_VARIANT.pth "
        "and the places `make export-all` looks (printed).",
    )
    @click.option(
        "--variant", type=click.Choice(VARIANTS), default=None, help="Inferred from the checkpoint when omitted."
    )
    @click.option(
        "--refiner", type=click.Choice(REFINERS), default=None, help="Inferred from the checkpoint when omitted."
    )
    @click.option(
        "--seed",
        type=int,
        default=None,
        help="Export a seeded random initialisation (NOT trained weights; tests, demos) instead of a checkpoint.",
    )
    @functools.wraps(func)
    def wrapper(
        checkpoint: Optional[str], variant: Optional[str], refiner: Optional[str], seed: Optional[int], **kwargs: Any
    ) -> Any:
        with user_errors():
            if checkpoint is not None and seed is not None:
                raise ExportError("pass --checkpoint (trained weights) or --seed (random weights), not both")
            if checkpoint is None and seed is None:
                checkpoint = str(default_checkpoint(variant or VARIANTS[0]))
            source = load_source(checkpoint, variant, refiner, seed or 0)
            click.echo(f"weights: {source.label}", err=True)
            return func(source=source, **kwargs)

    return wrapper


def default_checkpoint(variant: str) -> str:
    """The checkpoint ``make export-all`` would use for ``variant``; ExportError if there is none."""
    found = find_checkpoint(variant)
    if found is None:
        looked = ", ".join(str(p) for p in checkpoint_candidates(variant))
        raise ExportError(
            f"no {variant} checkpoint found (looked for {looked}); pass --checkpoint PATH "
            "(or --seed N to export random weights)"
        )
    click.echo(f"checkpoint: {found} (found; pass --checkpoint to use another)", err=True)
    return str(found)


def output_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--output, optional: the command picks ``artifacts/<the make export-all name>`` when it is omitted."""
    return click.option(
        "--output",
        type=click.Path(),
        default=None,
        help=f"Where to write the artifact [default: {targets.DEFAULT_FOLDER}/<the name make export-all gives it>].",
    )(func)


def default_output(output: Optional[str], target: str, variant: str, **options: object) -> str:
    """``output``, or ``artifacts/<name>`` with the name ``make export-all`` gives this artifact."""
    if output:
        return output
    return str(Path(targets.DEFAULT_FOLDER) / targets.artifact_name(target, variant, **options))


def export_with(
    source: ModelSource,
    target: str,
    output: Optional[str],
    write: Callable[[str, ArtifactMetadata], Path],
    precision: str = "fp32",
    name_options: Optional[Dict[str, Any]] = None,
    metadata_options: Optional[Dict[str, Any]] = None,
) -> Path:
    """What every subcommand does: the default output name, the metadata, ``write(output, metadata)``, and
    one ``wrote`` line naming every file of the artifact (OpenVINO's .bin too); user errors -> exit 2."""
    spec = targets.spec(target)
    with user_errors():
        output = default_output(output, target, source.model.variant, **(name_options or {}))
        metadata = source.metadata(target, precision, **(metadata_options or {}))
        path = write(output, metadata)
    written = [path] + [p for p in spec.files(path) if p != path and not path.is_dir()]
    click.echo("wrote " + " and ".join(str(p) if i == 0 else p.name for i, p in enumerate(written)))
    return path


@contextlib.contextmanager
def user_errors(prog: str = "rvm-export") -> Iterator[None]:
    """Turn the errors a user can fix into one line on stderr and exit code 2."""
    try:
        yield
    except USER_ERRORS as exc:
        click.echo(f"{prog}: error: {cli_message(exc)}", err=True)
        sys.exit(2)


@click.group(cls=LazyGroup, help="Export RVM to " + ", ".join(t.title for t in targets.TARGETS.values()) + ".")
def main() -> None:
    pass


__all__ = [
    "ModelSource",
    "default_output",
    "export_with",
    "main",
    "output_option",
    "source_options",
    "user_errors",
]
