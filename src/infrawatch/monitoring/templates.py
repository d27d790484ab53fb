"""Monitors carried by server templates. Stored here (inventory knows
nothing of monitors); inventory calls `create_for_servers` through the hook
create_app registers, inside the instantiate transaction."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.context import OperationContext
from infrawatch.core.crypto import Keyring, SecretRef
from infrawatch.core.errors import InvalidInput
from infrawatch.inventory import templates as inventory_templates
from infrawatch.inventory.schemas import ServerOut
from infrawatch.monitoring import repository, service, target_secrets
from infrawatch.monitoring.models import TemplateMonitor
from infrawatch.monitoring.schemas import MonitorCreate, validate_monitor

PLACEHOLDERS = ("{server}", "{hostname}", "{ip}")
SAMPLE = {"server": "web-01", "hostname": "web-01.example.internal", "ip": "192.0.2.10"}


def render(spec: dict[str, Any], server: dict[str, str]) -> dict[str, Any]:
    def fill(value: str) -> str:
        for key, replacement in server.items():
            value = value.replace("{" + key + "}", replacement)
        return value

    rendered = dict(spec)
    rendered["name"] = fill(spec["name"])
    rendered["target"] = fill(spec.get("target", ""))
    return rendered


def _values(server: ServerOut) -> dict[str, str]:
    host = server.hostname or server.ip_address or server.name
    return {"server": server.name, "hostname": host, "ip": server.ip_address or host}


async def get_template_monitors(
    session: AsyncSession, template_id: uuid.UUID
) -> list[dict[str, Any]]:
    await inventory_templates.get_template(session, template_id)  # 404 if missing
    return [row.spec for row in await repository.template_monitors(session, template_id)]


def _template_ref(row: TemplateMonitor) -> SecretRef:
    return SecretRef("template_monitors", "target_secret_encrypted", str(row.id))


async def set_template_monitors(
    session: AsyncSession, template_id: uuid.UUID, specs: list[dict[str, Any]], keyring: Keyring
) -> list[dict[str, Any]]:
    """Each spec is a monitor as POST /monitors takes it (server_id aside);
    checked now with a sample server so a bad one fails here, not later."""
    await inventory_templates.get_template(session, template_id)
    clean = []
    for index, raw in enumerate(specs):
        if "{server}" not in str(raw.get("name", "")):
            raise InvalidInput(
                "a template monitor's name needs {server}, or every server's monitor would "
                "share one name",
                loc=("body", index, "name"),
            )
        try:
            sample = MonitorCreate.model_validate(render({**raw, "server_id": None}, SAMPLE))
        except (ValidationError, KeyError) as exc:
            raise InvalidInput(f"monitor {index}: {exc}", loc=("body", index)) from None
        validate_monitor(sample.type, sample.target, sample.settings, sample.conditions)
        clean.append({k: v for k, v in raw.items() if k != "server_id"})
    # A password in a target is kept apart, encrypted, as on a monitor; a
    # spec sent back with *** keeps the password at its position.
    old = {row.position: row for row in await repository.template_monitors(session, template_id)}
    passwords: list[str | None] = []
    for position, spec in enumerate(clean):
        spec["target"], password = target_secrets.split_password(str(spec.get("target", "")))
        kept = old.get(position)
        if password == target_secrets.MASK and kept is not None and kept.target_secret_encrypted:
            password = keyring.decrypt(kept.target_secret_encrypted, _template_ref(kept))
        passwords.append(password)
    # Flushed: the ids the ciphertexts are bound to.
    rows = await repository.replace_template_monitors(session, template_id, clean)
    for row, password in zip(rows, passwords, strict=True):
        if password is not None:
            row.target_secret_encrypted = keyring.encrypt(password, _template_ref(row))
    await session.flush()
    return clean


def instantiate_hook(keyring: Keyring) -> inventory_templates.InstantiateHook:
    async def create_for_servers(
        session: AsyncSession,
        ctx: OperationContext,
        template_id: uuid.UUID,
        servers: list[ServerOut],
    ) -> None:
        specs = []
        for row in await repository.template_monitors(session, template_id):
            spec = dict(row.spec)
            if row.target_secret_encrypted is not None:
                password = keyring.decrypt(row.target_secret_encrypted, _template_ref(row))
                spec["target"] = target_secrets.with_password(spec["target"], password)
            specs.append(spec)
        presenter = service.Presenter(keyring, "")
        for server in servers:
            for spec in specs:
                data = MonitorCreate.model_validate(
                    {**render(spec, _values(server)), "server_id": server.id}
                )
                await service.create_monitor(session, ctx, data, presenter)

    return create_for_servers
