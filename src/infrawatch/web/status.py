"""Public status pages, their JSON and Atom feed, and SVG badges. No login:
everything here is built from what a page explicitly publishes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from infrawatch.core.clock import as_utc, utcnow
from infrawatch.core.runtime import DbSession
from infrawatch.statuspage import public as status_public
from infrawatch.statuspage.schemas import PublicPage
from infrawatch.web import svg
from infrawatch.web.templating import ENVIRONMENT, render

router = APIRouter(tags=["public status pages"])
SVG = "image/svg+xml; charset=utf-8"
# Public and cheap to compute again: a short shared cache keeps a crowd of
# readers during an outage from reaching the database one by one.
CACHE = "public, max-age=30"
BADGE_COLORS = {
    "up": "#4c1",
    "degraded": "#dfb317",
    "down": "#e05d44",
    "maintenance": "#007ec6",
    "unknown": "#9f9f9f",
}
DURATIONS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}


def render_page(view: status_public.PublicView) -> HTMLResponse:
    response = render("status/page.html", page=view)
    response.headers["Cache-Control"] = CACHE
    return response


@router.get(
    "/status/{slug}.json",
    response_class=JSONResponse,
    responses={200: {"model": PublicPage, "description": "the page as data"}},
)
async def status_json(slug: str, session: DbSession) -> JSONResponse:
    page = await status_public.published_page(session, slug=slug)
    view = await status_public.public_view(session, page)
    return JSONResponse(view.to_json(), headers={"Cache-Control": CACHE})


@router.get("/status/{slug}/feed.atom", response_class=Response)
async def status_feed(slug: str, request: Request, session: DbSession) -> Response:
    page = await status_public.published_page(session, slug=slug)
    view = await status_public.public_view(session, page)
    entries = sorted(
        [*view.active_incidents, *view.maintenance, *view.past_incidents],
        key=lambda i: as_utc(i.updated_at),
        reverse=True,
    )
    updated: datetime = as_utc(entries[0].updated_at) if entries else as_utc(page.updated_at)
    base = str(request.base_url).rstrip("/")
    xml = ENVIRONMENT.get_template("status/feed.atom").render(
        page=view, entries=entries, updated=updated, base=base
    )
    return Response(
        xml, media_type="application/atom+xml; charset=utf-8", headers={"Cache-Control": CACHE}
    )


@router.get("/status/{slug}", response_class=HTMLResponse)
async def status_page(slug: str, session: DbSession) -> HTMLResponse:
    page = await status_public.published_page(session, slug=slug)
    return render_page(await status_public.public_view(session, page))


@router.get("/badge/{monitor_id}/{kind}.svg", response_class=Response)
async def badge(
    monitor_id: uuid.UUID,
    kind: Literal["status", "uptime", "latency", "cert"],
    session: DbSession,
    label: str | None = Query(None, max_length=60),
    duration: Literal["24h", "7d", "30d", "90d"] = "30d",
) -> Response:
    name, found = await status_public.badge_subject(session, monitor_id)
    state: str = status_public.PUBLIC_STATES.get(found.status, "unknown")
    if kind == "status":
        text, color = state, BADGE_COLORS[state]
    elif kind == "uptime":
        percent = found.uptime(DURATIONS[duration])
        text = "no data" if percent is None else f"{percent:.2f}%"
        color = svg.uptime_color(percent)
        name = label or f"uptime {duration}"
    elif kind == "latency":
        average = found.last_24h.latency_avg_ms
        text = "no data" if average is None else f"{average:.0f} ms"
        color = BADGE_COLORS["unknown"] if average is None else svg.BLUE
        name = label or "response time 24h"
    else:
        text, color = _cert(found.cert_expires_at)
        name = label or "certificate"
    body = svg.badge(label or name, text, color)
    return Response(body, media_type=SVG, headers={"Cache-Control": "public, max-age=60"})


def _cert(expires_at: datetime | None) -> tuple[str, str]:
    if expires_at is None:
        return "no certificate", BADGE_COLORS["unknown"]
    days = int((as_utc(expires_at) - utcnow()).total_seconds() // 86400)
    if days < 0:
        return "expired", BADGE_COLORS["down"]
    color = BADGE_COLORS["down"] if days < 7 else BADGE_COLORS["degraded"] if days < 30 else "#4c1"
    return f"{days} days", color
