from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.provisioning.models import Project, ProvisioningRun, ServerRunLock


async def add(session: AsyncSession, row: object) -> None:
    session.add(row)
    await session.flush()


async def get_run(
    session: AsyncSession, run_id: uuid.UUID, *, lock: bool = False
) -> ProvisioningRun | None:
    return await session.get(ProvisioningRun, run_id, with_for_update=lock or None)


async def runs(session: AsyncSession, limit: int, server_id: str | None) -> list[ProvisioningRun]:
    query = select(ProvisioningRun).order_by(
        ProvisioningRun.created_at.desc(), ProvisioningRun.id.desc()
    )
    rows = list(await session.scalars(query.limit(limit if server_id is None else 10 * limit)))
    if server_id is not None:
        # JSON containment differs per database; the list is short.
        rows = [r for r in rows if server_id in r.server_ids][:limit]
    return rows


async def locks_of(session: AsyncSession, server_ids: Sequence[uuid.UUID]) -> list[ServerRunLock]:
    query = select(ServerRunLock).where(ServerRunLock.server_id.in_(server_ids))
    return list(await session.scalars(query.with_for_update()))


async def release_locks(session: AsyncSession, run_id: uuid.UUID) -> None:
    await session.execute(delete(ServerRunLock).where(ServerRunLock.run_id == run_id))


async def delete_lock(session: AsyncSession, lock: ServerRunLock) -> None:
    await session.delete(lock)
    await session.flush()


async def projects(session: AsyncSession) -> list[Project]:
    return list(await session.scalars(select(Project).order_by(Project.name)))


async def get_project(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return await session.get(Project, project_id)


async def project_named(session: AsyncSession, name: str) -> Project | None:
    return (await session.scalars(select(Project).where(Project.name == name))).one_or_none()


async def delete_row(session: AsyncSession, row: object) -> None:
    await session.delete(row)
    await session.flush()


async def active_runs_before(session: AsyncSession, run: ProvisioningRun) -> list[ProvisioningRun]:
    """Runs queued before this one that have not ended (by their own status;
    the caller checks their jobs)."""
    query = select(ProvisioningRun).where(
        ProvisioningRun.status.in_(("queued", "running")),
        ProvisioningRun.created_at < run.created_at,
        ProvisioningRun.id != run.id,
    )
    return list(await session.scalars(query))
