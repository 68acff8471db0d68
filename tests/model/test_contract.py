"""The state_dict layout is a public contract: the official checkpoints must load strictly."""

import json

import pytest

from model import REFINERS, VARIANTS, MattingNetwork
from tests.helpers import SHARED

CONTRACT = SHARED / "contracts" / "official_state_dict_keys.json"


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("refiner", REFINERS)
def test_state_dict_matches_official_layout(variant: str, refiner: str) -> None:
    expected = json.loads(CONTRACT.read_text())["layouts"][f"{variant}/{refiner}"]
    got = {k: list(v.shape) for k, v in MattingNetwork(variant, refiner).state_dict().items()}
    assert list(got) == list(expected), "key names or order differ from the official checkpoint"
    assert got == expected


def test_unknown_variant_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        MattingNetwork("mobilenetv2")
