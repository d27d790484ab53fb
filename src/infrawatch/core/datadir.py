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
    # Written whole to a private file, then linked into place: link() fails
    # if the name exists, so of two processes starting at once one key wins,
    # and neither can read the other's half-written file.
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.urlsafe_b64encode(make).decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process published its key first: use that one
    finally:
        draft.unlink()
    return path.read_text().strip()


class DataDirMissing(Exception):
    """A command (not `serve`) found no installation where it looked."""


def prepare_data_dir(settings: Settings, *, create: bool = True) -> Settings:
    """Create the data dir and fill in secrets the operator did not provide.

    `create=False` (every command but `serve` and `worker`): use what is
    there and make nothing. A command run in another directory would
    otherwise start a second, empty installation and put its users and
    servers there."""
    if not create:
        _require_installation(settings)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(settings.data_dir, 0o700)
    updates: dict[str, str] = {}
    session_file = settings.data_dir / SESSION_SECRET_FILE
    if settings.session_secret is None and (create or session_file.exists()):
        updates["session_secret"] = _read_or_create_secret(session_file, secrets.token_bytes(32))
    if settings.master_key is None:
        updates["master_key"] = _read_or_create_secret(
            settings.data_dir / MASTER_KEY_FILE, secrets.token_bytes(32)
        )
    if not updates:
        return settings
    return settings.model_copy(update={k: SecretStr(v) for k, v in updates.items()})


def _require_installation(settings: Settings) -> None:
    where = settings.data_dir.resolve()
    missing: str | None = None
    database = settings.sqlite_path
    if database is not None and not database.exists():
        missing = f"no InfraWatch database at {database}"
    elif settings.master_key is None and not (where / MASTER_KEY_FILE).exists():
        missing = f"no master key in {where} (and INFRAWATCH_MASTER_KEY is not set)"
    if missing is None:
        return
    raise DataDirMissing(
        f"{missing}.\n"
        "  The data directory is INFRAWATCH_DATA_DIR, or ./infrawatch-data in the current "
        "directory.\n"
        "  Run this where `infrawatch serve` runs, or point at its data directory:\n"
        f"    INFRAWATCH_DATA_DIR=/path/to/infrawatch-data infrawatch {' '.join(_argv())}\n"
        "  A new installation starts with `infrawatch serve`, which creates it."
    )


def _argv() -> list[str]:
    import shlex
    import sys

    return [shlex.quote(a) for a in sys.argv[1:]]
