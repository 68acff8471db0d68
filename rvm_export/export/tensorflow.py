"""``rvm-export tensorflow``: the SavedModel writer, a ``serving_default`` signature with the contract's names, a list
call for the documented ``model([src, *rec, downsample_ratio])`` style, and the metadata as an asset.

Batch, height and width are dynamic; recurrent inputs have unknown rank so the first frame
may pass the documented scalar ``tf.constant(0.)``.
"""

import tempfile
from pathlib import Path
from typing import Dict, Optional

import click
import tensorflow as tf

from rvm_export.contract import METADATA_KEY, ArtifactMetadata
from rvm_export.contract.errors import first_line

from .base import ExportError, ModelSource, atomic_output
from .cli import export_with, output_option, source_options
from .reproducible import stable_saved_model_fingerprint
from .tf_port import TFMattingNetwork, from_torch

SRC_SPEC = tf.TensorSpec([None, None, None, 3], tf.float32, name="src")
STATE_SPECS = [tf.TensorSpec(None, tf.float32, name=f"r{i}i") for i in range(1, 5)]
RATIO_SPEC = tf.TensorSpec(None, tf.float32, name="downsample_ratio")


class RVMSavedModel(tf.Module):
    """What the SavedModel holds: the network, its serving function and the metadata asset."""

    def __init__(self, net: TFMattingNetwork, metadata_file: Path) -> None:
        super().__init__(name="rvm")
        self.net = net
        self.metadata = tf.saved_model.Asset(str(metadata_file))

    @tf.function(input_signature=[[SRC_SPEC, *STATE_SPECS, RATIO_SPEC]])
    def serve(self, inputs: list) -> Dict[str, tf.Tensor]:
        """``model([src, r1, r2, r3, r4, downsample_ratio])`` as in the RVM documentation.

        Named ``serve`` because that is ``keras.layers.TFSMLayer``'s default endpoint."""
        src, r1, r2, r3, r4, ratio = inputs
        return self.net.outputs(src, [r1, r2, r3, r4], ratio)

    # The loaded object itself is callable with the same list.
    __call__ = serve

    @tf.function(input_signature=[SRC_SPEC, *STATE_SPECS, RATIO_SPEC])
    def serving_default(
        self,
        src: tf.Tensor,
        r1i: tf.Tensor,
        r2i: tf.Tensor,
        r3i: tf.Tensor,
        r4i: tf.Tensor,
        downsample_ratio: tf.Tensor,
    ) -> Dict[str, tf.Tensor]:
        """The named-input signature (``signatures['serving_default']``, TF Serving, TF.js)."""
        return self.serve([src, r1i, r2i, r3i, r4i, downsample_ratio])


def export_saved_model(net: TFMattingNetwork, output: str | Path, metadata: ArtifactMetadata) -> Path:
    """Write ``net`` as a SavedModel folder at ``output`` atomically."""
    with tempfile.TemporaryDirectory() as scratch, atomic_output(output, folder=True) as tmp:
        metadata_file = Path(scratch) / METADATA_KEY
        metadata_file.write_text(metadata.to_json())
        module = RVMSavedModel(net, metadata_file)
        try:
            tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serving_default})
        except (ValueError, TypeError, tf.errors.OpError) as exc:
            raise ExportError(f"TensorFlow could not save the SavedModel: {first_line(exc)}")
        stable_saved_model_fingerprint(tmp)  # TensorFlow writes a random uuid
    return Path(output)


@click.command("tensorflow")
@source_options
@output_option
def command(source: ModelSource, output: Optional[str]) -> None:
    """Channels-last (NHWC) TensorFlow SavedModel with a runtime downsample_ratio."""
    export_with(source, "tensorflow", output, lambda out, meta: export_saved_model(from_torch(source.model), out, meta))
