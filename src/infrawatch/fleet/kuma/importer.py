"""Import an Uptime Kuma database: converted to a fleet document, its
secrets stored (or, on a dry run, stored and rolled back: the plan needs
them to resolve), then planned and applied like any document, all or
nothing under one request id. Running it again changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.context import OperationContext
from infrawatch.credentials import stored_secrets
from infrawatch.fleet import service
from infrawatch.fleet.kinds import BY_KEY, Tools
from infrawatch.fleet.kuma import convert, reader
from infrawatch.fleet.service import Change


@dataclass
class KumaImport:
    kuma_version: str
    changes: list[Change]
    secrets: dict[str, str]  # secret name → created | updated | unchanged
    notes: list[convert.Note]
    dry_run: bool


def read(path: Path, *, servers: bool = True) -> convert.Conversion:
    return convert.convert(reader.read(path), servers=servers)


async def import_conversion(
    session: AsyncSession,
    ctx: OperationContext,
    tools: Tools,
    conversion: convert.Conversion,
    *,
    dry_run: bool,
) -> KumaImport:
    """In the caller's transaction; on a dry run the caller rolls it back."""
    await _keep_existing_servers(session, tools, conversion)
    stored = {
        name: await stored_secrets.put_secret(
            session, ctx, tools.keyring, name, value, description="imported from Uptime Kuma"
        )
        for name, value in sorted(conversion.secrets.items())
    }
    plan = await service.make_plan(session, tools, conversion.items, prune=False, environment=False)
    if not dry_run and plan.steps:
        await service.apply_plan(session, ctx, tools, plan)
    return KumaImport(conversion.kuma_version, plan.changes, stored, conversion.notes, dry_run)


async def _keep_existing_servers(
    session: AsyncSession, tools: Tools, conversion: convert.Conversion
) -> None:
    """A server already in the inventory under a host's name is only referred
    to: applied as an item it would be reset to what the item says (its
    tags, groups and fields gone)."""
    made = conversion.items.get("servers", {})
    if not made:
        return
    existing = await BY_KEY["servers"].load(session, tools)
    for name in [n for n in made if n in existing]:
        item = made.pop(name)
        has = existing[name].fields.get("tags") or {}
        missing = {k: v for k, v in (item.get("tags") or {}).items() if has.get(k) != v}
        if missing:
            tags = ", ".join(f"{k}={v}" for k, v in missing.items())
            conversion.notes.append(
                convert.Note("tag", name, f"server {name} exists; {tags} not added", False)
            )
    if not made:
        conversion.items.pop("servers")
