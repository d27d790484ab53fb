"""Provider accounts: their credentials encrypted (bound to the row), never
returned or audited in clear; a provider made from one on demand."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.config import Settings
from infrawatch.core.context import OperationContext
from infrawatch.core.crypto import Keyring, SecretRef
from infrawatch.core.errors import Conflict, InvalidInput, NotFound, UpstreamFailed
from infrawatch.provisioning import repository
from infrawatch.provisioning.cloud_schemas import (
    NodeOut,
    ProviderAccountCreate,
    ProviderAccountOut,
    ProviderAccountUpdate,
)
from infrawatch.provisioning.clouds import registry
from infrawatch.provisioning.clouds.base import Node, Provider, ProviderError
from infrawatch.provisioning.models import ProviderAccount


def credentials_ref(account_id: uuid.UUID) -> SecretRef:
    return SecretRef("provider_accounts", "credentials_encrypted", str(account_id))


def _check_credentials(kind: str, given: dict[str, str]) -> None:
    wanted = registry.CREDENTIAL_FIELDS[kind]
    for name in given:
        if name not in wanted:
            expected = ", ".join(wanted) or "none"
            raise InvalidInput(
                f"a {kind} account takes no credential {name!r} (it takes: {expected})",
                loc=("body", "credentials", name),
            )
    for name in wanted:
        if name not in given:
            raise InvalidInput(
                f"a {kind} account needs credential {name!r}", loc=("body", "credentials", name)
            )


def account_out(account: ProviderAccount, keyring: Keyring) -> ProviderAccountOut:
    stored = json.loads(keyring.decrypt(account.credentials_encrypted, credentials_ref(account.id)))
    return ProviderAccountOut(
        id=account.id,
        name=account.name,
        kind=account.kind,
        api_url=account.api_url,
        region=account.region,
        hibernation=account.hibernation,
        bills_when_stopped=registry.BILLS_WHEN_STOPPED[account.kind],
        rate_per_second=account.rate_per_second,
        burst=account.burst,
        credential_fields=sorted(stored),
        created_at=account.created_at,
        updated_at=account.updated_at,
    )


def _fields(account: ProviderAccount) -> dict[str, Any]:
    """What the audit trail keeps: everything but the credentials."""
    return {
        "name": account.name,
        "kind": account.kind,
        "api_url": account.api_url,
        "region": account.region,
        "hibernation": account.hibernation,
        "rate_per_second": account.rate_per_second,
        "burst": account.burst,
    }


async def _ensure_name_free(session: AsyncSession, name: str, account_id: uuid.UUID | None) -> None:
    existing = await repository.account_named(session, name)
    if existing is not None and existing.id != account_id:
        raise Conflict(f"a provider account named {name!r} exists already")


async def create_account(
    session: AsyncSession, ctx: OperationContext, keyring: Keyring, body: ProviderAccountCreate
) -> ProviderAccountOut:
    _check_credentials(body.kind, body.credentials)
    await _ensure_name_free(session, body.name, None)
    now = utcnow()
    account = ProviderAccount(
        id=uuid.uuid4(),
        name=body.name,
        kind=body.kind,
        api_url=body.api_url,
        region=body.region,
        hibernation=body.hibernation,
        rate_per_second=body.rate_per_second,
        burst=body.burst,
        created_at=now,
        updated_at=now,
    )
    account.credentials_encrypted = keyring.encrypt(
        json.dumps(body.credentials), credentials_ref(account.id)
    )
    await repository.add(session, account)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "provider_account.create",
            "provider_account",
            account.id,
            None,
            {**_fields(account), "credentials": sorted(body.credentials)},
        ),
    )
    return account_out(account, keyring)


async def require_account(session: AsyncSession, ref: str | uuid.UUID) -> ProviderAccount:
    """By id or by name."""
    account = None
    with suppress(ValueError):
        account = await repository.get_account(session, uuid.UUID(str(ref)))
    if account is None:
        account = await repository.account_named(session, str(ref))
    if account is None:
        raise NotFound(f"no provider account {str(ref)!r}")
    return account


async def account_choices(session: AsyncSession) -> list[dict[str, str | None]]:
    """Names, kinds and regions only: what the console's create form offers
    operators, who may make servers but not read accounts."""
    return [
        {"name": a.name, "kind": a.kind, "region": a.region}
        for a in await repository.accounts(session)
    ]


async def list_accounts(session: AsyncSession, keyring: Keyring) -> list[ProviderAccountOut]:
    return [account_out(a, keyring) for a in await repository.accounts(session)]


async def update_account(
    session: AsyncSession,
    ctx: OperationContext,
    keyring: Keyring,
    account_id: uuid.UUID,
    body: ProviderAccountUpdate,
) -> ProviderAccountOut:
    account = await require_account(session, account_id)
    before = _fields(account)
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes:
        await _ensure_name_free(session, changes["name"], account.id)
    credentials = changes.pop("credentials", None)
    if credentials is not None:
        _check_credentials(account.kind, credentials)
        account.credentials_encrypted = keyring.encrypt(
            json.dumps(credentials), credentials_ref(account.id)
        )
    for field, value in changes.items():
        setattr(account, field, value)
    account.updated_at = utcnow()
    await session.flush()
    after = {**_fields(account), **({"credentials": "replaced"} if credentials else {})}
    await audit.record(
        session,
        ctx,
        audit.Change("provider_account.update", "provider_account", account.id, before, after),
    )
    return account_out(account, keyring)


async def delete_account(
    session: AsyncSession, ctx: OperationContext, account_id: uuid.UUID
) -> None:
    account = await require_account(session, account_id)
    servers = await repository.live_builds_of_account(session, account.id)
    if servers:
        raise Conflict(
            f"provider account {account.name!r} still has {len(servers)} server(s) it made "
            f"({', '.join(sorted(servers)[:5])}); destroy them first"
        )
    await repository.detach_builds(session, account.id)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "provider_account.delete", "provider_account", account.id, _fields(account), None
        ),
    )
    await repository.delete_row(session, account)


def provider_of(account: ProviderAccount, keyring: Keyring, settings: Settings) -> Provider:
    credentials = json.loads(
        keyring.decrypt(account.credentials_encrypted, credentials_ref(account.id))
    )
    return registry.connect(
        account_key=str(account.id),
        kind=account.kind,
        credentials=credentials,
        api_url=account.api_url,
        region=account.region,
        rate_per_second=account.rate_per_second,
        burst=account.burst,
        settings=settings,
    )


def node_out(node: Node) -> NodeOut:
    return NodeOut(
        id=node.id,
        name=node.name,
        state=node.state,
        provider_state=node.provider_state,
        region=node.region,
        size=node.size,
        image=node.image,
        public_ip=node.public_ip,
        private_ip=node.private_ip,
        tags=list(node.tags),
    )


@asynccontextmanager
async def connected(
    session: AsyncSession, keyring: Keyring, settings: Settings, account_id: uuid.UUID
) -> AsyncIterator[Provider]:
    """A provider for a request; what the provider says wrong is a 502
    (a bad token: 502 too, with the provider's words), never a 500."""
    account = await require_account(session, account_id)
    try:
        provider = provider_of(account, keyring, settings)
    except ProviderError as exc:
        raise Conflict(str(exc)) from None
    try:
        yield provider
    except ProviderError as exc:
        raise UpstreamFailed(f"{account.kind} account {account.name!r}: {exc}") from None
    finally:
        await provider.close()
