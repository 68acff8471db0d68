"""rvm-bench on a tiny size: the table and JSON it writes, its accuracy columns catching a broken
artifact, the PyTorch eager row, one row per TF.js backend, the size of multi-file artifacts, and bad
input. (Speed itself is never asserted: README, "Speed".)"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from rvm_export.verify.bench import accuracy, artifact_mb
from rvm_export.verify.bench import main as bench_main
from tests.helpers import REPO, WEIGHTS, ArtifactCache, perturb_first_conv, require, requires_browser, requires_node

TINY = ["--size", "64x48", "--ratio", "0.5", "--frames", "2", "--rounds", "2"]


def run_bench(*args: str):
    return CliRunner().invoke(bench_main, list(args))


def test_one_row_per_artifact_with_speed_and_accuracy(tmp_path: Path, artifacts: ArtifactCache) -> None:
    out = tmp_path / "bench.json"
    fp32, fp16 = artifacts.onnx("fp32"), artifacts.onnx("fp16")
    result = run_bench(str(fp32), str(fp16), *TINY, "--size", "48x32", "--ratio", "1", "--json", str(out))
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("| rvm_")]
    assert [r.split(" | ")[0] for r in rows] == [f"| {fp32.name}", f"| {fp16.name}"]
    doc = json.loads(out.read_text())
    assert doc["cases"] == ["64x48 r0.5", "48x32 r1"]
    first, second = doc["rows"]
    assert (first["format"], first["precision"], second["precision"]) == ("onnx", "fp32", "fp16")
    assert all(ms > 0 for row in doc["rows"] for ms in row["ms_per_frame"].values())
    assert 10 < first["size_mb"] < 20
    # Accuracy against PyTorch fp32 at the first size: float noise for fp32, fp16 rounding for fp16.
    assert first["pha_max_err"] < 2e-3 and first["alpha_mad_1e3"] < 0.02
    assert 1e-4 < second["pha_max_err"] < 0.15
    # The limit: measured on this machine, and a lower bound of every time measured.
    assert doc["limits"]["gemm_gflops"]["fp32"] > 1 and doc["limits"]["bandwidth_gbs"] > 0.1
    for row in doc["rows"]:
        assert set(row["limit_ms"]) == set(row["ms_per_frame"])
        assert all(0 < row["limit_ms"][c] < row["ms_per_frame"][c] for c in row["limit_ms"])
    assert "x limit" in result.output and "GFLOP/s" in result.output


def test_the_limit_counts_the_models_work_and_holds_a_precision_to_what_the_cpu_has() -> None:
    from rvm_export.verify.limits import MachineLimits, case_work, native_precisions

    work = case_work(1920, 1080, 0.25)
    assert 7.9 < work.gflop < 8.0  # torch.utils.flop_counter's count of the 480x270 network (issue 20: 7.96)
    assert work.full_res_mb == 1920 * 1080 * 28 / 1e6  # src read, fgr and pha written once, float32
    assert case_work(1920, 1080, 0.5).gflop > 3.5 * work.gflop  # 4x the pixels at the network's size
    amd = MachineLimits(2, {"fp32": 100.0}, 20.0)
    assert amd.peak("bf16") == amd.peak("fp16") == 100.0
    assert work.limit_ms(amd, "fp32") == work.gflop / 100 * 1e3 + work.full_res_mb / 20
    xeon = MachineLimits(2, {"fp32": 400.0, "bf16": 2000.0}, 35.0)
    assert work.limit_ms(xeon, "bf16") < work.limit_ms(xeon, "fp32") / 3
    assert native_precisions(("avx2", "fma")) == ("fp32",)
    assert native_precisions(("amx_bf16", "avx512_fp16")) == ("fp32", "bf16", "fp16")


def test_accuracy_columns_show_a_broken_artifact(tmp_path: Path, artifacts: ArtifactCache) -> None:
    model = onnx.load(str(artifacts.onnx("fp32")))
    perturb_first_conv(model.graph)
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    out = tmp_path / "bench.json"
    result = run_bench(str(broken), *TINY, "--rounds", "1", "--threads", "1", "--clock", "cpu", "--json", str(out))
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())["rows"]
    assert row["pha_max_err"] > 0.01  # vs < 2e-3 for the intact artifact above
    assert "1 intra-op threads, cpu clock" in result.output


def test_reads_an_official_style_file_without_metadata_given_the_checkpoint(
    tmp_path: Path, artifacts: ArtifactCache
) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from official_onnx import export_official_style
    finally:
        sys.path.pop(0)
    official = export_official_style(WEIGHTS, tmp_path / "official.onnx")
    assert not onnx.load(str(official)).metadata_props
    out = tmp_path / "bench.json"
    result = run_bench(
        str(official), str(artifacts.onnx("fp32")), *TINY, "--checkpoint", str(WEIGHTS), "--json", str(out)
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert [(r["format"], r["precision"]) for r in rows] == [("onnx", "fp32"), ("onnx", "fp32")]
    assert rows[0]["pha_max_err"] < 2e-3  # the official-style graph computes the same model
    result = run_bench(str(official), *TINY)
    assert (
        result.exit_code == 2
        and "pass the checkpoint it was exported from to verify it (--checkpoint)" in result.output
    )


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, artifacts: ArtifactCache) -> None:
    result = run_bench(str(tmp_path / "missing.onnx"), *TINY)
    assert result.exit_code == 2 and "rvm-bench: error: artifact not found" in result.output
    result = run_bench(str(artifacts.onnx("fp32")), "--size", "wide")
    assert result.exit_code == 2 and "is not WIDTHxHEIGHT" in result.output
    result = run_bench(
        str(artifacts.onnx("fp32")),
        "--size",
        "64x48",
        "--size",
        "96x64",
        "--ratio",
        "0.5",
        "--ratio",
        "1",
        "--ratio",
        "0.25",
    )
    assert result.exit_code == 2 and "3 ratios for 2 sizes" in result.output


def test_eager_adds_the_checkpoints_model_as_the_first_row(tmp_path: Path, artifacts: ArtifactCache) -> None:
    out = tmp_path / "bench.json"
    fp32 = artifacts.onnx("fp32")
    result = run_bench("--eager", str(fp32), *TINY, "--rounds", "1", "--checkpoint", str(WEIGHTS), "--json", str(out))
    assert result.exit_code == 0, result.output
    eager, onnx_row = json.loads(out.read_text())["rows"]
    assert (eager["artifact"], eager["format"], eager["precision"]) == (str(WEIGHTS), "pytorch-eager", "fp32")
    assert eager["size_mb"] == round(WEIGHTS.stat().st_size / 1e6, 1)
    assert all(ms > 0 for ms in eager["ms_per_frame"].values())
    assert eager["pha_max_err"] == 0 and eager["alpha_mad_1e3"] == 0  # the reference itself
    assert onnx_row["format"] == "onnx" and 0 < onnx_row["pha_max_err"] < 2e-3
    table_rows = [line for line in result.output.splitlines() if line.startswith("| rvm_")]
    assert table_rows[0].startswith(f"| {WEIGHTS.name} | pytorch-eager | fp32 |")
    assert table_rows[0].split(" | ")[6] == "1.00"  # the others' "x first" compares with it
    # No artifact: the eager row alone, which needs the checkpoint.
    result = run_bench("--eager", "--checkpoint", str(WEIGHTS), *TINY, "--rounds", "1", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert [r["format"] for r in json.loads(out.read_text())["rows"]] == ["pytorch-eager"]
    result = run_bench("--eager", *TINY)
    assert result.exit_code == 2 and "needs the checkpoint to run (--checkpoint)" in result.output
    result = run_bench(*TINY)
    assert result.exit_code == 2 and "give at least one ARTIFACT" in result.output


def test_tfjs_backend_applies_to_tfjs_artifacts_only(artifacts: ArtifactCache) -> None:
    result = run_bench(str(artifacts.onnx("fp32")), *TINY, "--tfjs-backend", "node")
    assert (
        result.exit_code == 2
        and "applies to TensorFlow.js artifacts only, and none was given (--tfjs-backend)" in result.output
    )
    result = run_bench(str(artifacts.onnx("fp32")), *TINY, "--tfjs-backend", "webgpu")
    assert result.exit_code == 2 and "Invalid value for '--tfjs-backend'" in result.output


@requires_node()
@requires_browser()
def test_tfjs_backend_gives_one_row_per_backend(tmp_path: Path, artifacts: ArtifactCache) -> None:
    require("tensorflow")
    require("playwright")
    tfjs = artifacts.export("tfjs", "rvm_mobilenetv3_tfjs")
    out = tmp_path / "bench.json"
    args = ["--tfjs-backend", "node", "--tfjs-backend", "wasm", "--json", str(out)]
    result = run_bench(str(tfjs), str(artifacts.onnx("fp32")), *TINY, "--rounds", "1", *args)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert [(r["format"], r["backend"]) for r in rows] == [("tfjs", "node"), ("tfjs", "wasm"), ("onnx", None)]
    assert all(ms > 0 for r in rows for ms in r["ms_per_frame"].values())
    assert all(r["pha_max_err"] < 2e-3 for r in rows)  # fp32 TF.js on both backends
    assert "| rvm_mobilenetv3_tfjs | tfjs node | fp32 |" in result.output
    assert "| rvm_mobilenetv3_tfjs | tfjs wasm | fp32 |" in result.output


def test_size_counts_every_file_of_an_artifact(tmp_path: Path) -> None:
    (tmp_path / "rvm_fp32_openvino.xml").write_bytes(b"x" * 200_000)
    (tmp_path / "rvm_fp32_openvino.bin").write_bytes(b"x" * 1_800_000)
    assert artifact_mb(tmp_path / "rvm_fp32_openvino.xml") == pytest.approx(2.0)
    folder = tmp_path / "rvm_tfjs"
    folder.mkdir()
    (folder / "model.json").write_bytes(b"{}" * 50_000)
    for i in (1, 2):
        (folder / f"group1-shard{i}of2.bin").write_bytes(b"x" * 1_000_000)
    assert artifact_mb(folder) == pytest.approx(2.1)


class Constant:
    """A stand-in runner whose every output pixel is ``value``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def initial_state(self, batch: int) -> None:
        return None

    def infer(self, src: np.ndarray, state: None, ratio: float):
        b, _, h, w = src.shape
        return {"fgr": np.full((b, 3, h, w), self.value, np.float32), "pha": np.full((b, 1, h, w), self.value)}, None


def test_accuracy_reports_non_finite_outputs_as_nan() -> None:
    assert accuracy(Constant(0.75), Constant(0.5), (64, 48, 0.5), 2) == pytest.approx(
        {"alpha_mad_1e3": 250.0, "pha_max_err": 0.25, "fgr_max_err": 0.25}
    )
    worst = accuracy(Constant(float("nan")), Constant(0.5), (64, 48, 0.5), 2)
    assert all(math.isnan(v) for v in worst.values()), worst  # not 0: max(0, nan) is 0


def test_threads_pin_openvino_too(artifacts: ArtifactCache) -> None:
    require("openvino")
    from rvm_export.runtimes.openvino import OpenVinoRunner
    from rvm_export.verify.bench import pin_threads

    # the runner class in this process, to read its compiled model (through open_runner it is the child's)
    runner = OpenVinoRunner(artifacts.export("openvino", "rvm_mobilenetv3_fp32.xml"))
    precision = runner.compiled.get_property("INFERENCE_PRECISION_HINT")
    pin_threads(runner, 1)
    assert runner.compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert runner.compiled.get_property("INFERENCE_PRECISION_HINT") == precision  # still the pinned f32


def test_an_artifact_with_its_ratio_baked_in_runs_only_that_ratio() -> None:
    from rvm_export.verify.bench import runs_case

    class Baked:  # ncnn: dynamic size, ratio fixed at export
        def fixed_case(self):
            return None

        def fixed_ratio(self):
            return 0.5

    assert runs_case(Baked(), (128, 96, 0.5)) and not runs_case(Baked(), (128, 96, 0.25))
