"""The one Jinja2 environment: templates and filters shared by the console
and the public pages."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from infrawatch.core.clock import as_utc, utcnow
from infrawatch.web import svg

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"


def _when(value: datetime | None) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = int((utcnow() - as_utc(value)).total_seconds())
    if seconds < 0:
        return "in " + _span(-seconds)
    return _span(seconds) + " ago"


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f} %"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def _iso(value: datetime | None) -> str:
    return as_utc(value).isoformat() if value else ""


def _history_bars(found: Any, label: str) -> Markup:
    """90-day bars of a monitoring.history.History, drawn once per rollups."""
    counted = found.rollups
    if "bars" not in counted.memo:
        counted.memo["bars"] = svg.bar_rects(
            counted.dates, counted.percents(), counted.checks, counted.down
        )
    bars = svg.uptime_bars(len(counted.dates), label, counted.memo["bars"])
    return Markup(bars)  # noqa: S704  (svg escapes what it draws)


def _live_since() -> str:
    """Where a page's live updates start: a little before it was rendered,
    so an event committed while it rendered is replayed (twice is harmless)."""
    return (utcnow() - timedelta(seconds=2)).isoformat()


def _status_title(title: str) -> str:
    """`Acme` → `Acme status`; a title that already says so stays as it is
    (no "Acme status status")."""
    return title if title.rstrip().lower().endswith("status") else f"{title} status"


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(("html", "svg", "atom", "xml")),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        when=_when, ago=_ago, percent=_percent, ms=_ms, iso=_iso, status_title=_status_title
    )
    env.globals.update(
        latency_chart=lambda points, label: Markup(svg.latency_chart(points, label)),  # noqa: S704
        history_bars=_history_bars,
        live_since=_live_since,
    )
    return env


ENVIRONMENT = build_environment()


def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = ENVIRONMENT.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code)
