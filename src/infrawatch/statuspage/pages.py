"""Status pages as their owners define them: slug, sections, domain."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import Versioned, apply_changes, check_if_match
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.monitoring import service as monitoring
from infrawatch.statuspage import repository
from infrawatch.statuspage.models import StatusPage
from infrawatch.statuspage.schemas import (
    PageCreate,
    PageOut,
    PageUpdate,
    Section,
)


def page_out(page: StatusPage) -> PageOut:
    return PageOut(
        id=page.id,
        slug=page.slug,
        title=page.title,
        description=page.description,
        logo_url=page.logo_url,
        custom_domain=page.custom_domain,
        sections=[Section.model_validate(s) for s in page.sections],
        published=page.published,
        refresh_seconds=page.refresh_seconds,
        footer=page.footer,
        version=page.version,
        created_at=page.created_at,
        updated_at=page.updated_at,
    )


async def list_pages(session: AsyncSession) -> list[PageOut]:
    return [page_out(p) for p in await repository.pages(session)]


async def get_page(session: AsyncSession, page_id: uuid.UUID) -> StatusPage:
    page = await repository.page(session, page_id)
    if page is None:
        raise NotFound(f"no status page with id {page_id}")
    return page


async def _check_unique(
    session: AsyncSession, page_id: uuid.UUID | None, slug: str | None, domain: str | None
) -> None:
    if slug is not None:
        other = await repository.page_by_slug(session, slug)
        if other is not None and other.id != page_id:
            raise Conflict(f"a status page with slug {slug!r} already exists")
    if domain is not None:
        other = await repository.page_by_domain(session, domain)
        if other is not None and other.id != page_id:
            raise Conflict(f"the status page {other.slug!r} already uses domain {domain!r}")


async def _check_sections(session: AsyncSession, sections: list[Section]) -> list[dict[str, Any]]:
    wanted = [m.monitor_id for s in sections for m in s.monitors]
    if len(wanted) > 500:
        raise InvalidInput("a page shows at most 500 monitors", loc=("body", "sections"))
    known = await monitoring.existing_monitor_ids(session, wanted)
    for i, section in enumerate(sections):
        for j, entry in enumerate(section.monitors):
            if entry.monitor_id not in known:
                raise InvalidInput(
                    f"no monitor with id {entry.monitor_id}",
                    loc=("body", "sections", i, "monitors", j, "monitor_id"),
                )
    return [s.model_dump(mode="json") for s in sections]


async def create_page(session: AsyncSession, ctx: OperationContext, data: PageCreate) -> PageOut:
    await _check_unique(session, None, data.slug, data.custom_domain)
    now = utcnow()
    page = StatusPage(
        id=uuid.uuid4(),
        slug=data.slug,
        title=data.title,
        description=data.description,
        logo_url=data.logo_url,
        custom_domain=data.custom_domain,
        sections=await _check_sections(session, data.sections),
        published=True if data.published is None else data.published,
        refresh_seconds=data.refresh_seconds or 60,
        footer=data.footer,
        version=1,
        created_at=now,
        updated_at=now,
    )
    repository.add(session, page)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "status_page.create", "status_page", page.id, None, data.model_dump(mode="json")
        ),
    )
    return page_out(page)


async def update_page(
    session: AsyncSession,
    ctx: OperationContext,
    page_id: uuid.UUID,
    data: PageUpdate,
    if_match: str | None,
) -> Versioned[PageOut]:
    page = await get_page(session, page_id)
    check_if_match(if_match, page.version)
    changes = data.model_dump(exclude_unset=True, mode="json")
    for key in ("slug", "title", "sections", "published", "refresh_seconds"):
        if key in changes and changes[key] is None:
            raise InvalidInput(f"{key} cannot be null", loc=("body", key))
    await _check_unique(session, page.id, changes.get("slug"), changes.get("custom_domain"))
    if data.sections is not None:
        changes["sections"] = await _check_sections(session, data.sections)
    before = apply_changes(page, changes)
    await audit.record(
        session, ctx, audit.Change("status_page.update", "status_page", page.id, before, changes)
    )
    return Versioned(page_out(page), page.version)


async def delete_page(session: AsyncSession, ctx: OperationContext, page_id: uuid.UUID) -> None:
    page = await get_page(session, page_id)
    await audit.record(
        session,
        ctx,
        audit.Change("status_page.delete", "status_page", page.id, {"slug": page.slug}, None),
    )
    await repository.delete(session, page)
