"""Broken MNN models for the conformance suite (tests/test_conformance.py).

* :func:`mnn_perturbed`: ``decoder.decode1.gru.ih.0.weight`` x1.02 where the ``.mnn`` stores it (a Convolution's
  weight vector, raw float32 OIHW as in the checkpoint: no batch norm is folded into it), found by its bytes;
* :func:`mnn_ignoring_state`: our ONNX export with r1i..r4i disconnected (tests.helpers.disconnect_states),
  converted by the same converter call as the good one.
"""

import copy
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from tests.helpers import WEIGHTS, disconnect_states, rewrite_onnx

NAME = "rvm_mobilenetv3_fp32.mnn"
WEIGHT = "decoder.decode1.gru.ih.0.weight"


def mnn_perturbed(good: Path, tmp: Path, factor: float = 1.02) -> Path:
    values = torch.load(WEIGHTS, weights_only=True)[WEIGHT].contiguous().numpy()
    data = bytearray(good.read_bytes())
    raw = values.tobytes()
    assert data.count(raw) == 1, f"{WEIGHT} is not stored once, raw fp32, in {good.name}"
    at = data.find(raw)
    data[at : at + len(raw)] = (values * np.float32(factor)).astype(np.float32).tobytes()
    path = tmp / "perturbed.mnn"
    path.write_bytes(bytes(data))
    return path


def mnn_ignoring_state(source, tmp: Path) -> Path:
    from rvm_export.export.mnn import convert
    from rvm_export.export.onnx import DEFAULT_OPSET, export_onnx

    metadata = source.metadata("mnn", "fp32", opset=DEFAULT_OPSET, weights="fp32")
    with tempfile.TemporaryDirectory() as work:
        onnx_path = Path(work) / "rvm.onnx"
        export_onnx(copy.deepcopy(source.model).float(), onnx_path, metadata, DEFAULT_OPSET)  # shared: copy
        rewrite_onnx(onnx_path, onnx_path, disconnect_states)
        path = tmp / "stateless.mnn"
        convert(onnx_path, path, json.dumps(json.loads(metadata.to_json()), separators=(",", ":")))
    return path
