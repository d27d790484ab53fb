"""Notification channels: Apprise URLs and signed webhooks, stored encrypted."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting import repository, rows
from infrawatch.alerting.models import (
    NotificationChannel,
)
from infrawatch.alerting.schemas import (
    ChannelCreate,
    ChannelOut,
    ChannelTestResult,
    ChannelUpdate,
)
from infrawatch.alerting.senders import (
    DeliveryError,
    Message,
    Target,
    apprise_supports,
    send,
    url_hint,
)
from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import Versioned, bump_version, check_if_match
from infrawatch.core.context import OperationContext
from infrawatch.core.crypto import Keyring, SecretRef
from infrawatch.core.errors import InvalidInput


def _url_ref(channel_id: uuid.UUID) -> SecretRef:
    return SecretRef("notification_channels", "url_encrypted", str(channel_id))


def _secret_ref(channel_id: uuid.UUID) -> SecretRef:
    return SecretRef("notification_channels", "secret_encrypted", str(channel_id))


def channel_target(channel: NotificationChannel, keyring: Keyring) -> Target:
    secret = None
    if channel.secret_encrypted is not None:
        secret = keyring.decrypt(channel.secret_encrypted, _secret_ref(channel.id))
    return Target(
        channel.kind, keyring.decrypt(channel.url_encrypted, _url_ref(channel.id)), secret
    )


def channel_out(channel: NotificationChannel) -> ChannelOut:
    return ChannelOut(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        url_hint=channel.url_hint,
        has_secret=channel.secret_encrypted is not None,
        enabled=channel.enabled,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def _check_url(kind: str, url: str) -> None:
    if kind == "webhook":
        if not url.startswith(("http://", "https://")):
            raise InvalidInput("a webhook URL starts with http:// or https://", loc=("body", "url"))
    elif not apprise_supports(url):
        raise InvalidInput(
            "Apprise does not recognise this URL; see the Apprise wiki for the formats",
            loc=("body", "url"),
        )


def _audit_fields(channel: NotificationChannel) -> dict[str, Any]:
    # Never the URL or the secret: only that they changed.
    return {
        "name": channel.name,
        "kind": channel.kind,
        "url_hint": channel.url_hint,
        "enabled": channel.enabled,
    }


async def list_channels(session: AsyncSession) -> list[ChannelOut]:
    return [channel_out(c) for c in await repository.all_of(session, NotificationChannel)]


async def get_channel(session: AsyncSession, channel_id: uuid.UUID) -> NotificationChannel:
    channel: NotificationChannel = await rows.require(
        session, NotificationChannel, channel_id, "channel"
    )
    return channel


async def create_channel(
    session: AsyncSession, ctx: OperationContext, data: ChannelCreate, keyring: Keyring
) -> ChannelOut:
    _check_url(data.kind, data.url)
    if data.secret is not None and data.kind != "webhook":
        raise InvalidInput("only webhook channels have a signing secret", loc=("body", "secret"))
    await rows.name_free(session, NotificationChannel, data.name, "channel")
    now = utcnow()
    channel = NotificationChannel(
        id=uuid.uuid4(),
        name=data.name,
        kind=data.kind,
        url_hint=url_hint(data.url),
        enabled=data.enabled,
        created_at=now,
        updated_at=now,
        version=1,
    )
    channel.url_encrypted = keyring.encrypt(data.url, _url_ref(channel.id))
    if data.secret is not None:
        channel.secret_encrypted = keyring.encrypt(
            data.secret.get_secret_value(), _secret_ref(channel.id)
        )
    repository.add(session, channel)
    await session.flush()
    await audit.record(
        session,
        ctx,
        audit.Change(
            "channel.create", "notification_channel", channel.id, None, _audit_fields(channel)
        ),
    )
    return channel_out(channel)


async def update_channel(
    session: AsyncSession,
    ctx: OperationContext,
    channel_id: uuid.UUID,
    data: ChannelUpdate,
    keyring: Keyring,
    if_match: str | None = None,
) -> Versioned[ChannelOut]:
    channel = await get_channel(session, channel_id)
    check_if_match(if_match, channel.version)
    before = _audit_fields(channel)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("name") is None and "name" in changes:
        raise InvalidInput("name cannot be null", loc=("body", "name"))
    if changes.get("name") and changes["name"] != channel.name:
        await rows.name_free(session, NotificationChannel, changes["name"], "channel")
        channel.name = changes["name"]
    if data.url is not None:
        _check_url(channel.kind, data.url)
        channel.url_encrypted = keyring.encrypt(data.url, _url_ref(channel.id))
        channel.url_hint = url_hint(data.url)
    if data.secret is not None:
        if channel.kind != "webhook":
            raise InvalidInput(
                "only webhook channels have a signing secret", loc=("body", "secret")
            )
        channel.secret_encrypted = keyring.encrypt(
            data.secret.get_secret_value(), _secret_ref(channel.id)
        )
    if data.enabled is not None:
        channel.enabled = data.enabled
    bump_version(channel)
    after = _audit_fields(channel)
    if data.url is not None:
        after["url"] = "(changed)"
    if data.secret is not None:
        after["secret"] = "(changed)"  # noqa: S105 (a marker, not a secret)
    await audit.record(
        session,
        ctx,
        audit.Change("channel.update", "notification_channel", channel.id, before, after),
    )
    return Versioned(channel_out(channel), channel.version)


async def delete_channel(
    session: AsyncSession, ctx: OperationContext, channel_id: uuid.UUID
) -> None:
    channel = await get_channel(session, channel_id)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "channel.delete", "notification_channel", channel.id, _audit_fields(channel), None
        ),
    )
    await repository.remove(session, channel)


async def test_channel(
    session: AsyncSession, ctx: OperationContext, channel_id: uuid.UUID, keyring: Keyring
) -> ChannelTestResult:
    channel = await get_channel(session, channel_id)
    message = Message(
        title="InfraWatch test notification",
        body=f"This channel works. Sent by {ctx.actor.username}.",
        payload={"event": "test", "sent_at": utcnow().isoformat()},
    )
    try:
        await send(channel_target(channel, keyring), message)
    except DeliveryError as exc:
        return ChannelTestResult(ok=False, error=str(exc))
    return ChannelTestResult(ok=True, error=None)
