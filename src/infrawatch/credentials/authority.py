"""The vault as an SSH certificate authority: short-lived login certificates."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.context import OperationContext
from infrawatch.core.crypto import Keyring
from infrawatch.core.errors import Conflict, InvalidInput
from infrawatch.credentials import ssh
from infrawatch.credentials.keys import private_key_of, require_key
from infrawatch.credentials.models import (
    SshKey,
)
from infrawatch.credentials.schemas import (
    CertificateOut,
    CertificateRequest,
)


async def sign_certificate(
    session: AsyncSession,
    ctx: OperationContext,
    ca_id: uuid.UUID,
    body: CertificateRequest,
    keyring: Keyring,
) -> CertificateOut:
    ca = await require_key(session, ca_id)
    if ca.purpose != "ca" or ca.status != "active":
        raise Conflict("this key is not an active certificate authority (purpose: ca)")
    if (body.key_id is None) == (body.public_key is None):
        raise InvalidInput("give either key_id or public_key", loc=("body", "key_id"))
    if body.key_id is not None:
        subject = await require_key(session, body.key_id)
        public, label = subject.public_key, f"infrawatch:{subject.name}"
    else:
        public, label = str(body.public_key), f"infrawatch:{ctx.actor.username}"
    try:
        cert = ssh.sign_user_key(
            private_key_of(ca, keyring),
            public,
            label,
            list(body.principals),
            body.valid_seconds,
            secrets.randbits(63),
        )
    except ssh.KeyError_ as exc:
        raise InvalidInput(str(exc), loc=("body", exc.field)) from None
    ca.last_used_at = utcnow()
    out = CertificateOut(
        ca_id=ca.id,
        certificate=cert.openssh,
        serial=cert.serial,
        principals=list(body.principals),
        valid_after=datetime.fromtimestamp(cert.valid_after, UTC),
        valid_before=datetime.fromtimestamp(cert.valid_before, UTC),
    )
    await audit.record(
        session,
        ctx,
        audit.Change(
            "ssh_ca.sign",
            "ssh_key",
            ca.id,
            after={
                "serial": cert.serial,
                "principals": out.principals,
                "key": label,
                "valid_before": out.valid_before.isoformat(),
            },
        ),
    )
    return out


def login_certificate(ca: SshKey, key: SshKey, username: str, keyring: Keyring) -> str:
    """A five-minute certificate for one connection of a job."""
    return ssh.sign_user_key(
        private_key_of(ca, keyring),
        key.public_key,
        f"infrawatch:{key.name}",
        [username],
        300,
        secrets.randbits(63),
    ).openssh
