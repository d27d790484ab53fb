"""The signed-in person's own account: two-factor enrolment (a QR code,
then a code to confirm, then the recovery codes) and turning it off."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from infrawatch.accounts import service as accounts
from infrawatch.accounts import two_factor
from infrawatch.core.runtime import DbSession, get_runtime
from infrawatch.web.session import ENROLMENT_PAGE, ViewerDep
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get(ENROLMENT_PAGE, response_class=HTMLResponse)
async def two_factor_page(request: Request, viewer: ViewerDep, session: DbSession) -> Response:
    assert viewer.actor.user_id is not None
    user = await accounts.get_user(session, viewer.actor.user_id)
    runtime = get_runtime(request)
    return render(
        "account/two_factor.html",
        viewer=viewer,
        nav="account",
        title="Two-factor login",
        user=user,
        pending=await two_factor.pending_enrolment(session, runtime.keyring, user.id),
        codes_left=await two_factor.recovery_codes_left(session, user.id),
        required=two_factor.required_for(runtime.settings, user.role.value),
    )
