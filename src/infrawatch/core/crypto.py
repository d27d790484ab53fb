"""The encryption keyring: AES-GCM, every ciphertext names the key that made
it, and associated data binds it to one table, column and row, so a value
copied to another row (or column) does not decrypt."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

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


@dataclass(frozen=True)
class SecretRef:
    """Where a ciphertext lives; part of its associated data."""

    table: str
    column: str
    row_id: str

    def aad(self) -> bytes:
        return f"{self.table}.{self.column}.{self.row_id}".encode()


class Keyring:
    """The first key encrypts; every key decrypts what it made."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self._keys = {key_id(k): AESGCM(k) for k in keys}
        self.primary_id = key_id(keys[0])

    @classmethod
    def from_secret(cls, secret: str) -> Keyring:
        # Several keys, newest first, separated by commas: rotation keeps the
        # old ones readable until everything is re-encrypted.
        return cls([key_from_secret(part.strip()) for part in secret.split(",") if part.strip()])

    def encrypt(self, plaintext: str, ref: SecretRef) -> str:
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
        if version != FORMAT or cipher is None:
            raise DecryptionError(f"ciphertext made with unknown key {kid!r}")
        try:
            return cipher.decrypt(raw[:12], raw[12:], ref.aad()).decode()
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not belong here or the key is wrong") from exc

    def key_id_of(self, token: str) -> str:
        return token.split(":", 2)[1] if token.count(":") >= 2 else ""
