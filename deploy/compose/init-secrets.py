"""Generate the compose cluster's secrets once, into the `secrets` volume.

Run by the `secrets` service before anything else starts; a second run
keeps what exists (a restart must not change the database password or the
master key, which would lock InfraWatch out of its own encrypted data)."""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

SERVICE_UID = 10001  # the image's infrawatch user
folder = Path(sys.argv[1])


def keep_or_make(name: str, make: str | None = None) -> str:
    path = folder / name
    if path.exists():
        return path.read_text().strip()
    value = make if make is not None else secrets.token_urlsafe(32)
    path.write_text(value + "\n")
    # Readable by the services that mount the volume read-only (postgres,
    # grafana and infrawatch run as different users); nothing else has it.
    path.chmod(0o444)
    os.chown(path, SERVICE_UID, 0)
    print(f"generated {name}")
    return value


folder.mkdir(parents=True, exist_ok=True)
password = keep_or_make("postgres_password")
keep_or_make("database_url", f"postgresql+asyncpg://infrawatch:{password}@postgres:5432/infrawatch")
keep_or_make("master_key", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
keep_or_make("session_secret")
keep_or_make("grafana_admin_password")
