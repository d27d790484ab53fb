"""The master key on disk, the start-up check that it matches the data, and
re-encryption of every secret under the newest key (`infrawatch keys`).

Encrypted columns are found through their `info=ENCRYPTED` mark, so a new
domain's secrets are covered without being listed here."""

from __future__ import annotations

import base64
import os
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Column, Table, func, not_, select, update

from infrawatch.core.config import Settings
from infrawatch.core.crypto import FORMAT, DecryptionError, Keyring, SecretRef, parse_keys
from infrawatch.core.datadir import MASTER_KEY_FILE
from infrawatch.core.db import Base, Database

BATCH = 500


class KeyringMismatch(Exception):
    """Encrypted data exists that the configured master key cannot read."""


@dataclass(frozen=True)
class EncryptedColumn:
    table: Table
    column: Column[str]
    primary_key: Column[object]


def encrypted_columns() -> list[EncryptedColumn]:
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if column.info.get("encrypted"):
                (pk,) = table.primary_key.columns
                found.append(EncryptedColumn(table, column, pk))
    return found


def key_file(settings: Settings) -> Path | None:
    """Where the master key lives if InfraWatch may rewrite it: the file
    named by INFRAWATCH_MASTER_KEY_FILE, or the data dir's own. A key given
    in INFRAWATCH_MASTER_KEY itself is the operator's to change."""
    named = os.environ.get("INFRAWATCH_MASTER_KEY_FILE")
    if named:
        return Path(named)
    if os.environ.get("INFRAWATCH_MASTER_KEY"):
        return None
    path = settings.data_dir / MASTER_KEY_FILE
    return path if path.exists() else None


def load_keyring(settings: Settings) -> Keyring:
    assert settings.master_key is not None
    secret = settings.master_key.get_secret_value()
    path = key_file(settings)
    if path is not None and path.exists() and parse_keys(path.read_text()) == parse_keys(secret):
        return Keyring.from_secret(secret, source=path)
    return Keyring.from_secret(secret)


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def add_key_to_file(path: Path) -> str:
    """Put a new key first in the file, the old ones after it; the file is
    replaced whole (never half-written) and stays 0600."""
    old = [line for line in path.read_text().split() if line]
    key = new_key()
    draft = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join([key, *old]) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(draft, path)
    return key


async def key_usage(db: Database) -> Counter[str]:
    """How many ciphertexts each key id made."""
    usage: Counter[str] = Counter()
    prefix = len(FORMAT) + 2  # "v1:" then the 12-character key id
    async with db.unit_of_work(write=False) as session:
        for enc in encrypted_columns():
            kid = func.substr(enc.column, prefix, 12)
            rows = await session.execute(
                select(kid, func.count()).where(enc.column.is_not(None)).group_by(kid)
            )
            for key, count in rows.all():
                usage[str(key)] += int(count)
    return usage


async def check_keyring(db: Database, keyring: Keyring) -> None:
    """Refuse to run with a master key that cannot read the stored secrets:
    better a clear stop now than a failing notification or job later."""
    usage = await key_usage(db)
    missing = sorted(set(usage) - set(keyring.key_ids))
    if missing:
        raise KeyringMismatch(
            f"the database holds {sum(usage[k] for k in missing)} secret(s) encrypted with "
            f"key id(s) {', '.join(missing)}, but the configured master key has id(s) "
            f"{', '.join(keyring.key_ids)}. Start with the master key this database was "
            "created with (INFRAWATCH_MASTER_KEY or INFRAWATCH_MASTER_KEY_FILE, or the "
            "data dir's master.key); a key added by `infrawatch keys rotate` goes first, "
            "the old ones after it."
        )


@dataclass
class Reencryption:
    total: int = 0
    done: int = 0
    failed: list[str] = field(default_factory=list)


async def count_to_reencrypt(db: Database, keyring: Keyring) -> int:
    usage = await key_usage(db)
    return sum(n for kid, n in usage.items() if kid != keyring.primary_id)


async def reencrypt(
    db: Database, keyring: Keyring, progress: Callable[[int], None] | None = None
) -> Reencryption:
    """Every ciphertext not made by the primary key is decrypted and
    encrypted again, in small transactions. Each update is conditional on
    the old value, so a secret the running service changed meanwhile is
    left as the service wrote it."""
    report = Reencryption(total=await count_to_reencrypt(db, keyring))
    current = f"{FORMAT}:{keyring.primary_id}:%"
    for enc in encrypted_columns():
        last = None
        while True:
            query = (
                select(enc.primary_key, enc.column)
                .where(enc.column.is_not(None), not_(enc.column.like(current)))
                .order_by(enc.primary_key)
                .limit(BATCH)
            )
            if last is not None:
                query = query.where(enc.primary_key > last)
            async with db.unit_of_work() as session:
                rows = (await session.execute(query)).all()
                for row_id, token in rows:
                    ref = SecretRef(enc.table.name, enc.column.name, str(row_id))
                    try:
                        fresh = keyring.encrypt(keyring.decrypt(token, ref), ref)
                    except DecryptionError as exc:
                        report.failed.append(f"{enc.table.name}.{enc.column.name} {row_id}: {exc}")
                        continue
                    await session.execute(
                        update(enc.table)
                        .where(enc.primary_key == row_id, enc.column == token)
                        .values({enc.column.name: fresh})
                    )
                    report.done += 1
            if progress is not None and rows:
                progress(len(rows))
            if len(rows) < BATCH:
                break
            last = rows[-1][0]
    return report
