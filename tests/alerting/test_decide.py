"""The rules of alerting as plain functions: no database, no engine, no
sleeps. Each test builds the world a batch is decided against and reads
the actions that come back."""

from __future__ import annotations

import copy
import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from infrawatch.alerting.decide import (
    Actions,
    IncidentState,
    World,
    decide,
    decide_location_news,
    decide_maintenance_releases,
    decide_reminders,
)
from infrawatch.alerting.models import AlertRule, MaintenanceWindow
from infrawatch.inventory.schemas import ServerOut
from infrawatch.monitoring.service import TransitionBrief

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
PAGER, CHAT, OFF = (uuid.UUID(int=n) for n in (101, 102, 103))
_ids = itertools.count(1)


def server(name: str, **changes: Any) -> ServerOut:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": name,
        "hostname": None,
        "ip_address": None,
        "ssh_port": 22,
        "provider": None,
        "region": None,
        "os": None,
        "environment": None,
        "owner": None,
        "description": None,
        "tags": {},
        "groups": [],
        "attributes": {},
        "lifecycle": "active",
        "health": "healthy",
        "health_changed_at": None,
        "created_at": NOW,
        "updated_at": NOW,
        "deleted_at": None,
    }
    return ServerOut(**(values | changes))


def rule(events: list[str], channels: list[uuid.UUID], **selectors: Any) -> AlertRule:
    return AlertRule(
        id=uuid.uuid4(),
        name=f"rule-{next(_ids)}",
        enabled=True,
        events=events,
        monitor_ids=[str(m) for m in selectors.get("monitor_ids", [])],
        server_ids=[str(s) for s in selectors.get("server_ids", [])],
        tags=selectors.get("tags", {}),
        groups=selectors.get("groups", []),
        channel_ids=[str(c) for c in channels],
        reminder_minutes=selectors.get("reminder_minutes"),
        certificate_days=selectors.get("certificate_days", [21, 14, 7]),
    )


def change(
    monitor: uuid.UUID,
    to: str,
    *,
    frm: str = "up",
    on: ServerOut | None = None,
    kind: str = "state",
    at: datetime = NOW,
    in_maintenance: bool = False,
    name: str = "web",
) -> TransitionBrief:
    return TransitionBrief(
        id=next(_ids),
        monitor_id=monitor,
        monitor_name=name,
        monitor_type="http",
        target="http://127.0.0.1/health",
        server_id=on.id if on else None,
        kind=kind,
        from_state=frm,
        to_state=to,
        at=at,
        reason="connection refused" if to == "down" else None,
        in_maintenance=in_maintenance,
        current_status=to,
    )


def now_is(
    monitor: uuid.UUID, status: str, on: ServerOut | None, **changes: Any
) -> TransitionBrief:
    return replace(
        change(monitor, status, frm=status, on=on), current_status=status, id=0, **changes
    )


def open_incident(monitor: uuid.UUID, on: ServerOut | None, **changes: Any) -> IncidentState:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "monitor_id": monitor,
        "server_id": on.id if on else None,
        "title": "web is down",
        "opened_at": NOW - timedelta(minutes=10),
        "notified": True,
        "last_notified_at": NOW - timedelta(minutes=10),
    }
    return IncidentState(**(values | changes))


def world(*servers: ServerOut, **parts: Any) -> World:
    defaults: dict[str, Any] = {
        "now": NOW,
        "rules": [rule(["down", "recovered"], [PAGER])],
        "enabled_channels": frozenset({PAGER, CHAT}),
        "servers": {s.id: s for s in servers},
    }
    return World(**(defaults | parts))


def sent(actions: Actions, event: str | None = None) -> list[tuple[str, tuple[uuid.UUID, ...]]]:
    return [(m.title, m.channel_ids) for m in actions.messages if event in (None, m.event)]


def notes(actions: Actions, incident: uuid.UUID) -> list[str]:
    return [n.kind for n in actions.notes if n.incident_id == incident]


# --- down, recovered ---------------------------------------------------------------


def test_a_monitor_going_down_opens_an_incident_and_pages_the_enabled_channels() -> None:
    web = server("web-1")
    monitor = uuid.uuid4()
    everyone = rule(["down"], [PAGER, CHAT, OFF])
    actions = decide([change(monitor, "down", on=web)], world(web, rules=[everyone]))
    [incident] = actions.opened
    assert incident.monitor_id == monitor and incident.notified
    assert incident.opened_at == NOW and incident.last_notified_at == NOW
    # OFF is a disabled channel: it hears nothing.
    assert sent(actions) == [("DOWN: web", (PAGER, CHAT))]
    assert actions.messages[0].payload["incident_id"] == str(incident.id)
    assert notes(actions, incident.id) == ["opened", "notified"]
    assert [e.topic for e in actions.events] == ["alerting.incident.opened"]


def test_recovery_resolves_the_incident_and_says_how_long_it_lasted() -> None:
    web = server("web-1")
    monitor = uuid.uuid4()
    incident = open_incident(monitor, web)
    actions = decide(
        [change(monitor, "up", frm="down", on=web)],
        world(web, open_incidents={monitor: incident}),
    )
    [resolved] = actions.changed
    assert resolved.status == "resolved" and resolved.resolved_at == NOW
    [message] = actions.messages
    assert message.event == "recovered" and message.body.endswith("after 10 min")
    assert [e.topic for e in actions.events] == ["alerting.incident.resolved"]


def test_down_then_up_in_one_batch_is_one_incident_opened_and_resolved() -> None:
    monitor = uuid.uuid4()
    actions = decide(
        [
            change(monitor, "down"),
            change(monitor, "up", frm="down", at=NOW + timedelta(seconds=40)),
        ],
        world(),
    )
    [incident] = actions.opened
    assert incident.status == "resolved" and actions.changed == []
    assert [m.event for m in actions.messages] == ["down", "recovered"]


def test_a_recovery_nobody_was_told_of_stays_quiet() -> None:
    monitor = uuid.uuid4()
    incident = open_incident(monitor, None, notified=False, held="maintenance")
    actions = decide([change(monitor, "up", frm="down")], world(open_incidents={monitor: incident}))
    assert actions.changed[0].status == "resolved"
    assert actions.messages == []


def test_pending_to_up_is_not_news() -> None:
    actions = decide([change(uuid.uuid4(), "up", frm="pending")], world())
    assert actions == Actions()


# --- degraded ------------------------------------------------------------------------


def test_degraded_and_recovered_from_degraded_reach_only_rules_that_hear_degraded() -> None:
    monitor = uuid.uuid4()
    rules = [rule(["down", "recovered"], [PAGER]), rule(["degraded", "recovered"], [CHAT])]
    went = decide([change(monitor, "degraded")], world(rules=rules))
    assert sent(went) == [("DEGRADED: web", (CHAT,))]
    assert went.opened == []
    back = decide([change(monitor, "up", frm="degraded")], world(rules=rules))
    assert sent(back) == [("RECOVERED: web", (CHAT,))]


def test_down_to_degraded_resolves_the_incident() -> None:
    monitor = uuid.uuid4()
    incident = open_incident(monitor, None)
    actions = decide(
        [change(monitor, "degraded", frm="down")], world(open_incidents={monitor: incident})
    )
    assert actions.changed[0].status == "resolved"
    assert [m.event for m in actions.messages] == ["recovered"]


def test_degraded_in_maintenance_is_not_news() -> None:
    monitor = uuid.uuid4()
    rules = [rule(["degraded"], [CHAT])]
    actions = decide([change(monitor, "degraded", in_maintenance=True)], world(rules=rules))
    assert actions.messages == []


# --- maintenance -----------------------------------------------------------------------


def _window(**selectors: Any) -> MaintenanceWindow:
    return MaintenanceWindow(
        name="patching",
        starts_at=NOW - timedelta(minutes=5),
        ends_at=NOW + timedelta(hours=1),
        cron=None,
        timezone="UTC",
        monitor_ids=[str(m) for m in selectors.get("monitor_ids", [])],
        server_ids=[str(s) for s in selectors.get("server_ids", [])],
        tags=selectors.get("tags", {}),
        groups=selectors.get("groups", []),
    )


def test_a_window_over_the_server_holds_the_incident_without_a_message() -> None:
    db = server("db-1", tags={"role": "db"})
    monitor = uuid.uuid4()
    actions = decide(
        [change(monitor, "down", on=db)], world(db, windows=[_window(tags={"role": "db"})])
    )
    [incident] = actions.opened
    assert incident.held == "maintenance" and not incident.notified
    assert actions.messages == []
    assert notes(actions, incident.id) == ["opened", "held"]


def test_a_window_elsewhere_holds_nothing() -> None:
    db = server("db-1", tags={"role": "db"})
    actions = decide(
        [change(uuid.uuid4(), "down", on=db)], world(db, windows=[_window(tags={"role": "web"})])
    )
    assert actions.opened[0].held is None and len(actions.messages) == 1


def test_a_server_in_maintenance_or_torn_down_holds_its_monitors_alerts() -> None:
    for lifecycle in ("maintenance", "decommissioning"):
        resting = server("old-1", lifecycle=lifecycle)
        actions = decide([change(uuid.uuid4(), "down", on=resting)], world(resting))
        assert actions.opened[0].held == "maintenance", lifecycle
        assert actions.messages == []


def test_when_the_window_ends_a_monitor_still_down_is_news() -> None:
    web = server("web-1")
    still, back, covered = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    held = [
        open_incident(m, web, held="maintenance", notified=False) for m in (still, back, covered)
    ]
    actions = decide_maintenance_releases(
        held,
        world(
            web,
            monitors_now={
                still: now_is(still, "down", web),
                back: now_is(back, "up", web),
                covered: now_is(covered, "down", web, in_maintenance=True),
            },
        ),
    )
    released = {i.monitor_id: i for i in actions.changed}
    assert set(released) == {still, back}  # the covered one is still in its window
    assert released[still].held is None and released[still].notified
    assert released[back].held is None and not released[back].notified
    assert [m.key for m in actions.messages] == [f"i{held[0].id}"]


# --- upstream suppression --------------------------------------------------------------


def _chain() -> tuple[ServerOut, ServerOut, ServerOut, dict[uuid.UUID, list[uuid.UUID]]]:
    core, rack, host = server("core-1"), server("rack-1"), server("host-1")
    return core, rack, host, {host.id: [rack.id], rack.id: [core.id]}


def test_a_host_behind_a_failing_core_is_held_under_the_cores_incident() -> None:
    core, rack, host = (server(n) for n in ("core-1", "rack-1", "host-1"))
    graph = {host.id: [rack.id], rack.id: [core.id]}
    core_monitor, host_monitor = uuid.uuid4(), uuid.uuid4()
    core_incident = open_incident(core_monitor, core)
    actions = decide(
        [change(host_monitor, "down", on=host)],
        world(
            core,
            rack,
            host,
            upstream=graph,
            down_monitors={core.id: [core_monitor]},
            open_incidents={core_monitor: core_incident},
        ),
    )
    [incident] = actions.opened
    # Two levels up: the rack between them is healthy, the core is not.
    assert incident.held == "upstream" and incident.parent_id == core_incident.id
    assert actions.messages == []


def test_a_server_marked_down_counts_as_failing_without_a_monitor() -> None:
    core, rack, host, graph = _chain()
    core = core.model_copy(update={"health": "down"})
    actions = decide(
        [change(uuid.uuid4(), "down", on=host)], world(core, rack, host, upstream=graph)
    )
    [incident] = actions.opened
    assert incident.held == "upstream" and incident.parent_id is None


def test_the_upstream_going_down_later_in_the_same_batch_still_adopts_the_host() -> None:
    core, rack, host, graph = _chain()
    core_monitor, host_monitor = uuid.uuid4(), uuid.uuid4()
    actions = decide(
        [change(host_monitor, "down", on=host), change(core_monitor, "down", on=core)],
        # The writer set both statuses before alerting claimed the batch.
        world(core, rack, host, upstream=graph, down_monitors={core.id: [core_monitor]}),
    )
    by_monitor = {i.monitor_id: i for i in actions.opened}
    assert by_monitor[host_monitor].parent_id == by_monitor[core_monitor].id
    assert notes(actions, by_monitor[host_monitor].id) == ["opened", "held", "attached"]
    assert sent(actions) == [("DOWN: web", (PAGER,))]  # the core's, once


def test_the_upstream_recovering_releases_the_held_hosts_still_down() -> None:
    core, rack, host, graph = _chain()
    core_monitor, down_still, up_again = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    parent = open_incident(core_monitor, core)
    kids = [
        open_incident(m, host, held="upstream", parent_id=parent.id, notified=False)
        for m in (down_still, up_again)
    ]
    back = change(core_monitor, "up", frm="down", on=core)
    actions = decide(
        [back],
        world(
            core,
            rack,
            host,
            upstream=graph,
            open_incidents={core_monitor: parent},
            held_children={parent.id: kids},
            monitors_now={
                down_still: now_is(down_still, "down", host),
                up_again: now_is(up_again, "up", host),
            },
        ),
    )
    changed = {i.id: i for i in actions.changed}
    assert changed[parent.id].status == "resolved"
    assert all(changed[k.id].held is None and changed[k.id].parent_id is None for k in kids)
    # The core's recovery, and a DOWN for the host whose problem is its own.
    assert [(m.event, m.key) for m in actions.messages] == [
        ("recovered", f"t{back.id}"),
        ("down", f"i{kids[0].id}"),
    ]


def test_a_hold_whose_upstream_came_back_meanwhile_ends() -> None:
    core, rack, host, graph = _chain()
    monitor = uuid.uuid4()
    orphan = open_incident(monitor, host, held="upstream", notified=False)
    actions = decide(
        [],
        world(
            core,
            rack,
            host,
            upstream=graph,
            orphans=[orphan],
            monitors_now={monitor: now_is(monitor, "down", host)},
        ),
    )
    [released] = actions.changed
    assert released.held is None and released.notified
    assert notes(actions, orphan.id) == ["released", "notified"]


def test_a_cycle_free_walk_stops_at_ten_levels() -> None:
    chain = [server(f"s{n}") for n in range(13)]
    graph = {a.id: [b.id] for a, b in itertools.pairwise(chain)}
    far = uuid.uuid4()
    actions = decide(
        [change(uuid.uuid4(), "down", on=chain[0])],
        world(*chain, upstream=graph, down_monitors={chain[12].id: [far]}),
    )
    assert actions.opened[0].held is None  # 12 levels up is too far to hold for


# --- certificates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "heard"),
    [("22", "20", True), ("20", "19", False), ("15", "14", True), ("8", "-1", True)],
)
def test_certificate_alerts_fire_as_a_threshold_is_crossed(
    before: str, after: str, heard: bool
) -> None:
    rules = [rule(["certificate"], [CHAT])]
    t = change(uuid.uuid4(), after, frm=before, kind="certificate")
    actions = decide([t], world(rules=rules))
    assert bool(actions.messages) is heard
    if heard:
        title = actions.messages[0].title
        assert title.endswith("has expired") if after.startswith("-") else after in title
        assert actions.messages[0].payload["days_left"] == int(after)


def test_a_rules_own_certificate_days_replace_the_defaults() -> None:
    rules = [rule(["certificate"], [CHAT], certificate_days=[30]), rule(["certificate"], [PAGER])]
    actions = decide([change(uuid.uuid4(), "29", frm="31", kind="certificate")], world(rules=rules))
    assert sent(actions) == [("CERTIFICATE: web expires in 29 days", (CHAT,))]


# --- who hears what ----------------------------------------------------------------------


def test_rules_select_by_monitor_server_tag_and_group() -> None:
    web = server("web-1", tags={"env": "prod", "role": "web"}, groups=["frontends"])
    monitor = uuid.uuid4()
    rules = [
        rule(["down"], [PAGER], monitor_ids=[monitor]),
        rule(["down"], [CHAT], tags={"env": "prod", "role": None}),
        rule(["down"], [OFF], groups=["frontends"]),
        rule(["down"], [uuid.UUID(int=7)], tags={"env": "staging"}),
        rule(["down"], [uuid.UUID(int=8)], server_ids=[uuid.uuid4()]),
    ]
    channels = frozenset({PAGER, CHAT, OFF, uuid.UUID(int=7), uuid.UUID(int=8)})
    actions = decide(
        [change(monitor, "down", on=web)], world(web, rules=rules, enabled_channels=channels)
    )
    assert actions.messages[0].channel_ids == (PAGER, CHAT, OFF)


def test_a_location_gone_is_heard_by_fleet_wide_down_rules_only() -> None:
    web = server("web-1")
    rules = [rule(["down"], [PAGER]), rule(["down"], [CHAT], server_ids=[web.id])]
    news = [SimpleNamespace(name="ap-south", state="gone", since=NOW)]
    actions = decide_location_news(news, world(rules=rules))
    assert sent(actions) == [("LOCATION GONE: ap-south", (PAGER,))]


# --- reminders ---------------------------------------------------------------------------


def test_reminders_come_at_the_shortest_interval_of_the_rules_that_ask() -> None:
    web = server("web-1")
    rules = [
        rule(["down"], [PAGER], reminder_minutes=30),
        rule(["down"], [CHAT], reminder_minutes=60),
        rule(["down"], [OFF]),
    ]
    due = open_incident(uuid.uuid4(), web, last_notified_at=NOW - timedelta(minutes=31))
    recent = open_incident(uuid.uuid4(), web, last_notified_at=NOW - timedelta(minutes=10))
    actions = decide_reminders([due, recent], world(web, rules=rules))
    [reminded] = actions.changed
    assert reminded.id == due.id and reminded.reminders_sent == 1
    assert reminded.last_notified_at == NOW
    [message] = actions.messages
    assert message.title == "STILL DOWN: web is down" and message.key == f"r{due.id}:1"
    assert message.channel_ids == (PAGER, CHAT)


def test_no_reminder_without_a_rule_that_asks_for_one() -> None:
    due = open_incident(uuid.uuid4(), None, last_notified_at=NOW - timedelta(days=1))
    assert decide_reminders([due], world()) == Actions()


# --- purity ------------------------------------------------------------------------------


def test_deciding_changes_nothing_it_was_given() -> None:
    core, rack, host, graph = _chain()
    core_monitor, kid_monitor = uuid.uuid4(), uuid.uuid4()
    parent = open_incident(core_monitor, core)
    kid = open_incident(kid_monitor, host, held="upstream", parent_id=parent.id)
    given = world(
        core,
        rack,
        host,
        upstream=graph,
        open_incidents={core_monitor: parent},
        held_children={parent.id: [kid]},
        monitors_now={kid_monitor: now_is(kid_monitor, "down", host)},
    )
    before = copy.deepcopy((parent, kid))
    first = decide([change(core_monitor, "up", frm="down", on=core)], given)
    assert (parent, kid) == before
    # The same world decided twice gives the same answer.
    second = decide([change(core_monitor, "up", frm="down", on=core)], given)
    assert first.changed == second.changed
    assert (
        [m.event for m in first.messages]
        == [m.event for m in second.messages]
        == [
            "recovered",
            "down",
        ]
    )
