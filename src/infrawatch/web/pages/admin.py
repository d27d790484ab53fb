from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from infrawatch.accounts import service as accounts
from infrawatch.core.runtime import DbSession
from infrawatch.web.session import AdminDep
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/admin", response_class=HTMLResponse)
async def admin_page(viewer: AdminDep, session: DbSession) -> Response:
    tokens = [t for t in await accounts.list_tokens(session) if t.revoked_at is None]
    return render(
        "admin.html",
        viewer=viewer,
        nav="admin",
        title="Users and tokens",
        users=await accounts.list_users(session),
        tokens=tokens,
        roles=("viewer", "operator", "admin"),
    )
