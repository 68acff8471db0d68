"""LiteRT (.tflite) specifics: TFLite builtin ops only and the contract's signature. (Passing at several frame
sizes, broken artifacts and the doc snippet: tests/test_conformance.py.)"""

from tests.helpers import ArtifactCache, require

require("ai_edge_litert")
require("tensorflow")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402


def test_only_builtin_ops_and_the_contract_signature(artifacts: ArtifactCache) -> None:
    interpreter = Interpreter(model_path=str(artifacts.export("tflite", "rvm_mobilenetv3_fp32.tflite")))
    signature = interpreter.get_signature_list()["serving_default"]
    assert sorted(signature["inputs"]) == ["downsample_ratio", "r1i", "r2i", "r3i", "r4i", "src"]
    assert sorted(signature["outputs"]) == ["fgr", "pha", "r1o", "r2o", "r3o", "r4o"]
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(name.startswith("Flex") for name in ops), ops
