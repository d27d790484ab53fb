"""POST /api/v1/apply: a fleet document, planned and (unless a dry run)
applied in the request's transaction; GET /api/v1/apply/schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from infrawatch.accounts.security import Context, authorize
from infrawatch.core.context import Role
from infrawatch.core.runtime import DbSession, KeyringDep
from infrawatch.fleet import service
from infrawatch.fleet.document import VERSION, json_schema, parse
from infrawatch.fleet.kinds import Tools
from infrawatch.fleet.schemas import ApplyOut, ApplyRequest, ChangeOut

router = APIRouter(tags=["config as code"], dependencies=[Depends(authorize())])


@router.post("/apply", response_model=ApplyOut)
async def apply(
    body: ApplyRequest, ctx: Context, session: DbSession, keyring: KeyringDep, request: Request
) -> ApplyOut:
    """The plan (create / update / delete) and, unless `dry_run`, its
    application: all of it or, on the first error, none of it."""
    tools = Tools(
        keyring, str(request.base_url), may_read_secrets=ctx.actor.role.allows(Role.admin)
    )
    items = parse([("document", body.document)])
    plan = await service.make_plan(session, tools, items, prune=body.prune, environment=False)
    if not body.dry_run:
        await service.apply_plan(session, ctx, tools, plan)
    return ApplyOut(
        applied=not body.dry_run,
        request_id=ctx.request_id,
        changes=[ChangeOut(**vars(c)) for c in plan.changes],
    )


@router.get("/apply/export")
async def export(session: DbSession, keyring: KeyringDep, request: Request) -> dict[str, Any]:
    """Everything config as code manages, as a fleet document (what POST
    /apply takes; `infrawatch export --all` writes it as YAML). Secrets are
    left out: applied back, they stay as stored."""
    items = await service.export(session, Tools(keyring, str(request.base_url)))
    return {"version": VERSION, **items}


@router.get("/apply/schema")
async def schema() -> dict[str, Any]:
    """The fleet document's JSON schema."""
    return json_schema()
