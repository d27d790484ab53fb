from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from infrawatch.core.runtime import DbSession
from infrawatch.credentials import assignments as credential_assignments
from infrawatch.credentials import keys as credential_keys
from infrawatch.credentials import stored_secrets as credential_stored_secrets
from infrawatch.jobs import service as jobs
from infrawatch.web.session import ViewerDep
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/credentials", response_class=HTMLResponse)
async def credentials_page(viewer: ViewerDep, session: DbSession) -> Response:
    return render(
        "credentials/index.html",
        viewer=viewer,
        nav="credentials",
        title="Credentials",
        keys=await credential_keys.list_keys(session, include_retired=False),
        # Secrets' names are for operators and up, as in the API.
        secrets=await credential_stored_secrets.list_secrets(session) if viewer.can_write else None,
    )


@router.get("/credentials/keys/{key_id}", response_class=HTMLResponse)
async def key_page(key_id: uuid.UUID, viewer: ViewerDep, session: DbSession) -> Response:
    key = (await credential_keys.get_key(session, key_id)).value
    recent = await jobs.list_jobs(
        session,
        status=None,
        job_type=None,
        subject_id=str(key_id),
        sort=None,
        cursor=None,
        limit=10,
    )
    cas = [k for k in await credential_keys.list_keys(session, False) if k.purpose == "ca"]
    return render(
        "credentials/key.html",
        viewer=viewer,
        nav="credentials",
        title=key.name,
        key=key,
        assignments=await credential_assignments.list_assignments(session, key_id),
        jobs=recent.items,
        cas=cas,
    )
