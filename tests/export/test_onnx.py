"""ONNX export: the artifact contract, the documented snippets, the graph checks, bad input."""

import os
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from rvm_export.contract import INPUT_NAMES, METADATA_KEY, OUTPUT_NAMES, STATE_INPUTS, ArtifactMetadata
from rvm_export.export.cli import main
from rvm_export.export.onnx import MAX_OPSET, MIN_OPSET
from rvm_export.export.onnx_graph import GATE_IF_NAME
from rvm_export.verify.sequence import Case, build_sequence
from tests.helpers import OFFICIAL_DOC, WEIGHTS, ArtifactCache, last_reference_pha, run_snippet

ELEM = {"fp32": onnx.TensorProto.FLOAT, "fp16": onnx.TensorProto.FLOAT16}


def dims(value: onnx.ValueInfoProto) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_contract_names_dtypes_and_dynamic_axes(precision: str, artifacts: ArtifactCache) -> None:
    graph = onnx.load(str(artifacts.onnx(precision))).graph
    assert [i.name for i in graph.input] == list(INPUT_NAMES)
    assert [o.name for o in graph.output] == list(OUTPUT_NAMES)
    for value in list(graph.input) + list(graph.output):
        want = onnx.TensorProto.FLOAT if value.name == "downsample_ratio" else ELEM[precision]
        assert value.type.tensor_type.elem_type == want, value.name
    shapes = {v.name: dims(v) for v in list(graph.input) + list(graph.output)}
    assert shapes["src"] == shapes["fgr"] == ["batch", 3, "height", "width"]
    assert shapes["pha"] == ["batch", 1, "height", "width"]
    assert shapes["downsample_ratio"] == [1]
    # Each state input has names of its own (it is [1,1,1,1] on the first frame), none shared.
    state_names = [d for name in STATE_INPUTS for d in shapes[name]]
    assert all(isinstance(d, str) for d in state_names) and len(set(state_names)) == 16
    assert shapes["r1o"] == ["batch", 16, "r1_height", "r1_width"]


def test_graph_passes_full_check_and_strict_shape_inference(artifacts: ArtifactCache) -> None:
    model = onnx.load(str(artifacts.onnx("fp16")))
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    assert model.opset_import[0].version == 12
    assert not [o for o in model.opset_import if o.domain == "rvm"], "the export-time marker op must be gone"


def test_metadata_props_carry_the_artifact_metadata(artifacts: ArtifactCache) -> None:
    model = onnx.load(str(artifacts.onnx("fp16")))
    props = {p.key: p.value for p in model.metadata_props}
    meta = ArtifactMetadata.from_json(props[METADATA_KEY])
    assert (meta.format, meta.precision, meta.variant, meta.refiner) == (
        "onnx",
        "fp16",
        "mobilenetv3",
        "fast_guided_filter",
    )
    assert meta.options["opset"] == 12 and meta.checkpoint_sha256.startswith("b70425a1")
    assert {"onnx", "onnxruntime", "onnxslim"} <= set(meta.tools)


def test_refiner_lives_only_in_the_else_branch_of_the_ratio_if(artifacts: ArtifactCache) -> None:
    graph = onnx.load(str(artifacts.onnx("fp32"))).graph
    ifs = [n for n in graph.node if n.op_type == "If"]
    assert [n.name for n in ifs] == [GATE_IF_NAME]
    branches = {a.name: a.g for a in ifs[0].attribute}
    # Ratio 1: the unrefined output, computed only there (its shapes agree only at ratio 1).
    assert [n.op_type for n in branches["then_branch"].node] == ["Split", "Add", "Clip", "Clip", "Identity", "Identity"]
    refiner_ops = [n.op_type for n in branches["else_branch"].node]
    assert refiner_ops.count("Conv") == 2  # the four box filters as one separable pair over a 16-channel stack
    assert refiner_ops.count("Resize") == 4  # A+1 and b for fgr, A/3 and b for pha
    # The main graph: the runtime-ratio downsample and the decoder's four 2x upsamplings.
    assert sum(n.op_type == "Resize" for n in graph.node) == 5


def test_full_resolution_tail_touches_full_size_tensors_only_with_arithmetic(artifacts: ArtifactCache) -> None:
    """No Concat/Split/Slice/ReduceMean/Cast over full-size tensors: every upsampled coefficient goes
    straight into Mul/Add, ``src`` is read only by Mul, Shape and the channel sum (a Reshape, a view, into a
    MatMul), and an fp32 graph casts nothing (the exporter writes a Cast for every no-op ``.to``)."""
    branch = {
        a.name: a.g
        for a in [n for n in onnx.load(str(artifacts.onnx("fp32"))).graph.node if n.op_type == "If"][0].attribute
    }
    nodes = branch["else_branch"].node
    upsampled = {o for n in nodes if n.op_type == "Resize" for o in n.output}
    readers = [n.op_type for n in nodes if upsampled.intersection(n.input)]
    assert sorted(readers) == ["Add", "Add", "Mul", "Mul"]
    src_readers = {n.op_type for n in nodes if "src" in n.input}
    assert src_readers <= {"Mul", "Reshape", "Shape"}, src_readers
    flat = {o for n in nodes if n.op_type == "Reshape" and "src" in n.input for o in n.output}
    assert {n.op_type for n in nodes if flat.intersection(n.input)} == {"MatMul"}
    assert not [n for n in nodes if n.op_type == "Cast"], "a full-size Cast in an fp32 graph"


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_runtime_ratio_resize_is_an_exact_identity_at_ratio_one(dtype: type) -> None:
    """At ratio 1 PyTorch skips the downsample; the artifact's Resize(scales=[1,1,1,1])
    (the node ``ResizeByRatio.symbolic`` emits) must be a no-op in ONNX Runtime."""
    import onnxruntime as ort
    from onnx import helper

    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    node = helper.make_node(
        "Resize", ["x", "roi", "scales"], ["y"], mode="linear", coordinate_transformation_mode="half_pixel"
    )
    graph = helper.make_graph(
        [node],
        "resize",
        [helper.make_tensor_value_info("x", elem, None), helper.make_tensor_value_info("scales", 1, [4])],
        [helper.make_tensor_value_info("y", elem, None)],
        [onnx.numpy_helper.from_array(np.zeros(0, np.float32), "roi")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((2, 3, 97, 75)).astype(dtype)
    (y,) = sess.run(None, {"x": x, "scales": np.ones(4, np.float32)})
    np.testing.assert_array_equal(y, x)


def test_static_artifact_has_fixed_shapes_and_no_ratio_input(artifacts: ArtifactCache) -> None:
    model = onnx.load(str(artifacts.onnx("fp32", 20, (161, 97), 0.5)))
    graph = model.graph
    assert "downsample_ratio" not in [i.name for i in graph.input]
    shapes = {v.name: dims(v) for v in list(graph.input) + list(graph.output)}
    assert shapes["src"] == [1, 3, 97, 161] and shapes["pha"] == [1, 1, 97, 161]
    assert shapes["r1i"] == shapes["r1o"] == [1, 16, 24, 40]
    assert all(isinstance(d, int) for s in shapes.values() for d in s)
    assert not [n for n in graph.node if n.op_type == "If"]
    assert model.opset_import[0].version == 20


def test_official_documentation_snippets_run_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, artifacts: ArtifactCache, real_model
) -> None:
    """The ONNX section of the official RVM inference documentation (docs/onnx.md's own snippets:
    tests/test_conformance.py), with the IO-binding snippet's 'cuda' on the CPU."""
    text = OFFICIAL_DOC.read_text(encoding="utf-8")
    section = text[text.index("## ONNX") : text.index("### TensorFlow")]
    load, simple_loop, io_binding = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    (tmp_path / "rvm_mobilenetv3_fp16.onnx").symlink_to(artifacts.onnx("fp16"))
    frames = build_sequence(Case(160, 96, 1, 0.25, 3))
    video = [f.astype(np.float16) for f in frames]
    plain = run_snippet(load + simple_loop, video, tmp_path, monkeypatch)
    bound = run_snippet(io_binding.replace("'cuda'", "'cpu'"), video, tmp_path, monkeypatch)

    fgr, pha = plain["fgr"], plain["pha"]
    assert fgr.dtype == pha.dtype == np.float16 and fgr.shape == (1, 3, 96, 160) and pha.shape == (1, 1, 96, 160)
    np.testing.assert_array_equal(bound["fgr"], fgr)
    np.testing.assert_array_equal(bound["pha"], pha)
    assert np.abs(pha.astype(np.float32) - last_reference_pha(real_model, frames, 0.25)).max() < 0.05


# Bad input: one line on stderr, exit 2, nothing written.


def run_cli(tmp_path: Path, *args: str):
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(main, ["onnx", "--checkpoint", str(WEIGHTS), "--output", str(out), *args])
    return result, out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--opset", str(MIN_OPSET - 1)], f"choose one from {MIN_OPSET} to {MAX_OPSET}"),
        (["--opset", str(MAX_OPSET + 1)], f"choose one from {MIN_OPSET} to {MAX_OPSET}"),
        (["--precision", "int4"], "unknown precision 'int4'; choose one of fp32, fp16"),
        (["--static", "320x192"], "go together"),
        (["--static", "wide", "--downsample-ratio", "0.5"], "is not WIDTHxHEIGHT"),
        (["--static", "320x192", "--downsample-ratio", "1.5"], "out of range"),
    ],
)
def test_bad_options_fail_with_one_line_and_write_nothing(tmp_path: Path, args: list, message: str) -> None:
    result, out = run_cli(tmp_path, *args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("rvm-export: error:")]
    assert len(errors) == 1 and message in errors[0]
    assert os.listdir(tmp_path) == []


def test_missing_checkpoint_and_unwritable_output_fail_cleanly(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    result = CliRunner().invoke(main, ["onnx", "--checkpoint", str(missing), "--output", str(tmp_path / "a.onnx")])
    assert result.exit_code == 2 and "checkpoint not found" in result.output
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["onnx", "--checkpoint", str(WEIGHTS), "--output", str(blocker / "a.onnx")])
    assert result.exit_code == 2 and "cannot create the folder" in result.output
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_cli_exports_a_verified_artifact(tmp_path: Path) -> None:
    """End to end through both command lines (opset 11, the oldest supported)."""
    from rvm_export.verify.cli import main as verify_main

    result, out = run_cli(tmp_path, "--opset", "11")
    assert result.exit_code == 0, result.output
    assert os.listdir(tmp_path) == ["out.onnx"]
    check = CliRunner().invoke(
        verify_main, [str(out), "--frames", "3", "--size", "97x75", "--ratio", "1", "--ratio", "0.5"]
    )
    assert check.exit_code == 0, check.output
    assert "PASS" in check.output
