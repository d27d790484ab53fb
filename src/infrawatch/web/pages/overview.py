from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from infrawatch.accounts import oidc
from infrawatch.alerting import incidents as alerting_incidents
from infrawatch.core.clock import as_utc, utcnow
from infrawatch.core.errors import NotFound
from infrawatch.core.runtime import Counts, DbSession, get_runtime
from infrawatch.inventory import hostmap
from infrawatch.inventory import service as inventory
from infrawatch.inventory.schemas import TAG_KEY_PATTERN
from infrawatch.monitoring import history
from infrawatch.statuspage import public as status_public
from infrawatch.web import svg
from infrawatch.web.session import local_path, require_viewer, viewer_from_cookie
from infrawatch.web.status import render_page
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def overview(
    request: Request,
    session: DbSession,
    counts: Counts,
    range: str = "24h",
    tag: str = "",
) -> Response:
    host = request.headers.get("host", "").rsplit(":", 1)[0].strip("[]").lower()
    if _could_be_domain(host):
        try:  # a status page served on its own domain
            page = await status_public.published_page(session, domain=host)
        except NotFound:
            pass
        else:
            return render_page(await status_public.public_view(session, page))
    viewer = await require_viewer(request)
    span = range if range in history.SERIES_RANGES else "24h"
    group_by = tag if tag and re.fullmatch(TAG_KEY_PATTERN, tag) else ""
    series = await history.fleet_series(session, span)
    start, end = series[0].at, utcnow()
    incidents = await alerting_incidents.incidents_overlapping(session, start)
    return render(
        "overview.html",
        viewer=viewer,
        nav="overview",
        title="Overview",
        range=span,
        ranges=RANGE_LABELS,
        tag=group_by,
        tag_keys=await hostmap.tag_keys(session),
        fleet=await inventory.fleet_counts(session, counts),
        monitors=await history.status_counts(session),
        open_incidents=(await alerting_incidents.list_incidents(session, "open", None, 1)).total,
        slowest=await history.slowest(session, request.app.state.page_memo),
        changes=await history.latest_changes(session),
        series=[_point(p) for p in series],
        strip=Markup(  # noqa: S704  (svg escapes what it draws)
            svg.change_strip(
                [_label(p.at, span) for p in series],
                [p.went_down for p in series],
                [p.recovered for p in series],
                f"State changes over {RANGE_LABELS[span]}",
            )
        ),
        changes_total=sum(p.went_down + p.went_degraded + p.recovered for p in series),
        lanes=[_lane(i, start, end) for i in reversed(incidents)],
        period_start=start,
    )


RANGE_LABELS = {"1h": "1 hour", "24h": "24 hours", "7d": "7 days", "30d": "30 days"}


def _label(at: datetime, span: str) -> str:
    return at.strftime("%H:%M UTC" if span in ("1h", "24h") else "%b %d %H:00 UTC")


def _point(p: history.FleetPoint) -> list[object]:
    """[unix time, uptime %, average ms, p95 ms]: the chart's columns."""
    return [int(p.at.timestamp()), p.uptime_percent, p.latency_avg_ms, p.latency_p95_ms]


@dataclass
class Lane:
    """One incident on the timeline: where its bar starts and how wide it
    is, in percent of the period."""

    incident: Any
    left: float
    width: float
    ongoing: bool


def _lane(incident: Any, start: datetime, end: datetime) -> Lane:
    total = max((end - start).total_seconds(), 1.0)
    opened = max(as_utc(incident.opened_at), start)
    closed = min(as_utc(incident.resolved_at), end) if incident.resolved_at else end
    left = 100 * (opened - start).total_seconds() / total
    width = 100 * max((closed - opened).total_seconds(), 0.0) / total
    # A blip of a minute on a 30-day axis still shows as a visible mark.
    return Lane(incident, round(left, 2), round(max(width, 0.6), 2), incident.resolved_at is None)


def _could_be_domain(host: str) -> bool:
    """Worth looking up as a status page's domain: a dotted name, not an IP."""
    if "." not in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


@router.get("/login", response_class=HTMLResponse)
async def login(request: Request, next: str = "/") -> Response:
    target = local_path(next)
    if await viewer_from_cookie(request) is not None:
        return RedirectResponse(target, status_code=303)
    settings = get_runtime(request).settings
    sso = settings.oidc_name if oidc.enabled(settings) else None
    return render("login.html", viewer=None, next=target, sso=sso)
