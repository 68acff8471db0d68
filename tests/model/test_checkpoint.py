"""Checkpoint loading: strict, safe, and every failure a one-line message saying what to do."""

from pathlib import Path

import pytest
import torch

from model import CheckpointError, MattingNetwork, infer_architecture, load_checkpoint, read_state_dict


def test_real_weights_load_strictly(weights_path: Path) -> None:
    state = read_state_dict(weights_path)
    assert len(state) == 365
    assert infer_architecture(state) == ("mobilenetv3", "fast_guided_filter")
    model = MattingNetwork("mobilenetv3", "fast_guided_filter")
    model.load_state_dict(state, strict=True)


def test_documented_snippet_with_default_refiner_fails_loudly(weights_path: Path) -> None:
    """These weights have no deep-guided-filter weights: never fill them in at random."""
    with pytest.raises(RuntimeError, match="refiner"):
        MattingNetwork("mobilenetv3").load_state_dict(torch.load(weights_path, weights_only=True))
    with pytest.raises(CheckpointError, match="--refiner fast_guided_filter"):
        load_checkpoint(weights_path, refiner="deep_guided_filter")


def test_wrong_variant_names_the_fix(weights_path: Path) -> None:
    with pytest.raises(CheckpointError, match="this is a mobilenetv3 checkpoint; pass --variant mobilenetv3"):
        load_checkpoint(weights_path, variant="resnet50")


def test_deep_filter_checkpoint_can_be_used_with_fast_filter(tmp_path: Path) -> None:
    path = tmp_path / "dgf.pth"
    torch.save(MattingNetwork("resnet50", "deep_guided_filter").state_dict(), path)
    assert load_checkpoint(path).refiner_name == "deep_guided_filter"
    assert load_checkpoint(path, refiner="fast_guided_filter").refiner_name == "fast_guided_filter"


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "checkpoint not found"),
        (b"this is not a checkpoint", "not a readable PyTorch checkpoint"),
        ("truncated", "not a readable PyTorch checkpoint"),
        ({"backbone.weird": torch.zeros(1)}, "not an RVM MattingNetwork checkpoint"),
        ("missing-key", "missing keys: decoder.decode2.conv.1.running_mean"),
        ("extra-key", "unexpected keys: extra.weight"),
        ("bad-shape", "wrong shapes: project_mat.conv.bias"),
        ([1, 2, 3], "not a state_dict"),
    ],
)
def test_bad_checkpoints(tmp_path: Path, weights_path: Path, content: object, message: str) -> None:
    path = tmp_path / "bad.pth"
    state = MattingNetwork("mobilenetv3", "fast_guided_filter").state_dict()
    if content == "truncated":
        path.write_bytes(weights_path.read_bytes()[:100_000])
    elif content == "missing-key":
        state.pop("decoder.decode2.conv.1.running_mean")
        torch.save(state, path)
    elif content == "extra-key":
        state["extra.weight"] = torch.zeros(1)
        torch.save(state, path)
    elif content == "bad-shape":
        state["project_mat.conv.bias"] = torch.zeros(5)
        torch.save(state, path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"x": torch.zeros(1), "f": print}, path)
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        read_state_dict(path)
