"""The deployment's Ed25519 key, which signs unlearning certificates.

The key is made on first use in ``certificate.key_dir`` (by default ``~/.config/fedunlearn``, outside every run
directory; ``FEDUNLEARN_KEY_DIR`` moves it): ``signing-key.pem`` (mode 0600, the folder 0700) and
``signing-key.pub.pem``, the public key to hand to whoever verifies (``fedunlearn-verify --public-key``). A signature
shows that the holder of that key issued the certificate as it is; it does not show that what the key holder did
was honest (a server that lies while training signs its lies too).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PRIVATE, PUBLIC = "signing-key.pem", "signing-key.pub.pem"


def load_or_create(key_dir: Path) -> Ed25519PrivateKey:
    """The deployment's private key in ``key_dir``, made (0600, in a 0700 folder) if there is none; a key file
    that others can read is refused (PermissionError naming it)."""
    key_dir = Path(key_dir).expanduser()
    path = key_dir / PRIVATE
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise PermissionError(f"{path} can be read by other users: chmod 600 {path}")
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        return key
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    (key_dir / PUBLIC).write_text(public_pem(key.public_key()))
    return key


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def fingerprint(pem: str) -> str:
    """A short name for a public key: SHA-256 of its PEM text, first 16 hex digits."""
    return hashlib.sha256(pem.strip().encode()).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, payload: bytes) -> str:
    return base64.b64encode(key.sign(payload)).decode()


def verify(pem: str, payload: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64) is the key's signature of ``payload``."""
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(base64.b64decode(signature), payload)
    except (InvalidSignature, ValueError):
        return False
    return True
