"""``rvm-export``: one subcommand per target.

Targets are imported lazily, so ``rvm-export onnx`` works without TensorFlow installed.
Adding a target: a module in export/ with a click command named ``command``, plus one line
in :data:`TARGETS`.
"""

import contextlib
import functools
import importlib
import sys
from typing import Any, Callable, Iterator, Optional

import click

from model import REFINERS, VARIANTS, CheckpointError

from .base import ExportError, ModelSource, load_source

# subcommand -> module holding its ``command``
TARGETS = {
    "torchscript": "export.torchscript_cli",
    "coreml": "export.coreml_cli",
    "onnx": "export.onnx_cli",
    "tensorflow": "export.tensorflow_cli",
    "tfjs": "export.tfjs_cli",
    "pt2": "export.pt2_cli",
    "openvino": "export.openvino_cli",
    "tflite": "export.tflite_cli",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(TARGETS)

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        if name not in TARGETS:
            return None
        return importlib.import_module(TARGETS[name]).command


def source_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--checkpoint/--variant/--refiner/--seed, resolved into a ``source: ModelSource`` argument."""

    @click.option(
        "--checkpoint",
        type=click.Path(dir_okay=False),
        default=None,
        help="Official-layout RVM checkpoint (.pth). Without it: a seeded random initialisation.",
    )
    @click.option(
        "--variant", type=click.Choice(VARIANTS), default=None, help="Inferred from the checkpoint when omitted."
    )
    @click.option(
        "--refiner", type=click.Choice(REFINERS), default=None, help="Inferred from the checkpoint when omitted."
    )
    @click.option(
        "--seed", type=int, default=0, show_default=True, help="Seed of the random initialisation (no --checkpoint)."
    )
    @functools.wraps(func)
    def wrapper(
        checkpoint: Optional[str], variant: Optional[str], refiner: Optional[str], seed: int, **kwargs: Any
    ) -> Any:
        with user_errors():
            source = load_source(checkpoint, variant, refiner, seed)
            click.echo(f"weights: {source.label}", err=True)
            return func(source=source, **kwargs)

    return wrapper


@contextlib.contextmanager
def user_errors(prog: str = "rvm-export") -> Iterator[None]:
    """Turn the errors a user can fix into one line on stderr and exit code 2."""
    try:
        yield
    except (ExportError, CheckpointError) as exc:
        click.echo(f"{prog}: error: {exc}", err=True)
        sys.exit(2)


@click.group(cls=LazyGroup)
def main() -> None:
    """Export RVM to TorchScript, ONNX, TensorFlow, TF.js, CoreML, torch.export (.pt2), OpenVINO or LiteRT."""


__all__ = ["ModelSource", "main", "source_options", "user_errors"]
