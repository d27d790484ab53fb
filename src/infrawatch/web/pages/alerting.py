from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from infrawatch.alerting import channels as alerting_channels
from infrawatch.alerting import rules as alerting_rules
from infrawatch.alerting import windows as alerting_windows
from infrawatch.core.runtime import DbSession
from infrawatch.monitoring import history
from infrawatch.web.session import ViewerDep
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/alerting", response_class=HTMLResponse)
async def alerting_page(viewer: ViewerDep, session: DbSession) -> Response:
    channels = await alerting_channels.list_channels(session)
    choices = await history.monitor_choices(session)
    return render(
        "alerting.html",
        viewer=viewer,
        nav="alerting",
        title="Alerting",
        channels=channels,
        channel_names={str(c.id): c.name for c in channels},
        rules=await alerting_rules.list_rules(session),
        windows=await alerting_windows.list_windows(session),
        monitors=choices,
        monitor_names={str(c.id): c.name for c in choices},
    )
