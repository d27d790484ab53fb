"""The encryption keyring: AES-GCM, every ciphertext names the key that made
it, and associated data binds it to one table, column and row, so a value
copied to another row (or column) does not decrypt."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = "v1"


class DecryptionError(Exception):
    pass


def key_from_secret(secret: str) -> bytes:
    """A master key is 32 random bytes in URL-safe base64 (what the data dir
    holds); any other string an operator chose is stretched to 32 bytes."""
    try:
        raw = base64.urlsafe_b64decode(secret.encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == 32:
        return raw
    return hashlib.sha256(secret.encode()).digest()


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"infrawatch-key-id" + key).hexdigest()[:12]


def hash_token(token: str) -> str:
    """How a bearer token is stored and looked up: SHA-256, hex. Tokens are
    32 random bytes, so a fast unsalted hash is enough (unlike passwords)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SecretRef:
    """Where a ciphertext lives; part of its associated data."""

    table: str
    column: str
    row_id: str

    def aad(self) -> bytes:
        return f"{self.table}.{self.column}.{self.row_id}".encode()


def parse_keys(secret: str) -> list[bytes]:
    """Several keys, newest first, separated by commas or newlines: rotation
    keeps the old ones readable until everything is re-encrypted."""
    return [key_from_secret(part) for part in re.split(r"[,\s]+", secret) if part]


class Keyring:
    """The first key encrypts; every key decrypts what it made.

    A keyring read from a file follows the file: `infrawatch keys rotate`
    puts a new key first in it while the service runs, and the service then
    encrypts with the new key and reads what was re-encrypted with it."""

    def __init__(self, keys: list[bytes], source: Path | None = None) -> None:
        self._install(keys)
        self.source = source
        self._source_mtime = source.stat().st_mtime_ns if source else 0
        self._checked_at = time.monotonic()

    def _install(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self._keys = {key_id(k): AESGCM(k) for k in keys}
        self.primary_id = key_id(keys[0])

    @classmethod
    def from_secret(cls, secret: str, source: Path | None = None) -> Keyring:
        return cls(parse_keys(secret), source)

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def refresh(self, *, force: bool = False) -> None:
        """Re-read the key file if it changed (looked at once a second)."""
        if self.source is None:
            return
        now = time.monotonic()
        if not force and now - self._checked_at < 1.0:
            return
        self._checked_at = now
        try:
            mtime = self.source.stat().st_mtime_ns
            if mtime != self._source_mtime:
                self._install(parse_keys(self.source.read_text()))
                self._source_mtime = mtime
        except (OSError, ValueError):
            return  # keep the keys we have; the file is being replaced

    def encrypt(self, plaintext: str, ref: SecretRef) -> str:
        self.refresh()
        nonce = os.urandom(12)
        sealed = self._keys[self.primary_id].encrypt(nonce, plaintext.encode(), ref.aad())
        body = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{FORMAT}:{self.primary_id}:{body}"

    def decrypt(self, token: str, ref: SecretRef) -> str:
        try:
            version, kid, body = token.split(":", 2)
            raw = base64.urlsafe_b64decode(body.encode())
        except (ValueError, binascii.Error) as exc:
            raise DecryptionError("not a ciphertext of this keyring") from exc
        cipher = self._keys.get(kid)
        if cipher is None:
            self.refresh(force=True)
            cipher = self._keys.get(kid)
        if version != FORMAT or cipher is None:
            raise DecryptionError(f"ciphertext made with unknown key {kid!r}")
        try:
            return cipher.decrypt(raw[:12], raw[12:], ref.aad()).decode()
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not belong here or the key is wrong") from exc
