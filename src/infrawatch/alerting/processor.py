"""From monitor transitions to incidents and queued notifications.

Transitions are claimed from the database (not taken from the bus), marked
handled in the same transaction that opens the incident and queues the
messages: a crash in between loses nothing and doubles nothing."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting import repository
from infrawatch.alerting.models import AlertRule, Incident, IncidentEvent
from infrawatch.alerting.schedule import is_active
from infrawatch.core.clock import utcnow
from infrawatch.core.db import stage_event
from infrawatch.core.errors import NotFound
from infrawatch.core.events import Event
from infrawatch.inventory import dependencies
from infrawatch.inventory import service as inventory
from infrawatch.inventory.lifecycle import RESTING
from infrawatch.inventory.schemas import ServerOut
from infrawatch.monitoring import service as monitoring
from infrawatch.monitoring.service import TransitionBrief

MAX_UPSTREAM_DEPTH = 10


@dataclass(frozen=True)
class Subject:
    """What selectors look at: the monitor and, if it has one, its server."""

    monitor_id: uuid.UUID
    server: ServerOut | None


def _in_a_window(windows: list[Any], subject: Subject, at: datetime) -> bool:
    now = utcnow()
    return any(
        (is_active(w, at) or is_active(w, now)) and selects(w, subject, empty_means_all=False)
        for w in windows
    )


def resting(subject: Subject) -> bool:
    """The server is in maintenance (a person said so, or it hibernates) or
    being torn down: what its monitors say is expected, not news."""
    return subject.server is not None and subject.server.lifecycle in RESTING


def selects(selectors: Any, subject: Subject, *, empty_means_all: bool) -> bool:
    if not (selectors.monitor_ids or selectors.server_ids or selectors.tags or selectors.groups):
        return empty_means_all
    if str(subject.monitor_id) in selectors.monitor_ids:
        return True
    server = subject.server
    if server is None:
        return False
    if str(server.id) in selectors.server_ids:
        return True
    if selectors.tags and all(
        key in server.tags and (value is None or server.tags[key] == value)
        for key, value in selectors.tags.items()
    ):
        return True
    return bool(set(selectors.groups) & set(server.groups))


def classify(t: TransitionBrief) -> str | None:
    if t.kind == "certificate":
        return "certificate"
    if t.to_state == "down":
        return "down"
    if t.to_state == "degraded" and t.from_state == "up":
        return "degraded"
    if t.from_state in ("down", "degraded") and t.to_state in ("up", "degraded"):
        return "recovered"
    return None  # pending -> up: nothing anyone needs to hear


async def server_of(session: AsyncSession, server_id: uuid.UUID | None) -> ServerOut | None:
    if server_id is None:
        return None
    try:
        return (await inventory.get_server(session, server_id)).server
    except NotFound:
        return None


class Notifier:
    """Queues messages for the channels of the rules that select a subject."""

    def __init__(self, session: AsyncSession, rules: list[AlertRule]) -> None:
        self.session = session
        self.rules = rules

    async def queue(
        self,
        event: str,
        subject: Subject,
        key: str,
        title: str,
        body: str,
        payload: dict[str, Any],
        rule_filter: Any = None,
        heard_by: tuple[str, ...] = (),
    ) -> int:
        """`heard_by`: rule events that hear this event besides its own."""
        channel_ids: set[uuid.UUID] = set()
        hearing = {event, *heard_by}
        for rule in self.rules:
            if not hearing & set(rule.events) or not selects(rule, subject, empty_means_all=True):
                continue
            if rule_filter is not None and not rule_filter(rule):
                continue
            channel_ids.update(uuid.UUID(c) for c in rule.channel_ids)
        channels = await repository.channels_by_ids(self.session, sorted(channel_ids))
        now = utcnow()
        rows = [
            {
                "channel_id": channel_id,
                "dedupe_key": key,
                "event": event,
                "title": title[:300],
                "body": body,
                "payload": {"event": event, **payload},
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for channel_id, channel in channels.items()
            if channel.enabled
        ]
        await repository.enqueue(self.session, rows)
        return len(rows)


def _note(
    session: AsyncSession, incident: Incident, kind: str, message: str, at: datetime | None = None
) -> None:
    repository.add(
        session,
        IncidentEvent(incident_id=incident.id, at=at or utcnow(), kind=kind, message=message),
    )


def _payload(t: TransitionBrief, incident: Incident | None) -> dict[str, Any]:
    return {
        "monitor": {
            "id": str(t.monitor_id),
            "name": t.monitor_name,
            "type": t.monitor_type,
            "target": t.target,
        },
        "server_id": str(t.server_id) if t.server_id else None,
        "from": t.from_state,
        "to": t.to_state,
        "at": t.at.isoformat(),
        "reason": t.reason,
        "incident_id": str(incident.id) if incident else None,
    }


async def process_transitions(session: AsyncSession, settle_seconds: float) -> int:
    transitions = await monitoring.claim_unalerted_transitions(session, settle_seconds)
    if not transitions:
        return 0
    notifier = Notifier(session, await repository.enabled_rules(session))
    windows = await repository.windows(session)
    for t in transitions:
        await _handle(session, notifier, t, windows)
    await monitoring.mark_alerted(session, [t.id for t in transitions])
    await session.flush()
    await review_upstream_holds(session, notifier)
    return len(transitions)


# No monitor: only rules without selectors (the whole fleet) hear of locations.
NO_MONITOR = uuid.UUID(int=0)


async def process_location_news(session: AsyncSession) -> int:
    """A location that lost its last worker (or got one back): told once to
    every rule for the whole fleet that hears `location` or `down` events —
    its monitors' quorum just lost a voice."""
    news = await monitoring.claim_location_news(session)
    if not news:
        return 0
    notifier = Notifier(session, await repository.enabled_rules(session))
    subject = Subject(NO_MONITOR, None)
    for item in news:
        gone = item.state == "gone"
        await notifier.queue(
            "location",
            subject,
            f"loc-{item.name}-{item.since.isoformat()}",
            f"LOCATION GONE: {item.name}" if gone else f"LOCATION BACK: {item.name}",
            f"No worker checks from {item.name} any more: its monitors are decided by the "
            "other locations they list."
            if gone
            else f"Workers check from {item.name} again.",
            {"location": item.name, "state": item.state, "at": item.since.isoformat()},
            heard_by=("down",) if gone else ("recovered",),
        )
    await monitoring.mark_location_news(session, [item.name for item in news])
    return len(news)


async def review_upstream_holds(session: AsyncSession, notifier: Notifier | None = None) -> None:
    """Held incidents without a parent: the upstream's own incident may have
    opened since (same outage, seen in another order): attach them. If the
    upstream is no longer failing, the hold ends."""
    orphans = await repository.orphaned_upstream_holds(session)
    if not orphans:
        return
    notifier = notifier or Notifier(session, await repository.enabled_rules(session))
    for incident in orphans:
        failing = await _failing_upstream(session, incident.server_id) if incident.server_id else []
        if failing:
            monitors = await monitoring.failing_monitors_on(session, failing)
            parents = await repository.open_incidents_of_monitors(session, monitors)
            if parents:
                incident.parent_id = parents[0].id
                _note(
                    session,
                    incident,
                    "attached",
                    f"attached to upstream incident {parents[0].title!r}",
                )
            continue
        incident.held = None
        _note(session, incident, "released", "the upstream dependency is no longer down")
        await _maybe_notify_still_down(session, notifier, incident)


async def _handle(
    session: AsyncSession, notifier: Notifier, t: TransitionBrief, windows: list[Any]
) -> None:
    event = classify(t)
    if event is None:
        return
    subject = Subject(t.monitor_id, await server_of(session, t.server_id))
    if not t.in_maintenance and (_in_a_window(windows, subject, t.at) or resting(subject)):
        # The window is judged here, at the transition's time: the flag the
        # maintenance loop sets can be seconds behind a window's start (and a
        # hibernating server is stopped right after it enters maintenance).
        t = dataclasses.replace(t, in_maintenance=True)
    if event == "certificate":
        await _certificate(notifier, t, subject)
    elif event == "down":
        await _down(session, notifier, t, subject)
    elif event == "recovered":
        await _recovered(session, notifier, t, subject)
    elif not t.in_maintenance:
        await notifier.queue(
            "degraded",
            subject,
            f"t{t.id}",
            f"DEGRADED: {t.monitor_name}",
            f"{t.monitor_name} is degraded: {t.reason or 'slower than its threshold'}",
            _payload(t, None),
        )


async def _certificate(notifier: Notifier, t: TransitionBrief, subject: Subject) -> None:
    days = int(t.to_state)
    previous = int(t.from_state) if t.from_state.lstrip("-").isdigit() else 10**6

    def crossed(rule: AlertRule) -> bool:
        return any(days <= d < previous for d in (rule.certificate_days or [21, 14, 7]))

    await notifier.queue(
        "certificate",
        subject,
        f"t{t.id}",
        f"CERTIFICATE: {t.monitor_name} expires in {days} days"
        if not t.to_state.startswith("-")
        else f"CERTIFICATE: {t.monitor_name} has expired",
        t.reason or "",
        {**_payload(t, None), "days_left": days},
        rule_filter=crossed,
    )


async def _down(
    session: AsyncSession, notifier: Notifier, t: TransitionBrief, subject: Subject
) -> None:
    incident = await repository.open_incident_for(session, t.monitor_id)
    if incident is None:
        incident = Incident(
            id=uuid.uuid4(),
            monitor_id=t.monitor_id,
            server_id=t.server_id,
            title=f"{t.monitor_name} is down",
            status="open",
            opened_at=t.at,
            notified=False,
            reminders_sent=0,
        )
        repository.add(session, incident)
        await session.flush()
        _note(session, incident, "opened", t.reason or "the monitor went down", t.at)
        stage_event(
            session,
            Event(
                "alerting.incident.opened",
                {"id": str(incident.id), "monitor_id": str(t.monitor_id), "title": incident.title},
            ),
        )
    held, parent = await _hold_reason(session, t)
    if held is not None:
        incident.held = held
        incident.parent_id = parent
        why = (
            "a maintenance window covers it"
            if held == "maintenance"
            else "an upstream dependency is down"
        )
        _note(session, incident, "held", f"alerts held: {why}")
        return
    await _notify_down(session, notifier, t.id, incident, subject, t)


def _checked(t: TransitionBrief) -> str:
    """`http https://example.test/`, or the type alone where there is no
    target to name (push and agent monitors: `push heartbeat`)."""
    if not t.target.strip():
        return {"push": "push heartbeat", "agent": "host agent"}.get(t.monitor_type, t.monitor_type)
    return f"{t.monitor_type} {t.target}"


async def _notify_down(
    session: AsyncSession,
    notifier: Notifier,
    key: int | str,
    incident: Incident,
    subject: Subject,
    t: TransitionBrief,
) -> None:
    sent = await notifier.queue(
        "down",
        subject,
        f"t{key}",
        f"DOWN: {t.monitor_name}",
        f"{t.monitor_name} ({_checked(t)}) is down: {t.reason or 'no reason given'}",
        _payload(t, incident),
    )
    incident.notified = True
    incident.last_notified_at = utcnow()
    _note(session, incident, "notified", f"down notification queued for {sent} channel(s)")


async def _recovered(
    session: AsyncSession, notifier: Notifier, t: TransitionBrief, subject: Subject
) -> None:
    incident = await repository.open_incident_for(session, t.monitor_id)
    if incident is None:
        # Recovered from degraded: tell those who heard it was degraded.
        if t.from_state == "degraded" and not t.in_maintenance:
            await notifier.queue(
                "recovered",
                subject,
                f"t{t.id}",
                f"RECOVERED: {t.monitor_name}",
                f"{t.monitor_name} is {t.to_state} again",
                _payload(t, None),
                rule_filter=lambda rule: "degraded" in rule.events,
            )
        return
    incident.status = "resolved"
    incident.resolved_at = t.at
    _note(session, incident, "resolved", f"{t.monitor_name} is {t.to_state} again", t.at)
    stage_event(
        session,
        Event(
            "alerting.incident.resolved", {"id": str(incident.id), "monitor_id": str(t.monitor_id)}
        ),
    )
    if incident.notified:
        await notifier.queue(
            "recovered",
            subject,
            f"t{t.id}",
            f"RECOVERED: {t.monitor_name}",
            f"{t.monitor_name} is {t.to_state} again after {_duration(t.at - incident.opened_at)}",
            _payload(t, incident),
        )
    await _release_children(session, notifier, incident)


async def _release_children(session: AsyncSession, notifier: Notifier, parent: Incident) -> None:
    """Incidents held because this one's server was down: if their monitor is
    still down now the upstream is back, it is a problem of its own."""
    for child in await repository.held_children(session, parent.id):
        child.held = None
        child.parent_id = None
        _note(session, child, "released", "the upstream incident was resolved")
        await _maybe_notify_still_down(session, notifier, child)


async def _maybe_notify_still_down(
    session: AsyncSession, notifier: Notifier, incident: Incident
) -> None:
    if incident.monitor_id is None:
        return
    briefs = await monitoring.monitor_briefs(session, [incident.monitor_id])
    brief = briefs.get(incident.monitor_id)
    if brief is None or brief.current_status != "down" or brief.in_maintenance:
        return
    subject = Subject(brief.monitor_id, await server_of(session, brief.server_id))
    await _notify_down(session, notifier, f"i{incident.id}", incident, subject, brief)


async def _hold_reason(
    session: AsyncSession, t: TransitionBrief
) -> tuple[str | None, uuid.UUID | None]:
    if t.in_maintenance:
        return "maintenance", None
    if t.server_id is None:
        return None, None
    failing_servers = await _failing_upstream(session, t.server_id)
    if not failing_servers:
        return None, None
    monitors = await monitoring.failing_monitors_on(session, failing_servers)
    parents = await repository.open_incidents_of_monitors(session, monitors)
    return "upstream", parents[0].id if parents else None


async def _failing_upstream(session: AsyncSession, server_id: uuid.UUID) -> list[uuid.UUID]:
    """Servers this one depends on (transitively) that are down, or have a
    monitor down."""
    seen: set[uuid.UUID] = {server_id}
    frontier = [server_id]
    failing: list[uuid.UUID] = []
    for _ in range(MAX_UPSTREAM_DEPTH):
        upstream: list[uuid.UUID] = []
        for node in frontier:
            for dependency in await dependencies.upstream(session, node):
                if dependency.server.id not in seen:
                    seen.add(dependency.server.id)
                    upstream.append(dependency.server.id)
                    if dependency.server.health == "down":
                        failing.append(dependency.server.id)
        if not upstream:
            break
        frontier = upstream
    unhealthy = [s for s in seen - {server_id} if s not in failing]
    failing.extend(await monitoring.failing_monitor_servers(session, unhealthy))
    return failing


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


# --- reminders and the end of maintenance ----------------------------------------------


async def send_reminders(session: AsyncSession) -> int:
    rules = [r for r in await repository.enabled_rules(session) if r.reminder_minutes]
    if not rules:
        return 0
    notifier = Notifier(session, rules)
    now = utcnow()
    sent = 0
    for incident in await repository.reminders_due(session):
        if incident.monitor_id is None:
            continue
        subject = Subject(incident.monitor_id, await server_of(session, incident.server_id))
        matching = [
            r for r in rules if "down" in r.events and selects(r, subject, empty_means_all=True)
        ]
        if not matching:
            continue
        every = timedelta(minutes=min(r.reminder_minutes or 0 for r in matching))
        if incident.last_notified_at is not None and now - incident.last_notified_at < every:
            continue
        number = incident.reminders_sent + 1
        await notifier.queue(
            "down",
            subject,
            f"r{incident.id}:{number}",
            f"STILL DOWN: {incident.title}",
            f"{incident.title}, for {_duration(now - incident.opened_at)} now (reminder {number})",
            {"incident_id": str(incident.id), "reminder": number},
            rule_filter=lambda rule: bool(rule.reminder_minutes),
        )
        incident.reminders_sent = number
        incident.last_notified_at = now
        _note(session, incident, "reminder", f"reminder {number} queued")
        sent += 1
    return sent


async def release_maintenance_holds(session: AsyncSession) -> int:
    """A window ended while a monitor was down: now it is news."""
    held = await repository.held_for_maintenance(session)
    if not held:
        return 0
    notifier = Notifier(session, await repository.enabled_rules(session))
    released = 0
    briefs = await monitoring.monitor_briefs(session, [i.monitor_id for i in held if i.monitor_id])
    for incident in held:
        brief = briefs.get(incident.monitor_id) if incident.monitor_id else None
        if brief is not None and brief.in_maintenance:
            continue
        incident.held = None
        _note(session, incident, "released", "the maintenance window ended")
        await _maybe_notify_still_down(session, notifier, incident)
        released += 1
    return released
