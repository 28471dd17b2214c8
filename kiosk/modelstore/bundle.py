"""Signed model bundles: how a model travels from the maintainer to a kiosk.

A bundle is a tar file holding a model directory (its ``manifest.json`` lists every file with its sha256)
plus ``manifest.sig``: an ed25519 signature over the exact bytes of ``manifest.json``. Signing the manifest
signs every file through its hash. The kiosk trusts only the public keys in its trusted-keys directory.

A bundle holds exactly ``manifest.json``, ``manifest.sig`` and the files the manifest lists, each once, as
regular files under plain relative names: a link, a device, an absolute or ``..`` name, a duplicate or any
file the signed manifest does not list makes the whole bundle refused. Nothing unsigned reaches a kiosk.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import shutil
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.modelstore.manifest import MANIFEST, Manifest, ModelError, load_manifest, plain_relative

logger = logging.getLogger(__name__)

SIGNATURE = "manifest.sig"
MAX_MEMBERS = 10_000


class BundleError(ModelError):
    """A bundle is malformed, unsigned, signed by an unknown key, or its files do not match."""


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key(directory: Path, name: str, passphrase: bytes | None = None) -> tuple[Path, Path]:
    """A new maintainer key pair: ``<name>.key`` (private, mode 600) and ``<name>.pub``.

    With a passphrase the private key is encrypted (PKCS#8, the best scheme ``cryptography`` offers), so a
    copy of the file (a backup, a laptop left open) cannot sign a bundle every kiosk would install.
    """
    directory.mkdir(parents=True, exist_ok=True)
    private_key = Ed25519PrivateKey.generate()
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    if private_path.exists():
        raise FileExistsError(f"{private_path} exists; refusing to overwrite a signing key")
    encryption = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    private_path.touch(mode=0o600)
    private_path.write_bytes(
        private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    public_path.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def key_is_encrypted(path: Path) -> bool:
    return b"ENCRYPTED PRIVATE KEY" in Path(path).read_bytes()[:64]


def load_private_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """The maintainer's signing key; a passphrase-protected one needs ``passphrase``."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=passphrase)
    except TypeError:  # encrypted without a passphrase, or a passphrase for a plain key
        needs = "needs its passphrase" if key_is_encrypted(path) else "is not passphrase-protected"
        raise BundleError(f"{path} {needs}") from None
    except ValueError:
        raise BundleError(f"{path}: wrong passphrase, or not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path} is not an ed25519 private key")
    if passphrase is None:
        logger.warning("%s is not passphrase-protected: anyone with a copy can sign models", path)
    return key


def trusted_keys(directory: Path) -> dict[str, Ed25519PublicKey]:
    """Key id → public key for every ``*.pub`` in ``directory``."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in sorted(Path(directory).glob("*.pub")) if Path(directory).is_dir() else []:
        key = serialization.load_pem_public_key(path.read_bytes())
        if isinstance(key, Ed25519PublicKey):
            keys[key_id(key)] = key
        else:
            logger.warning("%s is not an ed25519 public key; ignored", path)
    return keys


def signature_for(manifest_bytes: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """The contents of ``manifest.sig`` for these exact manifest bytes."""
    signature = {
        "key_id": key_id(private_key.public_key()),
        "algorithm": "ed25519",
        "signature": base64.b64encode(private_key.sign(manifest_bytes)).decode(),
    }
    return (json.dumps(signature, indent=1) + "\n").encode()


def verify_signature(model_dir: Path, keys: dict[str, Ed25519PublicKey]) -> str:
    """Check ``manifest.sig`` against the trusted keys; return the signer's key id."""
    path = Path(model_dir) / SIGNATURE
    if not path.is_file():
        raise BundleError("bundle is not signed (manifest.sig is missing)")
    try:
        signature = json.loads(path.read_text())
        signer, raw = signature["key_id"], base64.b64decode(signature["signature"], validate=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"manifest.sig is malformed: {exc}") from None
    if signer not in keys:
        raise BundleError(f"bundle is signed by key {signer}, which this kiosk does not trust")
    try:
        keys[signer].verify(raw, (Path(model_dir) / MANIFEST).read_bytes())
    except InvalidSignature:
        raise BundleError(f"bad signature: manifest.json does not match the signature of key {signer}") from None
    return signer


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: Manifest


def build_bundle(model_dir: Path, private_key: Ed25519PrivateKey, out: Path) -> Bundle:
    """Verify ``model_dir`` against its manifest, sign it and pack manifest, signature and files into ``out``."""
    manifest = load_manifest(model_dir)  # refuses a directory whose files do not match
    signature = signature_for((Path(model_dir) / MANIFEST).read_bytes(), private_key)
    members = [MANIFEST, *(f.path for f in manifest.files)]
    if (Path(model_dir) / "MODEL_CARD.md").is_file() and "MODEL_CARD.md" not in members:
        logger.info("MODEL_CARD.md stays behind: a bundle carries only the files its manifest lists")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w") as tar:
        for member in members:
            tar.add(Path(model_dir) / member, arcname=member, recursive=False)
        info = tarfile.TarInfo(SIGNATURE)
        info.size, info.mtime, info.mode = len(signature), int(time.time()), 0o644
        tar.addfile(info, io.BytesIO(signature))
    logger.info(
        "bundle %s %s: %d files, %.1f MB", manifest.name, manifest.version, len(members), out.stat().st_size / 1e6
    )
    return Bundle(out, manifest)


def check_members(members: list[tarfile.TarInfo]) -> None:
    """Regular files only, under plain relative names, each once; raise ``BundleError`` otherwise."""
    if len(members) > MAX_MEMBERS:
        raise BundleError(f"bundle holds {len(members)} members, more than {MAX_MEMBERS}")
    seen: set[str] = set()
    for member in members:
        name = member.name[:200]
        if not member.isfile():
            kind = "link" if member.issym() or member.islnk() else "directory" if member.isdir() else "special file"
            raise BundleError(f"bundle member {name!r} is a {kind}: a bundle holds regular files only")
        if not plain_relative(member.name):
            raise BundleError(f"bundle member {name!r} is not a plain relative path")
        if member.name in seen:
            raise BundleError(f"bundle holds {name!r} twice")
        seen.add(member.name)


def unpack(bundle_path: Path, into: Path) -> None:
    """Check every member first, then write each (a regular file under a plain relative name) ourselves.

    Not ``extractall``: its ``data`` filter is missing from Debian 12's Python (3.11.2), the kiosk's own, and
    the members are already known to be plain files; each is written with mode 644, nothing of the archive's
    owner, mode or time is kept, and ``O_EXCL`` refuses to write through anything already there.
    """
    try:
        with tarfile.open(bundle_path) as tar:
            members = tar.getmembers()
            check_members(members)
            for member in members:
                target = Path(into) / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    raise BundleError(f"bundle member {member.name[:200]!r} has no data")
                descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                with source, os.fdopen(descriptor, "wb") as handle:
                    shutil.copyfileobj(source, handle)
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"cannot unpack {Path(bundle_path).name}: {exc}") from None


def check_only_listed(model_dir: Path, manifest: Manifest) -> None:
    """Every file in the unpacked bundle is the manifest, its signature or a listed file; no links."""
    listed = {MANIFEST, SIGNATURE, *(f.path for f in manifest.files)}
    folders = {str(parent) for name in listed for parent in Path(name).parents if str(parent) != "."}
    for root, dirs, files in os.walk(model_dir):
        for entry in [*dirs, *files]:
            path = Path(root) / entry
            name = path.relative_to(model_dir).as_posix()
            if path.is_symlink():
                raise BundleError(f"bundle holds a link {name[:200]!r}")
            if name not in (folders if path.is_dir() else listed):
                raise BundleError(f"bundle holds {name[:200]!r}, which its signed manifest does not list")


def verify_unpacked(model_dir: Path, keys: dict[str, Ed25519PublicKey]) -> Manifest:
    """Signature first (so an attacker's manifest is never parsed as trusted), then that the bundle holds
    nothing the manifest does not list, then every file's hash."""
    signer = verify_signature(model_dir, keys)
    check_only_listed(model_dir, load_manifest(model_dir, verify=False))
    manifest = load_manifest(model_dir, verify=True)
    logger.info("bundle %s %s verified (signed by %s)", manifest.name, manifest.version, signer)
    return manifest
