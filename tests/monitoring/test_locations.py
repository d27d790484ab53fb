"""Monitors checked from several locations, decided by quorum: engines in
three locations, each sending its checks from its own address to a target
that fails for some of them; then one location's engine goes away."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database
from infrawatch.core.events import EventBus
from infrawatch.monitoring import quorum
from infrawatch.monitoring.engine.runner import Engine, EngineOptions
from infrawatch.monitoring.schemas import LocationName
from tests.alerting.receiver import Receiver, receiving
from tests.alerting.test_flow import _channel_and_rule, running_alerting
from tests.conftest import Clients
from tests.monitoring.helpers import create_http_monitor, eventually
from tests.monitoring.locations import SOURCES, PerSourceTarget
from tests.monitoring.servers import serve_http

LEASE = 3.0
ALL = list(SOURCES)


# --- the rule, on its own ------------------------------------------------------------


class Word:
    def __init__(self, location: str, state: str, error: str | None = None) -> None:
        self.location, self.state, self.error = location, state, error
        self.latency_ms, self.checked_at = 12.0, utcnow()


def words(**states: str) -> dict[str, Any]:
    return {
        loc.replace("_", "-"): Word(loc.replace("_", "-"), s, "HTTP 503")
        for loc, s in states.items()
    }


def test_down_needs_a_majority_of_the_locations_that_are_alive() -> None:
    live = set(ALL)
    seen = words(eu_west="up", us_east="down", ap_south="up")
    one = quorum.decide(ALL, None, seen, live)
    assert one is not None and one.state == "degraded"
    assert one.reason == "down from us-east (HTTP 503); up from eu-west (12 ms), ap-south (12 ms)"
    seen = words(eu_west="up", us_east="down", ap_south="down")
    two = quorum.decide(ALL, None, seen, live)
    assert two is not None and two.state == "down"
    # An explicit quorum of 3 wants all three.
    three = quorum.decide(ALL, 3, seen, live)
    assert three is not None and three.state == "degraded"


def test_a_location_without_workers_counts_neither_way() -> None:
    seen = words(eu_west="up", us_east="down", ap_south="down")
    verdict = quorum.decide(ALL, None, seen, {"eu-west", "us-east"})
    # Two counted: one down is not a majority of two.
    assert verdict is not None and verdict.state == "degraded"
    assert verdict.counted == ("eu-west", "us-east")
    assert verdict.reason.endswith("not counted: ap-south (no live worker)")
    # A quorum larger than what is left asks for all that is left.
    assert quorum.needed(3, 2) == 2 and quorum.needed(None, 1) == 1
    assert quorum.decide(ALL, None, seen, set()) is None  # nobody looking: no verdict
    pending = words(eu_west="pending")
    assert quorum.decide(["eu-west"], None, pending, {"eu-west"}) is None


def test_the_api_pattern_and_the_engine_pattern_are_one() -> None:
    metadata = LocationName.__metadata__[0]  # type: ignore[attr-defined]
    assert metadata.pattern == quorum.LOCATION_NAME.pattern


# --- the API ---------------------------------------------------------------------------


async def test_bad_locations_are_refused_naming_the_field(api: Clients) -> None:
    base = {"type": "http", "target": "http://127.0.0.1:9/", "name": "m"}
    cases = [
        ({"locations": ["EU West"]}, "locations"),
        ({"locations": ["eu-west", "eu-west"]}, "locations"),
        ({"locations": ["eu-west"], "quorum": 2}, "quorum"),
        ({"locations": ["a"] * 17}, "locations"),
        ({"quorum": 0}, "quorum"),
    ]
    for extra, field in cases:
        response = await api.operator.post("/api/v1/monitors", json={**base, **extra})
        assert response.status_code in (400, 422), (extra, response.text)
        assert field in response.text, (extra, response.text)
    push = await api.operator.post(
        "/api/v1/monitors", json={"name": "p", "type": "push", "locations": ["eu-west"]}
    )
    assert push.status_code == 422 and "locations" in push.text, push.text
    assert (await api.viewer.get("/api/v1/monitors")).json()["total"] == 0  # nothing half-made

    created = await api.operator.post(
        "/api/v1/monitors", json={**base, "locations": ["eu-west", "us-east"], "quorum": 2}
    )
    assert created.status_code == 201, created.text
    monitor = created.json()
    assert monitor["locations"] == ["eu-west", "us-east"] and monitor["quorum"] == 2
    # Fewer locations than the quorum is refused on an edit too, and changes nothing.
    edit = await api.operator.patch(
        f"/api/v1/monitors/{monitor['id']}", json={"locations": ["eu-west"]}
    )
    assert edit.status_code == 422 and "quorum" in edit.text, edit.text
    again = (await api.viewer.get(f"/api/v1/monitors/{monitor['id']}")).json()
    assert again["locations"] == ["eu-west", "us-east"]
    # Back to "anywhere": quorum null, locations empty.
    cleared = await api.operator.patch(
        f"/api/v1/monitors/{monitor['id']}", json={"locations": [], "quorum": None}
    )
    assert cleared.status_code == 200 and cleared.json()["locations"] == [], cleared.text
    assert (await api.viewer.get(f"/api/v1/monitors/{monitor['id']}/locations")).json() == []
    assert (await api.operator.delete("/api/v1/locations/nowhere")).status_code == 404


# --- engines in three locations --------------------------------------------------------


class Engines:
    """Engines in several locations, each of which can be stopped alone."""

    def __init__(self, db: Database, bus: EventBus) -> None:
        self.db, self.bus = db, bus
        self.running: dict[str, tuple[Engine, asyncio.Task[None]]] = {}

    async def start(self, location: str) -> Engine:
        engine = Engine(
            self.db,
            self.bus,
            EngineOptions(
                location=location,
                source_address=SOURCES[location],
                lease_seconds=LEASE,
                flush_seconds=0.1,
                reconcile_seconds=0.5,
                join_seconds=0.0,
            ),
        )
        task = asyncio.create_task(engine.run())
        self.running[location] = (engine, task)
        await asyncio.wait_for(engine.ready.wait(), 15)
        return engine

    async def stop(self, location: str) -> None:
        _, task = self.running.pop(location)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def tracking(self, monitor_id: str) -> list[str]:
        return [
            loc
            for loc, (engine, _) in self.running.items()
            if uuid.UUID(monitor_id) in engine.tracked
        ]


@contextlib.asynccontextmanager
async def engines_in(db: Database, bus: EventBus, locations: list[str]) -> AsyncIterator[Engines]:
    engines = Engines(db, bus)
    try:
        await asyncio.gather(*(engines.start(loc) for loc in locations))
        yield engines
    finally:
        for loc in list(engines.running):
            await engines.stop(loc)


async def _state(api: Clients, monitor_id: str) -> str:
    return str((await api.viewer.get(f"/api/v1/monitors/{monitor_id}")).json()["status"])


async def _transitions(api: Clients, monitor_id: str) -> list[dict[str, Any]]:
    response = await api.viewer.get(f"/api/v1/monitors/{monitor_id}/transitions")
    return list(reversed(response.json()))  # oldest first


async def test_three_locations_decide_by_quorum_and_a_gone_one_is_not_counted(
    api: Clients, app: Any, db: Database
) -> None:
    async with receiving() as receiver:
        await _quorum_flow(api, app, db, receiver)


async def _quorum_flow(api: Clients, app: Any, db: Database, receiver: Receiver) -> None:
    target = PerSourceTarget()
    bus = app.state.runtime.bus
    await _channel_and_rule(api, receiver, events=["down", "recovered", "degraded"])
    async with serve_http(target.app()) as (_, port):
        shared = await create_http_monitor(api, f"http://127.0.0.1:{port}/", failure_threshold=1)
        monitor = await create_http_monitor(
            api, f"http://127.0.0.1:{port}/", failure_threshold=1, locations=ALL
        )
        async with (
            running_alerting(app),
            engines_in(db, bus, ALL) as engines,
        ):
            await eventually(lambda: _is(api, monitor, "up"), timeout=20)
            await eventually(lambda: _all_spoke(api, monitor, 3))
            # Each location checked from its own address; the shared monitor by one engine.
            assert set(SOURCES.values()) <= target.seen
            # The any-location pool's shards are taken a moment after the located ones.
            await eventually(lambda: _one_engine(engines, shared), timeout=LEASE * 2)
            assert len(engines.tracking(shared)) == 1, "no locations: checked from one place"
            assert sorted(engines.tracking(monitor)) == sorted(ALL)

            target.fail("us-east")
            await eventually(lambda: _is(api, monitor, "degraded"))
            last = (await _transitions(api, monitor))[-1]
            assert last["to_state"] == "degraded" and "down from us-east" in last["reason"], last
            per_location = {
                w["location"]: w
                for w in (await api.viewer.get(f"/api/v1/monitors/{monitor}/locations")).json()
            }
            assert per_location["us-east"]["state"] == "down"
            assert per_location["eu-west"]["state"] == "up" and per_location["eu-west"]["counted"]

            target.fail("us-east", "ap-south")
            await eventually(lambda: _is(api, monitor, "down"))
            last = (await _transitions(api, monitor))[-1]
            assert "down from us-east" in last["reason"] and "ap-south" in last["reason"], last
            await eventually(lambda: _received(receiver, "DOWN"))

            # ap-south's engine goes away: its "down" no longer counts, and one
            # of the two left is not a majority of two.
            await engines.stop("ap-south")
            await eventually(lambda: _is(api, monitor, "degraded"), timeout=LEASE * 4)
            last = (await _transitions(api, monitor))[-1]
            assert "not counted: ap-south (no live worker)" in last["reason"], last
            # The monitors' writers saw it first; the location watcher within a moment.
            await eventually(lambda: _location_is(api, "ap-south", "gone"))
            gone = {p["name"]: p for p in (await api.viewer.get("/api/v1/locations")).json()}
            assert gone["ap-south"]["live_workers"] == 0
            assert gone["eu-west"]["state"] == "up" and gone["eu-west"]["live_workers"] == 1
            await eventually(lambda: _received(receiver, "LOCATION GONE: ap-south"))
            location_alert = next(
                r for r in receiver.on("/alerts") if r.json["title"].startswith("LOCATION")
            )
            assert "ap-south" in location_alert.json["message"]

            target.fail()
            await eventually(lambda: _is(api, monitor, "up"))
        results = (await api.viewer.get(f"/api/v1/monitors/{monitor}/results")).json()
        assert {r["location"] for r in results["items"]} == set(ALL)
        chain = await _transitions(api, monitor)
        for earlier, later in itertools.pairwise(chain):
            assert later["from_state"] == earlier["to_state"], chain
    # Checked from one place at a time (whichever engine held its shard):
    # one state at a time, whatever that place saw.
    shared_chain = await _transitions(api, shared)
    for earlier, later in itertools.pairwise(shared_chain):
        assert later["from_state"] == earlier["to_state"], shared_chain


async def test_a_forgotten_location_drops_its_word(api: Clients, app: Any, db: Database) -> None:
    target = PerSourceTarget()
    bus = app.state.runtime.bus
    async with serve_http(target.app()) as (_, port):
        monitor = await create_http_monitor(
            api, f"http://127.0.0.1:{port}/", failure_threshold=1, locations=["eu-west", "us-east"]
        )
        async with engines_in(db, bus, ["eu-west", "us-east"]) as engines:
            await eventually(lambda: _is(api, monitor, "up"), timeout=20)
            # The monitor can be up on eu-west's word before us-east is registered.
            await eventually(lambda: _location_is(api, "us-east", "up"), timeout=LEASE * 2)
            # And each place has had its word on the monitor (a loaded machine
            # can leave one place's first check behind the other's).
            await eventually(
                lambda: _words_from(api, monitor, {"eu-west", "us-east"}), timeout=LEASE * 2
            )
            refused = await api.operator.delete("/api/v1/locations/us-east")
            assert refused.status_code == 409 and "live worker" in refused.text, refused.text
            await engines.stop("us-east")

            await eventually(lambda: _location_is(api, "us-east", "gone"), timeout=LEASE * 4)
            forgotten = await api.operator.delete("/api/v1/locations/us-east")
            assert forgotten.status_code == 204, forgotten.text
        names = [p["name"] for p in (await api.viewer.get("/api/v1/locations")).json()]
        assert "us-east" not in names
        seen = (await api.viewer.get(f"/api/v1/monitors/{monitor}/locations")).json()
        assert [w["location"] for w in seen] == ["eu-west"]
        audit = (await api.admin.get("/api/v1/audit", params={"action": "location.forget"})).json()
        assert audit["items"], audit


async def _one_engine(engines: Any, monitor_id: str) -> bool:
    return len(engines.tracking(monitor_id)) == 1


async def _all_spoke(api: Clients, monitor_id: str, count: int) -> bool:
    seen = (await api.viewer.get(f"/api/v1/monitors/{monitor_id}/locations")).json()
    return len(seen) == count


async def _words_from(api: Clients, monitor_id: str, places: set[str]) -> bool:
    seen = (await api.viewer.get(f"/api/v1/monitors/{monitor_id}/locations")).json()
    return {w["location"] for w in seen} == places


async def _location_is(api: Clients, name: str, state: str) -> bool:
    found = {p["name"]: p for p in (await api.viewer.get("/api/v1/locations")).json()}
    return bool(found.get(name, {}).get("state") == state)


async def _is(api: Clients, monitor_id: str, state: str) -> bool:
    return await _state(api, monitor_id) == state


async def _received(receiver: Receiver, prefix: str) -> bool:
    return any(r.json["title"].startswith(prefix) for r in receiver.on("/alerts"))
