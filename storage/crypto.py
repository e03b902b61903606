"""TokenCipher: AES-256-GCM for secrets at rest (OAuth tokens, upload sessions, bot tokens).

Envelope layout (bytes): ``0x01 | len(kid) | kid | nonce(12) | ciphertext+tag``.
The key id travels with the ciphertext, so several keys can be live during a
rotation. The associated data binds each ciphertext to its table, row and
column: a ciphertext copied to another row or column fails authentication
instead of decrypting to someone else's token.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

_VERSION = 1
_NONCE_BYTES = 12
KEY_FILE_NAME = "token-encryption.key"


class CryptoError(Exception):
    """Base for cipher errors; never carries key material or plaintext."""


class KeyConfigError(CryptoError):
    """TOKEN_ENCRYPTION_KEYS is malformed."""


class DecryptionError(CryptoError):
    """A ciphertext could not be authenticated: wrong key, wrong row, tampered, or unknown kid."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where a ciphertext lives; it becomes the AEAD associated data."""

    table: str
    row: str
    column: str

    def aad(self, kid: str) -> bytes:
        return f"socialops/v{_VERSION}/{self.table}/{self.column}/{self.row}/{kid}".encode()


class TokenCipher:
    """Encrypts with the first (primary) key; decrypts with any configured key.

    Keys are checked when the cipher is built; `cryptography` is loaded at the first
    encryption, decryption or derivation: its OpenSSL binding is 8 MiB resident, which
    a process that never touches a secret (an idle web process, bench/idle.py) never pays.
    """

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeyConfigError("at least one key is required")
        self._raw: dict[str, bytes] = {}  # never logged or returned
        for kid, key in keys:
            if not kid or len(kid.encode()) > 255 or ":" in kid or "," in kid:
                raise KeyConfigError(f"invalid key id {kid!r}")
            if len(key) != 32:
                raise KeyConfigError(f"key {kid!r} must be 32 bytes (AES-256)")
            if kid in self._raw:
                raise KeyConfigError(f"duplicate key id {kid!r}")
            self._raw[kid] = key
        self._aeads: dict[str, AESGCM] = {}
        self.primary_kid = keys[0][0]

    def __repr__(self) -> str:
        return f"TokenCipher(kids={list(self._raw)}, primary={self.primary_kid!r})"

    @property
    def key_ids(self) -> list[str]:
        return list(self._raw)

    def _aead(self, kid: str) -> AESGCM:
        aead = self._aeads.get(kid)
        if aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            aead = self._aeads[kid] = AESGCM(self._raw[kid])
        return aead

    def encrypt(self, plaintext: bytes, where: Location) -> bytes:
        kid = self.primary_kid
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead(kid).encrypt(nonce, plaintext, where.aad(kid))
        kid_bytes = kid.encode()
        return bytes([_VERSION, len(kid_bytes)]) + kid_bytes + nonce + sealed

    def decrypt(self, envelope: bytes, where: Location) -> bytes:
        from cryptography.exceptions import InvalidTag

        kid = envelope_kid(envelope)
        if kid not in self._raw:
            raise DecryptionError(f"no key with id {kid!r} is configured")
        start = 2 + len(kid.encode())
        nonce = envelope[start : start + _NONCE_BYTES]
        try:
            return self._aead(kid).decrypt(nonce, envelope[start + _NONCE_BYTES :], where.aad(kid))
        except InvalidTag:
            raise DecryptionError("ciphertext failed authentication") from None

    def encrypt_str(self, plaintext: str, where: Location) -> bytes:
        return self.encrypt(plaintext.encode(), where)

    def decrypt_str(self, envelope: bytes, where: Location) -> str:
        try:
            return self.decrypt(envelope, where).decode()
        except UnicodeDecodeError:
            raise DecryptionError("plaintext is not text") from None

    def derive_key(self, purpose: str, kid: str | None = None) -> tuple[str, bytes]:
        """A 32-byte subkey for `purpose` (HKDF-SHA256) from key `kid` (default: primary).

        Lets other secrets (signed media URLs) ride on TOKEN_ENCRYPTION_KEYS and its
        rotation without ever using an encryption key for a second job directly.
        KeyError if `kid` is not configured.
        """
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        kid = kid or self.primary_kid
        hkdf = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"socialops/{purpose}".encode()
        )
        return kid, hkdf.derive(self._raw[kid])


def envelope_kid(envelope: bytes) -> str:
    """The key id recorded in an envelope; DecryptionError if it is not one of ours."""
    if len(envelope) < 2 or envelope[0] != _VERSION:
        raise DecryptionError("unknown envelope format")
    end = 2 + envelope[1]
    if len(envelope) < end + _NONCE_BYTES + 16:
        raise DecryptionError("envelope is truncated")
    try:
        return envelope[2:end].decode()
    except UnicodeDecodeError:
        raise DecryptionError("envelope key id is not text") from None


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    """Parse `kid:base64key,kid2:base64key2` (first one encrypts)."""
    keys: list[tuple[str, bytes]] = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        kid, sep, b64 = item.partition(":")
        if not sep:
            raise KeyConfigError("each key must be written kid:base64key")
        try:
            key = base64.b64decode(b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KeyConfigError(f"key {kid.strip()!r} is not valid base64") from None
        keys.append((kid.strip(), key))
    if not keys:
        raise KeyConfigError("TOKEN_ENCRYPTION_KEYS is empty")
    return keys


def generate_key_spec(kid: str | None = None) -> str:
    """A fresh `kid:base64key` entry for TOKEN_ENCRYPTION_KEYS."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kid = kid or f"k{secrets.token_hex(4)}"
    return f"{kid}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


def load_or_create_local_keys(data_dir: Path) -> list[tuple[str, bytes]]:
    """For local use only: a key generated once into a 0600 file in the data directory."""
    path = data_dir / KEY_FILE_NAME
    if not path.exists() and _publish_new_key(path):
        log.warning(
            "TOKEN_ENCRYPTION_KEYS is not set: generated a local key file. "
            "This is for local use only; set TOKEN_ENCRYPTION_KEYS in production.",
            extra={"path": str(path)},
        )
    else:
        log.warning(
            "TOKEN_ENCRYPTION_KEYS is not set: using the local key file (local use only)",
            extra={"path": str(path)},
        )
    return parse_keys(path.read_text(encoding="utf-8"))


def _publish_new_key(path: Path) -> bool:
    """Write a new key file next to `path`, then hard-link it into place.

    Several processes may start on a fresh data dir at once: the link is atomic, so
    `path` appears complete or not at all, and whoever loses the race (False) reads
    the winner's key instead of failing or reading a half-written file.
    """
    spec = generate_key_spec("local1")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(spec + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True
