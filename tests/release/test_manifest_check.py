"""rvm-verify --manifest (issue 29 item 3): a release folder against its manifest and its model-signing
signature. One tiny release (one fp32 TorchScript artifact, as tests/release/test_release.py makes it) is exported
and signed once; each case copies it and breaks one thing: one line, exit 1 (the folder fails) or 2 (bad input)."""

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Iterator, Tuple

import pytest
from click.testing import CliRunner

from rvm_export import extras, targets
from rvm_export import release as pipeline
from rvm_export.verify import harness
from rvm_export.verify.cli import main as verify_main
from rvm_export.verify.release_check import SIGNATURE_NAME
from tests.helpers import require
from tests.release.test_release import export_all

require("model_signing")
from cryptography.hazmat.primitives import serialization  # noqa: E402 (the sign extra installs it)
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402


def key_pair(folder: Path, name: str) -> Tuple[Path, Path]:
    """An EC P-256 key pair in PEM: (private, public)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


@pytest.fixture(scope="module")
def signed_release(tmp_path_factory: pytest.TempPathFactory, weights_path: Path) -> Iterator[Tuple[Path, Path]]:
    """(release folder, keys folder): one signed fp32 TorchScript release, exported once for the module."""
    root = tmp_path_factory.mktemp("signed")
    keys = root / "keys"
    keys.mkdir()
    private, _ = key_pair(keys, "release")
    key_pair(keys, "other")
    with pytest.MonkeyPatch.context() as mp:
        spec = dataclasses.replace(
            targets.TARGETS["torchscript"], release=lambda v: [((), {})], artifact_name=lambda v: f"{v}.torchscript"
        )  # as test_release.py's one_job: one fp32 TorchScript job, verified on one small case
        mp.setattr(pipeline, "TARGETS", {"torchscript": spec})
        mp.setattr(harness, "DEFAULT_CASES", ((64, 48, 1, 0.5),))
        mp.setattr(pipeline, "find_checkpoints", lambda *a: {"mobilenetv3": weights_path})
        result, manifest = export_all(root / "release", "--signing-key", str(private))
    assert result.exit_code == 0, result.output
    assert {f["path"] for f in manifest["other_files"]} == {"junit.xml"}
    assert (root / "release" / SIGNATURE_NAME).is_file()
    yield root / "release", keys


@pytest.fixture
def folder(signed_release: Tuple[Path, Path], tmp_path: Path) -> Path:
    shutil.copytree(signed_release[0], tmp_path / "release")
    return tmp_path / "release"


def check(folder: Path, *args: str):
    return CliRunner().invoke(verify_main, ["--manifest", str(folder / "manifest.json"), *args])


def one_line(result, code: int, text: str) -> None:
    lines = [line for line in result.output.splitlines() if line]
    assert result.exit_code == code and len(lines) == 1 and text in lines[0], (result.exit_code, result.output)


def test_a_good_folder_passes_with_and_without_its_signature(folder: Path, signed_release) -> None:
    keys = signed_release[1]
    one_line(check(folder, "--public-key", str(keys / "release.pub")), 0, "signature verified")
    one_line(check(folder), 0, "signature not checked")
    (folder / SIGNATURE_NAME).unlink()  # an unsigned release: its files still check
    one_line(check(folder), 0, "none extra")
    one_line(check(folder, "--public-key", str(keys / "release.pub")), 1, "unsigned")


@pytest.mark.parametrize(
    "damage, text",
    [
        (lambda f: (f / "mobilenetv3.torchscript").write_bytes(b"tampered"), "tampered"),
        (lambda f: (f / "mobilenetv3.torchscript").unlink(), "missing"),
        (lambda f: (f / "extra.onnx").write_bytes(b"added"), "extra"),
        (lambda f: (f / "junit.xml").write_text("<testsuites/>"), "junit.xml: tampered"),
    ],
    ids=["tampered", "missing", "extra", "tampered-report"],
)
def test_a_damaged_folder_fails_in_one_line(folder: Path, signed_release, damage, text: str) -> None:
    damage(folder)
    one_line(check(folder), 1, text)
    one_line(check(folder, "--public-key", str(signed_release[1] / "release.pub")), 1, text)  # said once


def test_metadata_that_differs_from_the_manifest_fails(folder: Path) -> None:
    """The artifact's hash is rewritten to match, but its embedded metadata is not the entry's."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["artifacts"][0]["metadata"]["precision"] = "fp16"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    one_line(check(folder), 1, "embedded metadata differs from the manifest's (precision)")


def test_a_wrong_key_or_a_corrupted_signature_fails(folder: Path, signed_release) -> None:
    keys = signed_release[1]
    one_line(check(folder, "--public-key", str(keys / "other.pub")), 1, "wrong key")
    signature = folder / SIGNATURE_NAME
    text = signature.read_text()
    marker = '"sig":"' if '"sig":"' in text else '"signature":"'
    start = text.index(marker) + len(marker)
    flipped = "B" if text[start + 8] != "B" else "C"
    signature.write_text(text[: start + 8] + flipped + text[start + 9 :])
    one_line(check(folder, "--public-key", str(keys / "release.pub")), 1, "signature")
    signature.write_text(text[: len(text) // 2])  # cut short: no longer a bundle
    one_line(check(folder, "--public-key", str(keys / "release.pub")), 1, "bad signature")
    signature.write_text(text)
    (folder / "manifest.json").write_text((folder / "manifest.json").read_text() + " ")  # consistent but re-made
    one_line(check(folder, "--public-key", str(keys / "release.pub")), 1, "signature mismatch")


def test_bad_input_is_exit_2(folder: Path, signed_release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one_line(check(folder, "--public-key", str(tmp_path / "absent.pub")), 2, "cannot read the public key")
    (tmp_path / "junk.pub").write_text("not a key")
    one_line(check(folder, "--public-key", str(tmp_path / "junk.pub")), 2, "not a PEM public key")
    (folder / "manifest.json").write_text("{not json")
    one_line(check(folder), 2, "cannot read the manifest")
    one_line(check(tmp_path / "nowhere"), 2, "cannot read the manifest")
    result = CliRunner().invoke(pipeline.main, ["--out", str(tmp_path / "o"), "--signing-key", str(tmp_path / "a.pem")])
    one_line(result, 2, "cannot read the signing key")


def test_without_the_extra_signing_is_one_line_naming_it(
    folder: Path, signed_release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_model_signing(name, *args, **kwargs):
        if name.split(".")[0] == "model_signing":
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_model_signing)
    one_line(check(folder, "--public-key", str(signed_release[1] / "release.pub")), 2, "pip install 'rvm-export[sign]'")
    result = CliRunner().invoke(
        pipeline.main, ["--out", str(tmp_path / "o"), "--signing-key", str(signed_release[1] / "release.pem")]
    )
    one_line(result, 2, "needs the sign extra")
    assert "sign" in extras.EXTRA_MODULES
