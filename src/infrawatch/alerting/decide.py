"""What alerting does about a batch of transitions, decided without I/O.

`decide(transitions, world)` takes everything the batch needs, loaded
beforehand in a fixed number of queries (`alerting/world.py`), and returns
`Actions`: incidents to open or change, timeline notes, messages to queue,
events to publish. `processor.apply` writes them. Nothing here touches a
database or a clock (the world carries `now`), so the rules of alerting —
what is news, what is held under an upstream outage or a maintenance window,
who hears what — are tested as plain functions."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from infrawatch.alerting.models import AlertRule, MaintenanceWindow
from infrawatch.alerting.schedule import is_active
from infrawatch.core.events import Event
from infrawatch.inventory.lifecycle import RESTING
from infrawatch.inventory.schemas import ServerOut
from infrawatch.monitoring.service import TransitionBrief

MAX_UPSTREAM_DEPTH = 10
DEFAULT_CERTIFICATE_DAYS = (21, 14, 7)
# No monitor: only rules without selectors (the whole fleet) hear of locations.
NO_MONITOR = uuid.UUID(int=0)


@dataclass(frozen=True)
class Subject:
    """What selectors look at: the monitor and, if it has one, its server."""

    monitor_id: uuid.UUID
    server: ServerOut | None


@dataclass
class IncidentState:
    """An incident as decide sees and changes it (a copy, never the row)."""

    id: uuid.UUID
    monitor_id: uuid.UUID | None
    server_id: uuid.UUID | None
    title: str
    opened_at: datetime
    status: str = "open"
    resolved_at: datetime | None = None
    held: str | None = None
    parent_id: uuid.UUID | None = None
    notified: bool = False
    last_notified_at: datetime | None = None
    reminders_sent: int = 0

    @classmethod
    def of(cls, row: Any) -> IncidentState:
        """From an incidents row (ORM or plain)."""
        return cls(**{f.name: getattr(row, f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class World:
    """What a batch is decided against, loaded before deciding."""

    now: datetime
    rules: Sequence[AlertRule] = ()
    windows: Sequence[MaintenanceWindow] = ()
    enabled_channels: frozenset[uuid.UUID] = frozenset()
    servers: Mapping[uuid.UUID, ServerOut] = field(default_factory=dict)
    # server → the servers it depends on directly, for every server reached
    upstream: Mapping[uuid.UUID, Sequence[uuid.UUID]] = field(default_factory=dict)
    # server → its monitors that are down right now (paused ones left out)
    down_monitors: Mapping[uuid.UUID, Sequence[uuid.UUID]] = field(default_factory=dict)
    # monitor → its open incident
    open_incidents: Mapping[uuid.UUID, IncidentState] = field(default_factory=dict)
    # incident → the open incidents held under it
    held_children: Mapping[uuid.UUID, Sequence[IncidentState]] = field(default_factory=dict)
    # held under an upstream outage whose own incident was not open yet
    orphans: Sequence[IncidentState] = ()
    # where monitors stand now (for "still down" once a hold ends)
    monitors_now: Mapping[uuid.UUID, TransitionBrief] = field(default_factory=dict)


@dataclass(frozen=True)
class Note:
    incident_id: uuid.UUID
    at: datetime
    kind: str
    message: str


@dataclass(frozen=True)
class Message:
    """One message, to be queued once per channel."""

    event: str
    key: str
    title: str
    body: str
    payload: dict[str, Any]
    channel_ids: tuple[uuid.UUID, ...]


@dataclass
class Actions:
    opened: list[IncidentState] = field(default_factory=list)
    changed: list[IncidentState] = field(default_factory=list)  # existing ones, as they end up
    notes: list[Note] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


# --- who is selected ----------------------------------------------------------------


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


def resting(subject: Subject) -> bool:
    """The server is in maintenance (a person said so, or it hibernates) or
    being torn down: what its monitors say is expected, not news."""
    return subject.server is not None and subject.server.lifecycle in RESTING


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


# --- the entry points ---------------------------------------------------------------


def decide(
    transitions: Sequence[TransitionBrief],
    world: World,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Actions:
    """Transitions in the order they happened; then the holds of earlier
    batches whose upstream incident was not open when they were made."""
    desk = _Desk(world, new_id)
    for t in transitions:
        desk.transition(t)
    desk.review_upstream_holds()
    return desk.actions()


def decide_reminders(due: Sequence[IncidentState], world: World) -> Actions:
    """Open, notified, unacknowledged incidents: a reminder for those whose
    rules ask for one and whose last message is older than the shortest
    reminder interval among them."""
    desk = _Desk(world)
    rules = [r for r in world.rules if r.reminder_minutes]
    for incident in (desk.own(i) for i in due):
        if incident.monitor_id is None:
            continue
        subject = desk.subject(incident.monitor_id, incident.server_id)
        matching = [
            r for r in rules if "down" in r.events and selects(r, subject, empty_means_all=True)
        ]
        if not matching:
            continue
        every = timedelta(minutes=min(r.reminder_minutes or 0 for r in matching))
        now = world.now
        if incident.last_notified_at is not None and now - incident.last_notified_at < every:
            continue
        number = incident.reminders_sent + 1
        desk.queue(
            "down",
            subject,
            f"r{incident.id}:{number}",
            f"STILL DOWN: {incident.title}",
            f"{incident.title}, for {duration(now - incident.opened_at)} now (reminder {number})",
            {"incident_id": str(incident.id), "reminder": number},
            rule_filter=lambda rule: bool(rule.reminder_minutes),
        )
        incident.reminders_sent = number
        incident.last_notified_at = now
        desk.note(incident, "reminder", f"reminder {number} queued")
    return desk.actions()


def decide_maintenance_releases(held: Sequence[IncidentState], world: World) -> Actions:
    """Incidents held by a maintenance window: those whose monitor is out of
    maintenance now are news, if the monitor is still down."""
    desk = _Desk(world)
    for incident in (desk.own(i) for i in held):
        brief = world.monitors_now.get(incident.monitor_id) if incident.monitor_id else None
        if brief is not None and brief.in_maintenance:
            continue
        incident.held = None
        desk.note(incident, "released", "the maintenance window ended")
        desk.notify_if_still_down(incident)
    return desk.actions()


def decide_location_news(news: Iterable[Any], world: World) -> Actions:
    """A location that lost its last worker (or got one back): told once to
    every rule for the whole fleet that hears `location` or `down` events —
    its monitors' quorum just lost a voice."""
    desk = _Desk(world)
    subject = Subject(NO_MONITOR, None)
    for item in news:
        gone = item.state == "gone"
        desk.queue(
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
    return desk.actions()


# --- the work -----------------------------------------------------------------------


class _Desk:
    """Working copies of the world's incidents, and the actions so far."""

    def __init__(self, world: World, new_id: Callable[[], uuid.UUID] = uuid.uuid4) -> None:
        self.world = world
        self.new_id = new_id
        self._own: dict[uuid.UUID, IncidentState] = {}
        self._new: list[IncidentState] = []
        self._touched: dict[uuid.UUID, IncidentState] = {}
        self.open = {m: self.own(i) for m, i in world.open_incidents.items()}
        self.children = {
            parent: [self.own(c) for c in kids] for parent, kids in world.held_children.items()
        }
        self.orphans = [self.own(i) for i in world.orphans]
        self.notes: list[Note] = []
        self.messages: list[Message] = []
        self.events: list[Event] = []

    def own(self, incident: IncidentState) -> IncidentState:
        """The working copy: the world is left as it was given."""
        if incident.id not in self._own:
            self._own[incident.id] = copy.copy(incident)
        return self._own[incident.id]

    def actions(self) -> Actions:
        new = {i.id for i in self._new}
        return Actions(
            opened=list(self._new),
            changed=[i for i in self._touched.values() if i.id not in new],
            notes=self.notes,
            messages=self.messages,
            events=self.events,
        )

    def note(
        self, incident: IncidentState, kind: str, message: str, at: datetime | None = None
    ) -> None:
        # Every change to an incident comes with a note: noting marks it changed.
        self._touched[incident.id] = incident
        self.notes.append(Note(incident.id, at or self.world.now, kind, message))

    def subject(self, monitor_id: uuid.UUID, server_id: uuid.UUID | None) -> Subject:
        return Subject(monitor_id, self.world.servers.get(server_id) if server_id else None)

    def queue(
        self,
        event: str,
        subject: Subject,
        key: str,
        title: str,
        body: str,
        payload: dict[str, Any],
        rule_filter: Callable[[AlertRule], bool] | None = None,
        heard_by: tuple[str, ...] = (),
    ) -> int:
        """A message for the enabled channels of the rules that hear `event`
        (or one of `heard_by`) and select the subject; how many channels."""
        hearing = {event, *heard_by}
        channel_ids: set[uuid.UUID] = set()
        for rule in self.world.rules:
            if not hearing & set(rule.events) or not selects(rule, subject, empty_means_all=True):
                continue
            if rule_filter is not None and not rule_filter(rule):
                continue
            channel_ids.update(uuid.UUID(c) for c in rule.channel_ids)
        channels = tuple(sorted(channel_ids & self.world.enabled_channels))
        if channels:
            self.messages.append(
                Message(event, key, title[:300], body, {"event": event, **payload}, channels)
            )
        return len(channels)

    # --- transitions ---------------------------------------------------------------

    def transition(self, t: TransitionBrief) -> None:
        event = classify(t)
        if event is None:
            return
        subject = self.subject(t.monitor_id, t.server_id)
        if not t.in_maintenance and (self._in_a_window(subject, t.at) or resting(subject)):
            # The window is judged here, at the transition's time: the flag the
            # maintenance loop sets can be seconds behind a window's start (and a
            # hibernating server is stopped right after it enters maintenance).
            t = dataclasses.replace(t, in_maintenance=True)
        if event == "certificate":
            self._certificate(t, subject)
        elif event == "down":
            self._down(t, subject)
        elif event == "recovered":
            self._recovered(t, subject)
        elif not t.in_maintenance:
            self.queue(
                "degraded",
                subject,
                f"t{t.id}",
                f"DEGRADED: {t.monitor_name}",
                f"{t.monitor_name} is degraded: {t.reason or 'slower than its threshold'}",
                _payload(t, None),
            )

    def _in_a_window(self, subject: Subject, at: datetime) -> bool:
        now = self.world.now
        return any(
            (is_active(w, at) or is_active(w, now)) and selects(w, subject, empty_means_all=False)
            for w in self.world.windows
        )

    def _certificate(self, t: TransitionBrief, subject: Subject) -> None:
        days = int(t.to_state)
        previous = int(t.from_state) if t.from_state.lstrip("-").isdigit() else 10**6

        def crossed(rule: AlertRule) -> bool:
            thresholds = rule.certificate_days or DEFAULT_CERTIFICATE_DAYS
            return any(days <= d < previous for d in thresholds)

        self.queue(
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

    def _down(self, t: TransitionBrief, subject: Subject) -> None:
        incident = self.open.get(t.monitor_id)
        if incident is None:
            incident = IncidentState(
                id=self.new_id(),
                monitor_id=t.monitor_id,
                server_id=t.server_id,
                title=f"{t.monitor_name} is down",
                opened_at=t.at,
            )
            self._own[incident.id] = incident
            self._new.append(incident)
            self.open[t.monitor_id] = incident
            self.note(incident, "opened", t.reason or "the monitor went down", t.at)
            self.events.append(
                Event(
                    "alerting.incident.opened",
                    {
                        "id": str(incident.id),
                        "monitor_id": str(t.monitor_id),
                        "title": incident.title,
                    },
                )
            )
        if t.in_maintenance:
            self._hold(incident, "maintenance", None)
            return
        failing = self.failing_upstream(t.server_id)
        if failing:
            parent = self.upstream_incident(failing)
            self._hold(incident, "upstream", parent.id if parent else None)
            return
        self._notify_down(f"t{t.id}", incident, subject, t)

    def _hold(self, incident: IncidentState, held: str, parent: uuid.UUID | None) -> None:
        incident.held = held
        incident.parent_id = parent
        if parent is not None:
            self.children.setdefault(parent, []).append(incident)
        why = (
            "a maintenance window covers it"
            if held == "maintenance"
            else "an upstream dependency is down"
        )
        self.note(incident, "held", f"alerts held: {why}")

    def _notify_down(
        self, key: str, incident: IncidentState, subject: Subject, t: TransitionBrief
    ) -> None:
        sent = self.queue(
            "down",
            subject,
            key,
            f"DOWN: {t.monitor_name}",
            f"{t.monitor_name} ({_checked(t)}) is down: {t.reason or 'no reason given'}",
            _payload(t, incident),
        )
        incident.notified = True
        incident.last_notified_at = self.world.now
        self.note(incident, "notified", f"down notification queued for {sent} channel(s)")

    def _recovered(self, t: TransitionBrief, subject: Subject) -> None:
        incident = self.open.pop(t.monitor_id, None)
        if incident is None:
            # Recovered from degraded: tell those who heard it was degraded.
            if t.from_state == "degraded" and not t.in_maintenance:
                self.queue(
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
        self.note(incident, "resolved", f"{t.monitor_name} is {t.to_state} again", t.at)
        self.events.append(
            Event(
                "alerting.incident.resolved",
                {"id": str(incident.id), "monitor_id": str(t.monitor_id)},
            )
        )
        if incident.notified:
            self.queue(
                "recovered",
                subject,
                f"t{t.id}",
                f"RECOVERED: {t.monitor_name}",
                f"{t.monitor_name} is {t.to_state} again after "
                f"{duration(t.at - incident.opened_at)}",
                _payload(t, incident),
            )
        # Incidents held because this one's server was down: if their monitor
        # is still down now the upstream is back, it is a problem of its own.
        for child in self.children.pop(incident.id, []):
            if child.status != "open" or child.parent_id != incident.id:
                continue
            child.held = None
            child.parent_id = None
            self.note(child, "released", "the upstream incident was resolved")
            self.notify_if_still_down(child)

    # --- holds -----------------------------------------------------------------------

    def failing_upstream(self, server_id: uuid.UUID | None) -> list[uuid.UUID]:
        """Servers this one depends on (transitively) that are down, or have
        a monitor down."""
        if server_id is None:
            return []
        seen = {server_id}
        frontier = [server_id]
        failing: list[uuid.UUID] = []
        for _ in range(MAX_UPSTREAM_DEPTH):
            reached = []
            for node in frontier:
                for upstream in self.world.upstream.get(node, ()):
                    if upstream in seen:
                        continue
                    seen.add(upstream)
                    reached.append(upstream)
                    server = self.world.servers.get(upstream)
                    if (server is not None and server.health == "down") or (
                        self.world.down_monitors.get(upstream)
                    ):
                        failing.append(upstream)
            if not reached:
                break
            frontier = reached
        return failing

    def upstream_incident(self, failing: Sequence[uuid.UUID]) -> IncidentState | None:
        """The oldest open incident of a monitor down on a failing upstream."""
        candidates = [
            self.open[m]
            for server in failing
            for m in self.world.down_monitors.get(server, ())
            if m in self.open
        ]
        return min(candidates, key=lambda i: (i.opened_at, str(i.id)), default=None)

    def review_upstream_holds(self) -> None:
        """Held incidents without a parent: the upstream's own incident may
        have opened since (same outage, seen in another order): attach them.
        If the upstream is no longer failing, the hold ends."""
        waiting = {i.id: i for i in self.orphans}
        for incident in self._own.values():
            if incident.held == "upstream" and incident.parent_id is None:
                waiting[incident.id] = incident
        for incident in waiting.values():
            if incident.status != "open" or incident.held != "upstream" or incident.parent_id:
                continue
            failing = self.failing_upstream(incident.server_id)
            if failing:
                parent = self.upstream_incident(failing)
                if parent is not None:
                    incident.parent_id = parent.id
                    self.note(
                        incident, "attached", f"attached to upstream incident {parent.title!r}"
                    )
                continue
            incident.held = None
            self.note(incident, "released", "the upstream dependency is no longer down")
            self.notify_if_still_down(incident)

    def notify_if_still_down(self, incident: IncidentState) -> None:
        if incident.monitor_id is None:
            return
        brief = self.world.monitors_now.get(incident.monitor_id)
        if brief is None or brief.current_status != "down" or brief.in_maintenance:
            return
        subject = self.subject(brief.monitor_id, brief.server_id)
        self._notify_down(f"i{incident.id}", incident, subject, brief)


# --- words ----------------------------------------------------------------------------


def _payload(t: TransitionBrief, incident: IncidentState | None) -> dict[str, Any]:
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


def _checked(t: TransitionBrief) -> str:
    """`http https://example.test/`, or the type alone where there is no
    target to name (push and agent monitors: `push heartbeat`)."""
    if not t.target.strip():
        return {"push": "push heartbeat", "agent": "host agent"}.get(t.monitor_type, t.monitor_type)
    return f"{t.monitor_type} {t.target}"


def duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
