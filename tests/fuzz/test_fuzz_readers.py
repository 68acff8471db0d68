"""Corrupted files end cleanly (issue 18, item 3): a bounded fuzz of every artifact reader.

Each format's good artifact is mutated ``PER_FORMAT[format]`` times by the fuzz driver (:mod:`tests.fuzz.driver`,
its mutations and per-format tables in one module per encoding beside it)
(truncations; byte changes in headers and anywhere; forged zip records, member bytes and pickle integers;
protobuf fields with forged varints, lengths and repeated counts; flatbuffer vector lengths, indices, shapes
and enums; JSON documents with huge shapes and sizes, wrong types, missing keys and deep nesting; OpenVINO
XML attributes; CoreML weight blob records; the rvm metadata every artifact embeds), and every mutated copy
runs through ``rvm-verify`` in one worker process with a per-input timeout and an address-space limit.

Every outcome must be exit 1, exit 2 with its one ``rvm-verify: error:`` line, or a pass of a mutation that
left what the check depends on unchanged. A traceback, a crash (a signal), a hang, a huge allocation or
stderr beyond the one line fails the test, with the per-format tally and each finding in the message.

The good artifacts are the session's shared exports from the real weights (the ones the conformance tests
verify), so the fuzz adds no export of its own to a full run. The mutations are deterministic: the same inputs
every run. A longer run of the same driver, with seeded artifacts it exports itself:
``python -m tests.fuzz --per-format 200`` from the repository root (see its --help).
"""

import random
import shutil
from pathlib import Path
from typing import Callable, Dict, List, Tuple, Union

import pytest

from tests.helpers import ArtifactCache, browser_missing, in_ci, node_missing, require, requires_node
from tests.runtimes import executorch_edits, mnn_edits

# Inputs per format: the first N of each format's mutations (their kinds follow the format's list in the FORMATS
# of tests/fuzz/<encoding>_mutations.py), or the listed ones, sized so that the fuzz itself takes about a minute on a
# 2-core CI machine (the tally prints each format's seconds; the whole test took 155 s with 12 formats at the
# earlier, larger counts, so they were cut to these when ncnn and ExecuTorch joined). A torch.export program its
# loader accepts takes 15-20 s to load and verify, one it refuses well under a second: CI runs pt2's structural
# kinds (truncation, a member truncated or dropped, member bytes, the program JSON forged), the driver's long
# run all of them.
PER_FORMAT: Dict[str, Union[int, Tuple[int, ...]]] = {
    "torchscript": 4,
    "pt2": (0, 3, 4, 11),
    "onnx": 4,
    "tensorflow": 4,
    "tfjs": 3,
    "tfjs-browser": 2,
    "coreml-mlprogram": 3,
    "coreml-neuralnetwork": 3,
    "openvino": 4,
    "tflite": 4,
    "ncnn": 4,
    "executorch": 4,
    "mnn": 4,
}

# Findings whose fix belongs outside the runner modules, reported to their owners and matched here by a precise
# signature: printed as known, not failed. Any other finding fails the test.
KNOWN: Dict[
    str, Callable
] = {}  # empty: MNN's crash on a forged op parameter (mnn:3) is now one line (the runtime runs in a child: runtimes/child.py)

GOOD: Dict[str, Callable[[ArtifactCache], Path]] = {
    "torchscript": lambda a: a.export("torchscript", "rvm_mobilenetv3_fp32.torchscript"),
    "pt2": lambda a: a.export("pt2", "rvm_mobilenetv3_fp32.pt2"),
    "onnx": lambda a: a.onnx("fp32"),
    "tensorflow": lambda a: a.export("tensorflow", "rvm_mobilenetv3_tf"),
    "tfjs": lambda a: a.export("tfjs", "rvm_mobilenetv3_tfjs"),
    "tfjs-browser": lambda a: a.export("tfjs", "rvm_mobilenetv3_tfjs"),
    "coreml-mlprogram": lambda a: a.coreml("mlprogram", "fp16"),
    "coreml-neuralnetwork": lambda a: a.coreml("neuralnetwork", "fp16"),
    "openvino": lambda a: a.export("openvino", "rvm_mobilenetv3_fp32.xml"),
    "tflite": lambda a: a.export("tflite", "rvm_mobilenetv3_fp32.tflite"),
    "ncnn": lambda a: a.export("ncnn", "rvm_mobilenetv3_fp32_s0.5.ncnn.param", "--downsample-ratio", "0.5"),
    "executorch": lambda a: a.export("executorch", executorch_edits.NAME, *executorch_edits.ARGS),
    "mnn": lambda a: a.export("mnn", mnn_edits.NAME),
}

# What each format's runner (and its exporter) needs: missing here, the format is left out; in CI, an error.
MODULES = {
    "onnx": ("onnx", "onnxruntime"),
    "tensorflow": ("tensorflow",),
    "tfjs": ("tensorflow",),
    "tfjs-browser": ("tensorflow", "playwright"),
    "coreml-mlprogram": ("coremltools",),
    "coreml-neuralnetwork": ("coremltools",),
    "openvino": ("openvino", "onnx"),
    "tflite": ("tensorflow", "ai_edge_litert"),
    "ncnn": ("ncnn", "pnnx"),
    "executorch": ("executorch",),
    "mnn": ("MNN", "onnx"),
}


def _available(name: str) -> bool:
    for module in MODULES.get(name, ()):
        try:
            require(module)  # in CI a missing module raises here: a broken install
        except pytest.skip.Exception:
            return False
    if name == "tfjs" and node_missing() and not in_ci():
        return False
    return not (name == "tfjs-browser" and browser_missing() and not in_ci())


def test_plan_covers_every_format_and_is_deterministic(tmp_path: Path) -> None:
    """Every registered reader is fuzzed, and one input is the same bytes however often it is made."""
    from rvm_export.targets import TARGETS
    from tests.fuzz.driver import formats, plan
    from tests.fuzz.json_mutations import mutate_json_text
    from tests.fuzz.mutations import Ctx
    from tests.fuzz.protobuf_mutations import pb_fields

    table = formats()
    assert set(PER_FORMAT) == set(GOOD) == set(table)
    assert {f.target for f in table.values()} == set(TARGETS)
    assert [m.kind for m in plan(table["onnx"], 3)] == [k for k, _ in table["onnx"].kinds[:3]]
    jobs = _jobs(dict.fromkeys(table, tmp_path))
    assert {m.format for m in jobs} == set(table) and len(jobs) == len(set(jobs))
    text = '{"weights": [{"shape": [3, 3], "dtype": "float32"}], "paths": ["a.bin"]}'
    first = [mutate_json_text(Ctx(random.Random(f"s{i}"), tmp_path), text, ("shape",)) for i in range(20)]
    again = [mutate_json_text(Ctx(random.Random(f"s{i}"), tmp_path), text, ("shape",)) for i in range(20)]
    assert first == again and len({t for t, _ in first}) > 10
    message = b"\x08\x96\x01\x12\x02hi"  # field 1 = 150, field 2 = "hi"
    assert [(f.number, f.value) for f in pb_fields(message, 0, len(message))] == [(1, 150), (2, 2)]
    assert pb_fields(b"\xff", 0, 1) is None


def test_corrupted_artifacts_end_cleanly(artifacts: ArtifactCache, tmp_path: Path) -> None:
    from tests.fuzz.driver import fuzz

    goods = {name: make(artifacts) for name, make in GOOD.items() if _available(name)}
    assert goods, "no runtime is installed"
    result = fuzz(goods, 0, tmp_path, only=_jobs(goods), log=print)
    summary = result.summary()
    print(summary)
    left_out = sorted(set(GOOD) - set(goods))
    known = {o.mutation.id: why for o in result.findings for why, match in KNOWN.items() if match(o)}
    for mutation, why in known.items():
        print(f"known finding {mutation}: {why}")
    unexplained = [o for o in result.findings if o.mutation.id not in known]
    assert not unexplained, f"corrupted artifacts that did not end cleanly:\n{summary}"
    assert all(t.tried == len(_indices(n)) for n, t in result.tallies.items()), summary
    assert not left_out or not in_ci(), f"formats left out: {left_out}"
    shutil.rmtree(tmp_path / "inputs", ignore_errors=True)


def _indices(name: str) -> Tuple[int, ...]:
    chosen = PER_FORMAT[name]
    return tuple(range(chosen)) if isinstance(chosen, int) else chosen


def _jobs(goods: Dict[str, Path]) -> List:
    from tests.fuzz.driver import formats, mutation

    table = formats()
    return [mutation(table[name], i) for name in PER_FORMAT if name in goods for i in _indices(name)]


def test_outcomes_are_classified() -> None:
    """What counts as clean and what as a finding, on replies of each kind (the worker's and the parent's)."""
    from tests.fuzz.driver import GB, classify

    error = "rvm-verify: error: x is not a loadable ONNX model: truncated\n"
    log = "W0000 00:00:1796161093.523625   30686 op_kernel.cc:1858] OP_REQUIRES failed\n"
    exit_2 = {"status": "exit", "code": 2}
    assert classify(exit_2, "", error)[0] == "exit 2"
    assert classify(exit_2, "", log + error)[0] == "exit 2"  # the runtime's own logger, as for good artifacts
    assert classify(exit_2, "", error + "Traceback (most recent call last):\n")[0] == "multi-line stderr"
    assert classify(exit_2, "", "")[0] == "multi-line stderr"  # exit 2 without its line
    assert classify({"status": "exit", "code": 1}, "FAIL: 3 check(s) failed; first: ...\n", "")[0] == "exit 1"
    assert classify({"status": "exit", "code": 0}, "PASS\n", "")[0] == "passed unchanged"
    assert classify({"status": "exit", "code": 0, "peak_jump": 5 * GB}, "PASS\n", "")[0] == "huge allocation"
    assert classify(exit_2, "", "rvm-verify: error: x is not ...: std::bad_alloc\n")[0] == "huge allocation"
    escaped = {"status": "exception", "type": "KeyError", "message": "'x'", "traceback": '  File "a.py", line 1'}
    assert classify(escaped, "", "")[0] == "traceback"
    assert classify({**escaped, "type": "MemoryError"}, "", "")[0] == "huge allocation"
    assert classify({"status": "crash", "returncode": -6}, "", "F0000 00:00:1.2 1 a.cc:1] Check failed")[0] == "crash"
    assert "SIGABRT" in classify({"status": "crash", "returncode": -6}, "", "")[1]
    assert classify({"status": "hang", "seconds": 180}, "", "")[0] == "hang"


@requires_node()
def test_node_crash_is_one_line(artifacts: ArtifactCache) -> None:
    """TF.js runs in a Node.js child: its death mid-run is one RunnerError line naming the signal."""
    import os
    import signal

    import numpy as np

    from rvm_export.runtimes import RunnerError
    from rvm_export.runtimes.tfjs import TfjsRunner

    runner = TfjsRunner(GOOD["tfjs"](artifacts))
    try:
        os.kill(runner.process.pid, signal.SIGKILL)
        runner.process.wait()
        with pytest.raises(RunnerError) as caught:
            runner.infer(np.zeros((1, 3, 48, 64), np.float32), runner.initial_state(1), 0.5)
    finally:
        runner.close()
    assert "SIGKILL" in str(caught.value) and "\n" not in str(caught.value), caught.value
