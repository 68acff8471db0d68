"""The channels-last TensorFlow port against the PyTorch MattingNetwork, op by op and whole."""

import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from tests.helpers import require

tf = require("tensorflow")

from model import seeded_random_model  # noqa: E402
from rvm_export.export.tf_port import WeightTransferError, from_torch, transfer_weights  # noqa: E402
from rvm_export.export.tf_port.layers import resize_by_ratio  # noqa: E402
from rvm_export.export.tf_port.network import TFMattingNetwork  # noqa: E402

OUTPUTS = ("fgr", "pha", "r1o", "r2o", "r3o", "r4o")


@pytest.mark.parametrize("size", [(97, 63), (64, 128), (255, 31)])
@pytest.mark.parametrize("ratio", [0.3, 0.375, 0.4, 0.7, 1.0])
def test_resize_by_ratio_samples_like_recompute_scale_factor_false(size, ratio):
    x = np.random.default_rng(0).random((1, 2, *size), dtype=np.float32)
    ref = F.interpolate(
        torch.from_numpy(x), scale_factor=ratio, mode="bilinear", align_corners=False, recompute_scale_factor=False
    ).numpy()
    out = resize_by_ratio(tf.constant(x.transpose(0, 2, 3, 1)), tf.constant(ratio)).numpy().transpose(0, 3, 1, 2)
    assert out.shape == ref.shape
    # Exact for ratios a float32 holds exactly; otherwise PyTorch's 1/ratio comes from a double
    # and ours from the float32 input, one ulp apart: a few 1e-6 at most.
    assert np.abs(out - ref).max() < (1e-6 if ratio in (0.375, 1.0) else 1e-5)


def test_size_based_resize_would_not_match():
    """Why resize_by_ratio exists: tf.image.resize samples with in/out, not with the ratio."""
    x = np.random.default_rng(1).random((1, 97, 63, 1), dtype=np.float32)
    ref = F.interpolate(
        torch.from_numpy(x.transpose(0, 3, 1, 2)), scale_factor=0.3, mode="bilinear", recompute_scale_factor=False
    ).numpy()
    naive = tf.image.resize(x, ref.shape[2:], method="bilinear").numpy().transpose(0, 3, 1, 2)
    assert np.abs(naive - ref).max() > 1e-2


def run_all(torch_model, tf_model, size, ratio, batch=1, frames=2):
    """Closed loop over ``frames`` frames of PyTorch fp32, PyTorch fp64 and the TF port.

    Returns the worst |error| against fp64 per output, for PyTorch fp32 and for the port:
    seeded random weights are ill-conditioned (PyTorch fp32 itself is ~0.1 off fp64 in r4),
    so "float32 noise" is measured, not assumed."""
    rng = np.random.default_rng(0)
    model64 = copy.deepcopy(torch_model).double()
    err32, err_tf = dict.fromkeys(OUTPUTS, 0.0), dict.fromkeys(OUTPUTS, 0.0)
    rec32, rec64, rec_tf = [None] * 4, [None] * 4, [tf.constant(0.0)] * 4
    for _ in range(frames):
        x = rng.random((batch, 3, size[1], size[0]), dtype=np.float32)
        with torch.no_grad():
            out32 = torch_model(torch.from_numpy(x), *rec32, downsample_ratio=ratio)
            out64 = model64(torch.from_numpy(x).double(), *rec64, downsample_ratio=ratio)
        out_tf = tf_model.outputs(tf.constant(x.transpose(0, 2, 3, 1)), rec_tf, tf.constant(ratio))
        for name, a, b in zip(OUTPUTS, out32, out64, strict=True):
            o = out_tf[name].numpy().transpose(0, 3, 1, 2)
            assert o.shape == tuple(b.shape), name
            err32[name] = max(err32[name], float((a.double() - b).abs().max()))
            err_tf[name] = max(err_tf[name], float(np.abs(o - b.numpy()).max()))
        rec32, rec64, rec_tf = out32[2:], out64[2:], [out_tf[n] for n in OUTPUTS[2:]]
    return err32, err_tf


@pytest.mark.parametrize(
    "variant,refiner,size,ratio",
    [
        ("mobilenetv3", "deep_guided_filter", (97, 65), 0.5),
        ("mobilenetv3", "fast_guided_filter", (64, 80), 1.0),
        ("resnet50", "deep_guided_filter", (49, 33), 0.5),
        ("resnet50", "fast_guided_filter", (48, 32), 1.0),
    ],
)
def test_port_matches_pytorch(variant, refiner, size, ratio):
    torch_model = seeded_random_model(variant, refiner, seed=3)
    err32, err_tf = run_all(torch_model, from_torch(torch_model), size, ratio, batch=2 if ratio == 1.0 else 1)
    for name in OUTPUTS:
        assert err_tf[name] <= 10 * err32[name] + 5e-4, (name, err_tf, err32)


def test_port_matches_pytorch_with_real_weights(real_model):
    """Trained weights are well-conditioned: here the port agrees to float32 noise."""
    err32, err_tf = run_all(real_model, from_torch(real_model), (97, 65), 0.5, frames=3)
    assert max(err_tf.values()) < 2e-4, err_tf


def test_transfer_rejects_missing_and_misshaped_weights():
    torch_model = seeded_random_model("mobilenetv3", "fast_guided_filter", seed=0)
    state = dict(torch_model.state_dict())
    tf_model = TFMattingNetwork("mobilenetv3", "fast_guided_filter")
    missing = {k: v for k, v in state.items() if k != "decoder.decode0.conv.0.weight"}
    with pytest.raises(WeightTransferError, match="decode0.conv.0.weight"):
        transfer_weights(tf_model, missing)
    wrong = dict(state, **{"project_mat.conv.bias": torch.zeros(5)})
    with pytest.raises(WeightTransferError, match="project_mat.conv.bias"):
        transfer_weights(tf_model, wrong)
    with pytest.raises(WeightTransferError, match="unexpected"):
        transfer_weights(tf_model, dict(state, extra=torch.zeros(1)))


def test_transfer_copies_with_layout_change():
    torch_model = seeded_random_model("mobilenetv3", "deep_guided_filter", seed=0)
    tf_model = from_torch(torch_model)
    conv = torch_model.state_dict()["decoder.decode1.gru.ih.0.weight"].numpy()
    var, kind = tf_model.registry.entries["decoder.decode1.gru.ih.0.weight"]
    assert kind == "conv" and np.array_equal(var.numpy(), conv.transpose(2, 3, 1, 0))
    dw = torch_model.state_dict()["refiner.box_filter.weight"].numpy()
    var, kind = tf_model.registry.entries["refiner.box_filter.weight"]
    assert kind == "depthwise" and np.array_equal(var.numpy(), dw.transpose(2, 3, 0, 1))


def test_centred_moments_equal_the_naive_formula_for_any_box_weights():
    """cov and var about the local mean equal E[xy] - E[x]E[y] (computed in float64) also for
    learned box weights that do not sum to 1 (the deep guided filter's), zero padding included."""
    from rvm_export.export.tf_port.guided_filter import LocalMoments

    rng = np.random.default_rng(0)
    x, y = rng.random((2, 1, 7, 9, 4))
    weights = rng.normal(1 / 9, 0.05, (3, 3, 4, 1))

    def box(v):
        padded = np.pad(v, [(0, 0), (1, 1), (1, 1), (0, 0)])
        return sum(weights[i, j, :, 0] * padded[:, i : i + 7, j : j + 9] for i in range(3) for j in range(3))

    mean_x, mean_y = box(x), box(y)
    cov_ref, var_ref = box(x * y) - mean_x * mean_y, box(x * x) - mean_x * mean_x
    as_tf = [tf.constant(v, tf.float32) for v in (x, y, mean_x, mean_y)]
    cov, var = LocalMoments(tf.constant(weights, tf.float32), 3)(*as_tf)
    assert np.abs(cov.numpy() - cov_ref).max() < 1e-6
    assert np.abs(var.numpy() - var_ref).max() < 1e-6
