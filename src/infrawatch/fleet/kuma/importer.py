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
from infrawatch.fleet.kinds import Tools
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
