"""``rvm-verify --manifest FOLDER/manifest.json``: a release folder against its manifest, and its signature.

Every file an entry lists is there and hashes to the entry's ``sha256`` (the artifact's files, as
``make export-all`` hashed them); the metadata embedded in each artifact is the entry's ``metadata``; nothing else
is in the folder but the manifest, its signature and the ``other_files`` it lists. The signature is OpenSSF
model-signing's (the ``sign`` extra): key-based, offline, over every file of the folder but itself
(docs/release.md). Each problem is one line; :class:`CheckInputError` is bad input (exit 2).
"""

import hashlib
import json
from pathlib import Path
from typing import Iterable, List, Optional, Set

from rvm_export.contract.errors import RVMError, cli_message
from rvm_export.extras import message as extra_message
from rvm_export.targets import TARGETS, artifact_files

SIGNATURE_NAME = "manifest.json.sig"  # next to the manifest; the signature covers the folder's other files


class CheckInputError(RVMError):
    """The check cannot be done as asked: an unreadable manifest, a missing key, a missing extra (exit 2)."""


def files_sha256(files: Iterable[Path]) -> str:
    """sha256 over ``files``' bytes in order (an artifact's files, as the manifest records them)."""
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_manifest(manifest: Path) -> dict:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise CheckInputError(f"cannot read the manifest {manifest} ({reason}); pass make export-all's manifest.json")
    if not isinstance(data, dict) or not isinstance(data.get("artifacts"), list):
        raise CheckInputError(f"{manifest} is not a release manifest (no 'artifacts' list)")
    return data


def _inside(folder: Path, relative: object, where: str) -> Path:
    if not isinstance(relative, str) or not relative or Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise CheckInputError(f"the manifest's {where} names {relative!r}, not a path inside its folder")
    return folder / relative


def _embedded_metadata(path: Path, kind: str) -> Optional[dict]:
    """The artifact's own metadata document, read after its files matched the manifest, as rvm-verify reads it:
    inspected as data, then opened by its runtime in the confined child (reading a TorchScript's or a .pt2's
    metadata means loading it, and loading runs its code)."""
    from rvm_export.runtimes import open_runner

    with open_runner(path) as runner:
        metadata = runner.metadata
    return None if metadata is None else json.loads(metadata.to_json())


def check_files(manifest: Path, data: dict) -> List[str]:
    """One line per problem of the folder against the manifest; [] when it matches."""
    folder = manifest.parent
    problems: List[str] = []
    listed: Set[Path] = {manifest.resolve(), (folder / SIGNATURE_NAME).resolve()}
    for entry in data["artifacts"]:
        if not isinstance(entry, dict) or "path" not in entry:
            continue  # an export that failed lists no files
        name = entry.get("name", entry["path"])
        path = _inside(folder, entry["path"], f"entry {name!r}")
        if not path.exists():
            problems.append(f"{name}: missing: {entry['path']} is not in {folder}")
            continue
        files = artifact_files(path)
        listed |= {f.resolve() for f in files}
        if files_sha256(files) != entry.get("sha256"):
            problems.append(f"{name}: tampered: {entry['path']} does not hash to the manifest's sha256")
            continue
        kind = (entry.get("metadata") or {}).get("format")
        if kind not in TARGETS:
            problems.append(f"{name}: the manifest's metadata names no known format ({kind!r})")
            continue
        try:
            embedded = _embedded_metadata(path, kind)
        except RVMError as exc:
            raise CheckInputError(f"{name}: its metadata cannot be read here: {cli_message(exc)}")
        if embedded != entry.get("metadata"):
            fields = sorted(
                k
                for k in set(embedded or {}) | set(entry["metadata"])
                if (embedded or {}).get(k) != entry["metadata"].get(k)
            )
            problems.append(f"{name}: its embedded metadata differs from the manifest's ({', '.join(fields)})")
    for other in data.get("other_files", []):
        path = _inside(folder, other.get("path") if isinstance(other, dict) else other, "other_files")
        listed.add(path.resolve())
        if not path.is_file():
            problems.append(f"{other['path']}: missing: not in {folder}")
        elif files_sha256([path]) != other.get("sha256"):
            problems.append(f"{other['path']}: tampered: does not hash to the manifest's sha256")
    for path in sorted(folder.rglob("*")):
        if (path.is_file() or path.is_symlink()) and path.resolve() not in listed:
            problems.append(f"{path.relative_to(folder)}: extra: a file the manifest does not list")
    return problems


def _model_signing():
    try:
        from model_signing import hashing, signing, verifying
    except ImportError as exc:
        top = (exc.name or "model_signing").split(".")[0]
        raise CheckInputError(extra_message("signing", "releases", "sign", top))
    return hashing, signing, verifying


def _hashing(hashing):
    return hashing.Config().set_ignored_paths(paths=[SIGNATURE_NAME])


def require_signing_key(private_key: Path) -> None:
    """Before minutes of exporting: the extra is installed and the key is a readable PEM private key."""
    _model_signing()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(Path(private_key).read_bytes(), password=None)
    except OSError as exc:
        raise CheckInputError(f"cannot read the signing key {private_key} ({exc.strerror or type(exc).__name__})")
    except (ValueError, TypeError) as exc:
        raise CheckInputError(f"the signing key {private_key} is not an unencrypted PEM private key ({exc})")


def sign_folder(manifest: Path, private_key: Path) -> Path:
    """Sign every file of the manifest's folder (the manifest included) with ``private_key``; the signature path."""
    require_signing_key(private_key)
    hashing, signing, _ = _model_signing()
    signature = manifest.parent / SIGNATURE_NAME
    config = signing.Config().set_hashing_config(_hashing(hashing)).use_elliptic_key_signer(private_key=private_key)
    config.sign(manifest.parent, signature)
    return signature


def check_signature(manifest: Path, public_key: Path) -> Optional[str]:
    """The problem with the folder's signature under ``public_key`` (one line), or None when it verifies."""
    hashing, _, verifying = _model_signing()
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        load_pem_public_key(Path(public_key).read_bytes())
    except OSError as exc:
        raise CheckInputError(f"cannot read the public key {public_key} ({exc.strerror or type(exc).__name__})")
    except (ValueError, TypeError) as exc:
        raise CheckInputError(f"the public key {public_key} is not a PEM public key ({exc})")
    signature = manifest.parent / SIGNATURE_NAME
    if not signature.is_file():
        return f"unsigned: no {SIGNATURE_NAME} next to the manifest (make export-all SIGNING_KEY=... writes it)"
    try:
        verifying.Config().set_hashing_config(_hashing(hashing)).use_elliptic_key_verifier(
            public_key=public_key
        ).verify(manifest.parent, signature)
    except ValueError as exc:  # a key mismatch, a bad signature, an unparsable bundle (JSONDecodeError)
        text = str(exc)
        if text.startswith("Key mismatch"):
            return f"wrong key: {SIGNATURE_NAME} was not made with the private key of {public_key}"
        if text.startswith("Signature mismatch"):
            return f"signature mismatch: the folder's files are not those {SIGNATURE_NAME} signed"
        return f"bad signature: {SIGNATURE_NAME} does not verify under {public_key} ({text.splitlines()[0][:120]})"
    except Exception as exc:  # noqa: BLE001 - a damaged bundle fails in whatever layer parses it
        return f"bad signature: {SIGNATURE_NAME} is damaged ({type(exc).__name__}: {str(exc)[:120]})"
    return None


def check_release(manifest: Path, public_key: Optional[Path] = None) -> List[str]:
    """Every problem of the release at ``manifest`` (one line each), [] when it passes; raises CheckInputError."""
    manifest = Path(manifest)
    data = read_manifest(manifest)
    if public_key is not None:
        _model_signing()  # the extra before any hashing
    problems = check_files(manifest, data)
    if public_key is not None:
        problem = check_signature(manifest, Path(public_key))
        if problem and not (problems and problem.startswith("signature mismatch")):
            problems.append(problem)  # a mismatch caused by a file already named above is not said twice
    return problems
