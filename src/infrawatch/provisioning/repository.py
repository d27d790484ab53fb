from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.provisioning.models import (
    HibernatedServer,
    HibernationSchedule,
    Project,
    ProviderAccount,
    ProvisioningRun,
    ServerBuild,
    ServerRunLock,
)


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


# --- provider accounts and builds -------------------------------------------------


async def accounts(session: AsyncSession) -> list[ProviderAccount]:
    return list(await session.scalars(select(ProviderAccount).order_by(ProviderAccount.name)))


async def get_account(session: AsyncSession, account_id: uuid.UUID) -> ProviderAccount | None:
    return await session.get(ProviderAccount, account_id)


async def account_named(session: AsyncSession, name: str) -> ProviderAccount | None:
    query = select(ProviderAccount).where(ProviderAccount.name == name)
    return (await session.scalars(query)).one_or_none()


def _live_build() -> object:
    """A build whose node may exist at the provider."""
    return ~((ServerBuild.action == "destroy") & (ServerBuild.status == "done"))


async def live_builds_of_account(session: AsyncSession, account_id: uuid.UUID) -> list[str]:
    query = select(ServerBuild.name).where(
        ServerBuild.account_id == account_id,
        ServerBuild.node_id.is_not(None),
        _live_build(),  # type: ignore[arg-type]
    )
    return list(await session.scalars(query))


async def detach_builds(session: AsyncSession, account_id: uuid.UUID) -> None:
    """The account's builds that left nothing behind go with it."""
    await session.execute(delete(ServerBuild).where(ServerBuild.account_id == account_id))


async def get_build(
    session: AsyncSession, build_id: uuid.UUID, *, lock: bool = False
) -> ServerBuild | None:
    return await session.get(ServerBuild, build_id, with_for_update=lock or None)


async def builds(
    session: AsyncSession, limit: int, status: str | None, server_id: uuid.UUID | None
) -> list[ServerBuild]:
    query = select(ServerBuild).order_by(ServerBuild.created_at.desc(), ServerBuild.id.desc())
    if status is not None:
        query = query.where(ServerBuild.status == status)
    if server_id is not None:
        query = query.where(ServerBuild.server_id == server_id)
    return list(await session.scalars(query.limit(limit)))


async def build_of_server(session: AsyncSession, server_id: uuid.UUID) -> ServerBuild | None:
    query = (
        select(ServerBuild)
        .where(ServerBuild.server_id == server_id)
        .order_by(ServerBuild.created_at.desc())
        .limit(1)
    )
    return (await session.scalars(query)).one_or_none()


async def building_names(session: AsyncSession, names: Sequence[str]) -> set[str]:
    """Names taken by builds that have no server in the inventory yet."""
    query = select(ServerBuild.name).where(
        ServerBuild.name.in_(names),
        ServerBuild.server_id.is_(None),
        ServerBuild.status.in_(("queued", "running", "retrying", "failed")),
    )
    return set(await session.scalars(query))


# --- hibernation ------------------------------------------------------------------


async def schedules(session: AsyncSession) -> list[HibernationSchedule]:
    query = select(HibernationSchedule).order_by(HibernationSchedule.name)
    return list(await session.scalars(query))


async def get_schedule(
    session: AsyncSession, schedule_id: uuid.UUID, *, lock: bool = False
) -> HibernationSchedule | None:
    return await session.get(HibernationSchedule, schedule_id, with_for_update=lock or None)


async def schedule_named(session: AsyncSession, name: str) -> HibernationSchedule | None:
    query = select(HibernationSchedule).where(HibernationSchedule.name == name)
    return (await session.scalars(query)).one_or_none()


async def hibernated(
    session: AsyncSession, server_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, HibernatedServer]:
    query = select(HibernatedServer).where(HibernatedServer.server_id.in_(server_ids))
    return {row.server_id: row for row in await session.scalars(query)}


async def asleep_count(session: AsyncSession, schedule_id: uuid.UUID) -> int:
    query = select(func.count()).where(HibernatedServer.schedule_id == schedule_id)
    return int((await session.execute(query)).scalar_one())
