"""rvm-bench on a tiny size: the table and JSON it writes, its accuracy columns catching a broken
artifact, and bad input. (Speed itself is never asserted: README, "Speed".)"""

import json
import sys
from pathlib import Path

import onnx
from click.testing import CliRunner

from rvm_export.verify.bench import main as bench_main

from ..export.onnx_artifacts import REPO, WEIGHTS, exported
from .test_onnxruntime_runner import perturb_first_conv

TINY = ["--size", "64x48", "--ratio", "0.5", "--frames", "2", "--rounds", "2"]


def run_bench(*args: str):
    return CliRunner().invoke(bench_main, list(args))


def test_one_row_per_artifact_with_speed_and_accuracy(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    fp32, fp16 = exported("fp32"), exported("fp16")
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


def test_accuracy_columns_show_a_broken_artifact(tmp_path: Path) -> None:
    model = onnx.load(str(exported("fp32")))
    perturb_first_conv(model.graph)
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    out = tmp_path / "bench.json"
    result = run_bench(str(broken), *TINY, "--rounds", "1", "--threads", "1", "--clock", "cpu", "--json", str(out))
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())["rows"]
    assert row["pha_max_err"] > 0.01  # vs < 2e-3 for the intact artifact above
    assert "1 intra-op threads, cpu clock" in result.output


def test_reads_an_official_style_file_without_metadata_given_the_checkpoint(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from official_onnx import export_official_style
    finally:
        sys.path.pop(0)
    official = export_official_style(WEIGHTS, tmp_path / "official.onnx")
    assert not onnx.load(str(official)).metadata_props
    out = tmp_path / "bench.json"
    result = run_bench(str(official), str(exported("fp32")), *TINY, "--checkpoint", str(WEIGHTS), "--json", str(out))
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert [(r["format"], r["precision"]) for r in rows] == [("onnx", "fp32"), ("onnx", "fp32")]
    assert rows[0]["pha_max_err"] < 2e-3  # the official-style graph computes the same model
    result = run_bench(str(official), *TINY)
    assert result.exit_code == 2 and "pass --checkpoint CKPT" in result.output


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_bench(str(tmp_path / "missing.onnx"), *TINY)
    assert result.exit_code == 2 and "rvm-bench: error: artifact not found" in result.output
    result = run_bench(str(exported("fp32")), "--size", "wide")
    assert result.exit_code == 2 and "is not WIDTHxHEIGHT" in result.output
    result = run_bench(
        str(exported("fp32")), "--size", "64x48", "--size", "96x64", "--ratio", "0.5", "--ratio", "1", "--ratio", "0.25"
    )
    assert result.exit_code == 2 and "3 ratios for 2 sizes" in result.output
