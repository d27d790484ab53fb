"""The data directory and the secrets that must exist before the first request."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from infrawatch.core.config import Settings

SESSION_SECRET_FILE = "session.key"  # noqa: S105 (a file name)
MASTER_KEY_FILE = "master.key"


def _read_or_create_secret(path: Path, make: bytes) -> str:
    if path.exists():
        return path.read_text().strip()
    # O_EXCL: two processes starting at once must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.urlsafe_b64encode(make).decode() + "\n")
    return path.read_text().strip()


def prepare_data_dir(settings: Settings) -> Settings:
    """Create the data dir and fill in secrets the operator did not provide."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    updates: dict[str, str] = {}
    if settings.session_secret is None:
        updates["session_secret"] = _read_or_create_secret(
            settings.data_dir / SESSION_SECRET_FILE, secrets.token_bytes(32)
        )
    if settings.master_key is None:
        updates["master_key"] = _read_or_create_secret(
            settings.data_dir / MASTER_KEY_FILE, secrets.token_bytes(32)
        )
    if not updates:
        return settings
    return settings.model_copy(update={k: SecretStr(v) for k, v in updates.items()})
