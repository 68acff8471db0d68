"""The metadata document an artifact embeds is checked on reading: a forged or damaged one (a precision the
verifier has no tolerance for, a field of the wrong type) is one line and exit 2, never a traceback later on."""

import json
import shutil
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from model.network import REFINERS, VARIANTS
from rvm_export.contract import metadata as document_rules
from rvm_export.contract.metadata import METADATA_KEY, PRECISIONS, ArtifactMetadata
from rvm_export.verify.cli import main as verify_main
from rvm_export.verify.tolerances import TOLERANCES

GOOD = ArtifactMetadata("onnx", "mobilenetv3", "fast_guided_filter", "fp32", "w.pth", "ab" * 32)


def test_known_values_are_the_models_and_the_tolerances() -> None:
    assert set(VARIANTS) == set(document_rules.VARIANTS)
    assert set(REFINERS) == set(document_rules.REFINERS)
    assert set(PRECISIONS) == set(TOLERANCES), "every precision a document may name has a tolerance"


def test_a_good_document_reads_back() -> None:
    assert ArtifactMetadata.from_json(GOOD.to_json()) == GOOD


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"precision": "fp99"}, 'precision is "fp99", not one of'),  # the fuzzer's KeyError case
        ({"precision": 16}, "precision is 16"),
        ({"variant": "vgg"}, 'variant is "vgg"'),
        ({"refiner": None}, "refiner is null"),
        ({"layout": "CHWN"}, 'layout is "CHWN"'),
        ({"options": []}, "options is list, of the wrong type"),
        ({"seed": True, "checkpoint_sha256": None}, "seed is true"),
        ({"checkpoint_sha256": None, "seed": None}, "neither a checkpoint_sha256 nor a seed"),
        ({"precision": ...}, "lacks precision"),
    ],
)
def test_a_forged_field_is_refused_naming_it(edit: dict, message: str) -> None:
    document = json.loads(GOOD.to_json())
    for key, value in edit.items():
        if value is ...:
            del document[key]
        else:
            document[key] = value
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ArtifactMetadata.from_json(json.dumps(document))


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="JSON list, not an object"):
        ArtifactMetadata.from_json("[1, 2]")


def test_rvm_verify_refuses_a_forged_precision_in_one_line(artifacts, tmp_path: Path) -> None:
    good = artifacts.onnx()
    model = onnx.load(str(good))
    (entry,) = [p for p in model.metadata_props if p.key == METADATA_KEY]
    document = json.loads(entry.value)
    document["precision"] = "fp99"
    entry.value = json.dumps(document)
    forged = tmp_path / "forged.onnx"
    onnx.save(model, str(forged))

    result = CliRunner().invoke(verify_main, [str(forged), "--frames", "2", "--size", "64x48"])
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.stderr.splitlines() if "error" in line]
    assert line.startswith("rvm-verify: error:") and "precision" in line and "fp99" in line, line
    assert not isinstance(result.exception, KeyError)

    shutil.copy(good, tmp_path / "good.onnx")  # the same file with its own document verifies
    result = CliRunner().invoke(verify_main, [str(tmp_path / "good.onnx"), "--frames", "2", "--size", "64x48"])
    assert result.exit_code == 0, result.output
