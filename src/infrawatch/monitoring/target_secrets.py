"""Passwords in monitor targets (`https://user:pass@host/`).

The password is kept apart from the URL, encrypted like a channel URL; the
`target` everyone sees (API, console, alerts, webhooks, metrics, audit)
carries `***` in its place. Only the probe gets the URL back whole. Done on
the text as written, so the user's URL is not renormalized (no dropped
default port, no re-encoded path)."""

from __future__ import annotations

import re

from infrawatch.core.crypto import Keyring, SecretRef
from infrawatch.core.redaction import MASK

__all__ = ["MASK", "reveal", "secret_ref", "split_password", "with_password"]

_USERINFO = re.compile(
    r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/?#\s]*):(?P<password>[^@/?#\s]*)@"
)


def split_password(target: str) -> tuple[str, str | None]:
    """(the target with the password masked, the password) — the password
    None when there is none."""
    match = _USERINFO.match(target)
    if match is None or not match["password"]:
        return target, None
    return f"{match['head']}:{MASK}@{target[match.end() :]}", match["password"]


def with_password(masked: str, password: str | None) -> str:
    """The URL to connect to: the masked target with its password put back."""
    if password is None:
        return masked
    match = _USERINFO.match(masked)
    if match is None:
        return masked
    return f"{match['head']}:{password}@{masked[match.end() :]}"


def secret_ref(monitor_id: str) -> SecretRef:
    return SecretRef("monitors", "target_secret_encrypted", monitor_id)


def reveal(ciphertext: str, monitor_id: str, keyring: Keyring) -> str:
    return keyring.decrypt(ciphertext, secret_ref(monitor_id))
