"""Broken copies of a good ncnn artifact, for the conformance suite and tests/runtimes/test_ncnn.py."""

from pathlib import Path

import numpy as np
import torch

from rvm_export.contract import STATE_INPUTS, ncnn_param
from tests.helpers import WEIGHTS, copy_artifact

PERTURBED = "decoder.decode1.gru.ih.0.weight"  # a conv followed by a sigmoid: pnnx stores it as trained (no BN fold)


def ncnn_perturbed(good: Path, tmp: Path, factor: float = 1.05) -> Path:
    """decoder.decode1.gru.ih.0.weight x``factor`` where the .bin stores it (raw float32, found once)."""
    path = copy_artifact(good, tmp, "perturbed.ncnn.param")
    weight = torch.load(WEIGHTS, weights_only=True)[PERTURBED].numpy().astype(np.float32)
    data = bytearray(path.with_suffix(".bin").read_bytes())
    raw = weight.tobytes()
    offset = data.find(raw)
    assert offset >= 0 and data.find(raw, offset + 1) < 0, "the weight is stored once, as fp32"
    data[offset : offset + len(raw)] = (weight * np.float32(factor)).tobytes()
    path.with_suffix(".bin").write_bytes(bytes(data))
    return path


def ncnn_ignoring_state(good: Path, tmp: Path) -> Path:
    """The .param edited so that each state input is replaced by itself minus itself (zeros of its shape) before
    its first use: a Split into two copies and a BinaryOp subtracting them."""
    path = copy_artifact(good, tmp, "stateless.ncnn.param")
    param = ncnn_param.parse(path.read_text())
    layers = []
    for layer in param.layers:
        layer.bottoms = [f"{b}_ignored" if b in STATE_INPUTS else b for b in layer.bottoms]
        layers.append(layer)
        if layer.type == "Input" and layer.tops[0] in STATE_INPUTS:
            name = layer.tops[0]
            copies = [f"{name}_a", f"{name}_b"]
            layers.append(ncnn_param.Layer("Split", f"{name}_split", [name], copies))
            layers.append(ncnn_param.Layer("BinaryOp", f"{name}_x0", copies, [f"{name}_ignored"], {"0": "1"}))
    param.layers, param.blob_count = layers, param.blob_count + 3 * len(STATE_INPUTS)
    path.write_text(param.text())
    return path


def ncnn_without_featmask(good: Path, tmp: Path) -> Path:
    """The .param with every layer's feature mask removed: pnnx's plain output, fp16 everywhere on a phone."""
    path = copy_artifact(good, tmp, "nofeatmask.ncnn.param")
    param = ncnn_param.parse(path.read_text())
    for layer in param.layers:
        layer.params.pop(ncnn_param.FEATMASK_KEY, None)
    path.write_text(param.text())
    return path
