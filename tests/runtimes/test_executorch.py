"""ExecuTorch (.pte) specifics: the program read as data (methods, delegates, operators, input shapes, metadata),
the inspector's refusals of edited copies, the fixed case the verifier takes from the file, and a program without
its metadata method. (Passing, the perturbed weight, the ignored state and the doc snippet: tests/test_conformance.py.)

The artifact is the session's shared 128x96 export at ratio 0.25 (the doc-snippet case), lowered once (~20 s)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rvm_export.contract.errors import RunnerError
from rvm_export.contract.metadata import METADATA_METHOD
from rvm_export.runtimes.inspection import inspect_artifact
from rvm_export.runtimes.inspection_readers import FlatbufferReader
from rvm_export.runtimes.pte_format import PteError, read_pte
from rvm_export.verify.cli import main as verify_main
from tests.helpers import ArtifactCache, require

NAME = "rvm_mobilenetv3_128x96_s0.25_fp32.pte"
ARGS = ("--resolution", "128", "96", "--downsample-ratio", "0.25")


@pytest.fixture(scope="module")
def pte(artifacts: ArtifactCache) -> Path:
    require("executorch")
    return artifacts.export("executorch", NAME, *ARGS)


def edited(good: Path, tmp: Path, old: bytes, new: bytes, name: str = "edited.pte") -> Path:
    """A copy of ``good`` with the one occurrence of ``old`` replaced by ``new`` (same length)."""
    data = good.read_bytes()
    assert len(old) == len(new) and data.count(old) >= 1, old
    path = tmp / name
    path.write_bytes(data.replace(old, new, 1))
    return path


def refused(path: Path, *expected: str) -> str:
    with pytest.raises(RunnerError) as info:
        inspect_artifact(path, "executorch")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"refusing to run {path}"), message
    for text in expected:
        assert text in message, message
    return message


def test_program_reads_as_data(pte: Path) -> None:
    program = read_pte(pte.read_bytes())
    assert set(program.methods) == {"forward", METADATA_METHOD}
    forward = program.methods["forward"]
    assert set(forward.delegates) == {"XnnpackBackend"}
    metadata = json.loads(program.metadata_text())
    assert metadata["format"] == "executorch" and metadata["options"]["width"] == 128
    shapes = [list(v[1]) for v in forward.inputs]
    assert shapes == [[1, 3, 96, 128], *metadata["options"]["state_shapes"]]
    assert all(v is not None and v[0] == "float32" for v in forward.inputs + forward.outputs)
    assert [list(v[1]) for v in forward.outputs][:2] == [[1, 3, 96, 128], [1, 1, 96, 128]]
    inspect_artifact(pte, "executorch")  # the good program passes


def test_damaged_headers_are_one_line(pte: Path, tmp_path: Path) -> None:
    data = pte.read_bytes()
    with pytest.raises(PteError, match="identifier"):
        read_pte(data[:4] + b"XX12" + data[8:])
    truncated = tmp_path / "truncated.pte"
    truncated.write_bytes(data[: len(data) // 3])
    refused(truncated)


def test_foreign_delegate_and_operator_are_refused(pte: Path, tmp_path: Path) -> None:
    refused(edited(pte, tmp_path, b"XnnpackBackend", b"VulkanBackend_", "vulkan.pte"), "'VulkanBackend_'")
    forward = read_pte(pte.read_bytes()).methods["forward"]
    if forward.operators:  # an operator outside the ones our programs call, renamed in place
        name = forward.operators[0].split(".")[0].encode()
        forged = name[:-1] + (b"x" if not name.endswith(b"x") else b"y")
        refused(edited(pte, tmp_path, name, forged, "operator.pte"), forged.decode())
    refused(edited(pte, tmp_path, b"forward", b"backdor", "method.pte"), "'backdor'")


def test_program_without_metadata_is_bad_input(pte: Path, tmp_path: Path) -> None:
    """The metadata method renamed: inspection refuses the unknown method; without inspection, the runner says the
    program carries no metadata."""
    from rvm_export.runtimes.executorch import ExecuTorchRunner

    bare = edited(pte, tmp_path, METADATA_METHOD.encode(), b"rvm_metadatx", "bare.pte")
    refused(bare, "'rvm_metadatx'")
    with pytest.raises(RunnerError, match="no rvm_metadata method"):
        ExecuTorchRunner.read_metadata(bare)
    result = CliRunner().invoke(verify_main, [str(bare)])
    assert result.exit_code == 2 and "rvm_metadatx" in result.output


def test_fixed_case_and_first_frame_states(pte: Path) -> None:
    from rvm_export.runtimes.executorch import ExecuTorchRunner

    runner = ExecuTorchRunner(pte)
    assert runner.fixed_case() == (128, 96, 0.25)
    assert runner.facts().fixed_size == (128, 96) and not runner.facts().ratio_input
    state = runner.initial_state(1)
    assert [list(s.shape) for s in state] == runner.metadata.options["state_shapes"]
    with pytest.raises(RunnerError, match="ratio 0.25 baked in"):
        runner.infer(state[0].new_zeros(1, 3, 96, 128).numpy(), state, 0.5)
    with pytest.raises(RunnerError, match="batch 1"):
        runner.initial_state(2)


def test_argument_of_the_wrong_kind_is_refused(pte: Path, tmp_path: Path) -> None:
    """An Int argument (the convolution's groups) retagged as a Bool: ExecuTorch's portable kernel would abort the
    process reading it (``toInt()``: found by fuzzing), so the inspector checks each call against its schema."""
    data = bytearray(pte.read_bytes())
    r = FlatbufferReader(bytes(data[: read_pte(bytes(data)).header["program_size"]]))
    (plan,) = [p for p in r.tables(r.u32(0), 1) if r.string(p, 0) == "forward"]
    values = r.tables(plan, 2)
    operators = [f"{r.string(op, 0)}.{r.string(op, 1)}" for op in r.tables(plan, 6)]
    for chain in r.tables(plan, 5):
        for instruction in r.tables(chain, 2):
            call, index_at = r.table(instruction, 1), r.field(r.table(instruction, 1), 0)
            index = r.scalar("i", index_at) if index_at else 0  # a default 0 is not stored
            if r.scalar("B", r.field(instruction, 0)) == 1 and operators[index] == "aten::convolution.out":
                groups = values[r.scalars(call, 1, "i")[8]]
                tag_at = r.field(groups, 0)
                assert data[tag_at] == 2  # Int
                data[tag_at] = 3  # Bool
    path = tmp_path / "retagged.pte"
    path.write_bytes(bytes(data))
    refused(path, "aten::convolution.out", "not its schema's")


def test_list_item_of_the_wrong_kind_is_refused(pte: Path, tmp_path: Path) -> None:
    """An IntList item (an index of an Int value) pointed at the src tensor: the runtime's ``toInt()`` would abort
    the process (fuzz input executorch:10 of the seeded program), so the reader checks every list's items."""
    data = bytearray(pte.read_bytes())
    r = FlatbufferReader(bytes(data[: read_pte(bytes(data)).header["program_size"]]))
    (plan,) = [p for p in r.tables(r.u32(0), 1) if r.string(p, 0) == "forward"]
    values = r.tables(plan, 2)
    src = r.scalars(plan, 3, "i")[0]
    int_list = next(v for v in values if r.field(v, 0) and r.scalar("B", r.field(v, 0)) == 7)
    start, length = r.vector(r.table(int_list, 1), 0, 8)
    assert length > 0
    data[start : start + 8] = src.to_bytes(8, "little")
    path = tmp_path / "list.pte"
    path.write_bytes(bytes(data))
    refused(path, "which is not of the kind the list holds")
