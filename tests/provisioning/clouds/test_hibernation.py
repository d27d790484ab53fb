"""Hibernation with a frozen clock: the periodic job's work is
`enqueue_due(now)`, called here with the moments a schedule names; the
jobs it queues then run for real against the fakes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from infrawatch.alerting import windows
from infrawatch.core.db import Database
from infrawatch.provisioning import hibernation
from tests.conftest import Clients
from tests.credentials.sshd import SshServer, ssh_server
from tests.provisioning.clouds.fakes import serve_fake
from tests.provisioning.clouds.helpers import account, made_server, vault_key, wait_job

# 20:00 and 07:00 in Berlin, weekdays.
STOP, START, ZONE = "0 20 * * 1-5", "0 7 * * 1-5", "Europe/Berlin"


def _berlin(day: datetime, at: time) -> datetime:
    return datetime.combine(day.date(), at, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


def _next_stop(after: datetime) -> datetime:
    """The first weekday 20:00 in Berlin after `after`, worked out by hand."""
    day = after.astimezone(ZoneInfo(ZONE))
    while day.weekday() > 4 or _berlin(day, time(20)) <= after:
        day += timedelta(days=1)
    return _berlin(day, time(20))


def _test_night(after: datetime) -> tuple[datetime, datetime]:
    """Half a minute past a weeknight's stop and past the next morning's start,
    both after `after` (the schedule's creation): a Monday to Thursday night,
    so the morning is a weekday too."""
    day = after.astimezone(ZoneInfo(ZONE)) + timedelta(days=1)
    while day.weekday() > 3:
        day += timedelta(days=1)
    evening = _berlin(day, time(20)) + timedelta(seconds=30)
    return evening, _berlin(day + timedelta(days=1), time(7)) + timedelta(seconds=30)


@pytest.fixture
def sshd() -> Iterator[SshServer]:
    with ssh_server() as server:
        yield server


async def _due(db: Database, now: datetime) -> int:
    async with db.unit_of_work() as session:
        return await hibernation.enqueue_due(session, now)


async def _jobs_of(api: Clients, kind: str) -> list[dict[str, object]]:
    listed = (await api.admin.get("/api/v1/jobs?type=provisioning.hibernate&limit=100")).json()
    return list(listed["items"])


async def _monitor_status(api: Clients, server: dict[str, str]) -> str:
    found = (await api.viewer.get(f"/api/v1/monitors?server_id={server['server_id']}")).json()
    (monitor,) = found["items"]
    return str(monitor["status"])


def test_hours_asleep_per_week_follow_the_crons() -> None:
    # Four weeknights of 11 h, and the weekend from Friday 20:00 to Monday 07:00.
    assert hibernation.asleep_hours_per_week(STOP, START, ZONE) == 4 * 11 + 59
    assert hibernation.asleep_hours_per_week("0 22 * * *", "0 6 * * *", "UTC") == 7 * 8
    # Across a daylight-saving change the week is measured on the calendar.
    assert 102 <= hibernation.asleep_hours_per_week(STOP, START, "America/New_York") <= 104


async def test_a_schedule_stops_and_starts_its_servers_and_holds_their_alerts(
    api: Clients, db: Database, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve_fake("digitalocean") as cloud:
        await account(api, cloud)
        await vault_key(api)
        dev = await made_server(api, "digitalocean", sshd.port, "dev-1", tags={"env": "dev"})
        prod = await made_server(api, "digitalocean", sshd.port, "prod-1", tags={"env": "prod"})
        r = await api.operator.post(
            "/api/v1/hibernation-schedules",
            json={
                "name": "nights",
                "q": "tag:env=dev",
                "stop": STOP,
                "start": START,
                "timezone": ZONE,
            },
        )
        assert r.status_code == 201, r.text
        schedule = r.json()
        assert schedule["servers"] == 1 and schedule["asleep_hours_per_week"] == 103
        assert schedule["estimated_hours_saved_per_week"] == 103
        assert datetime.fromisoformat(schedule["next_stop_at"]) == _next_stop(datetime.now(UTC))
        evening, morning = _test_night(datetime.now(UTC))
        # Moments before the schedule existed are not acted on.
        assert await _due(db, datetime.now(UTC) + timedelta(seconds=1)) == 0

        assert await _due(db, evening) == 1
        assert await _due(db, evening + timedelta(minutes=1)) == 0  # once per moment
        (job,) = await _jobs_of(api, "stop")
        done = await wait_job(api, str(job["id"]))
        assert done["status"] == "succeeded", done
        assert done["result"]["result"] == "asleep (stop)"
        node = cloud.nodes[dev["node_id"]]
        assert node.powered is False and cloud.nodes[prod["node_id"]].powered is True
        server = (await api.viewer.get(f"/api/v1/servers/{dev['server_id']}")).json()
        assert server["lifecycle"] == "maintenance"
        async with db.unit_of_work() as session:
            await windows.apply_windows(session)
        assert await _monitor_status(api, dev) == "maintenance"
        assert await _monitor_status(api, prod) != "maintenance"

        assert await _due(db, morning) == 1
        jobs = await _jobs_of(api, "start")
        waking = next(j for j in jobs if j["arguments"]["action"] == "start")
        done = await wait_job(api, str(waking["id"]))
        assert done["status"] == "succeeded", done
        assert node.powered is True
        server = (await api.viewer.get(f"/api/v1/servers/{dev['server_id']}")).json()
        assert server["lifecycle"] == "active"
        async with db.unit_of_work() as session:
            await windows.apply_windows(session)
        assert await _monitor_status(api, dev) != "maintenance"
        audit = (
            await api.admin.get(f"/api/v1/audit?object_id={dev['server_id']}&limit=100")
        ).json()
        actions = [r["action"] for r in audit["items"]]
        assert "server.hibernate" in actions and "server.wake" in actions
        shown = (await api.viewer.get(f"/api/v1/hibernation-schedules/{schedule['id']}")).json()
        assert shown["last_action"] == "start"


async def test_snapshot_mode_destroys_the_node_and_makes_it_again_from_the_snapshot(
    api: Clients, db: Database, sshd: SshServer
) -> None:
    async with serve_fake("vultr") as cloud:
        await account(api, cloud, hibernation="snapshot")
        await vault_key(api)
        dev = await made_server(api, "vultr", sshd.port, "dev-2")
        r = await api.operator.post(f"/api/v1/servers/{dev['server_id']}/hibernate")
        assert r.status_code == 202, r.text
        done = await wait_job(api, r.json()["job_id"])
        assert done["status"] == "succeeded", done
        assert done["result"]["result"] == "asleep (snapshot)"
        assert cloud.live() == [] and len(cloud.snapshots) == 1
        # Asked again (or a retried attempt): it finishes, it does not fail.
        again = await api.operator.post(f"/api/v1/servers/{dev['server_id']}/hibernate")
        redone = await wait_job(api, again.json()["job_id"])
        assert redone["status"] == "succeeded", redone
        assert cloud.live() == [] and len(cloud.snapshots) == 1
        r = await api.operator.post(f"/api/v1/servers/{dev['server_id']}/wake")
        done = await wait_job(api, r.json()["job_id"])
        assert done["status"] == "succeeded", done
        (node,) = cloud.live()
        assert node.image.startswith("snapshot:snap-") and cloud.snapshots == {}
        build = (await api.viewer.get(f"/api/v1/server-builds/{dev['id']}")).json()
        assert build["node_id"] == f"vultr-{node.id}" != dev["node_id"]
        server = (await api.viewer.get(f"/api/v1/servers/{dev['server_id']}")).json()
        assert (
            server["lifecycle"] == "active" and server["attributes"]["node_id"] == build["node_id"]
        )
        host_keys = (
            await api.operator.get(f"/api/v1/ssh-keys/host-keys?server_id={dev['server_id']}")
        ).json()
        assert len(host_keys) == 1  # pinned again after the forget
        # Waking what is awake, or putting a server not made by a provider to sleep, is said.
        again = await api.operator.post(f"/api/v1/servers/{dev['server_id']}/wake")
        assert (await wait_job(api, again.json()["job_id"]))["result"]["result"] == "awake already"


async def test_bad_schedules_name_the_field(api: Clients) -> None:
    body = {"name": "n", "q": "tag:env=dev", "stop": STOP, "start": START}
    cases = [
        ({"stop": "every evening"}, ["body", "stop"]),
        ({"start": "61 * * * *"}, ["body", "start"]),
        ({"timezone": "Mars/Olympus"}, ["body", "timezone"]),
        ({"q": None}, ["body", "server_id"]),
        ({"stop": "* * * * *"}, ["body", "stop"]),  # every minute is no sleep
        ({"start": "0 0 30 2 *"}, ["body", "start"]),  # never
        ({"q": "tag:("}, ["body", "q"]),
    ]
    for change, loc in cases:
        r = await api.operator.post("/api/v1/hibernation-schedules", json={**body, **change})
        assert r.status_code == 422, (change, r.text)
        assert r.json()["detail"][0]["loc"][: len(loc)] == loc, (change, r.json())
    missing = await api.operator.post(
        "/api/v1/hibernation-schedules",
        json={**body, "q": None, "server_id": "00000000-0000-0000-0000-000000000000"},
    )
    assert missing.status_code == 404
    assert (await api.operator.post("/api/v1/hibernation-schedules", json=body)).status_code == 201
    assert (await api.operator.post("/api/v1/hibernation-schedules", json=body)).status_code == 409
    assert (await api.viewer.post("/api/v1/hibernation-schedules", json=body)).status_code == 403
    assert (await api.viewer.get("/api/v1/hibernation-schedules")).json()[0]["servers"] == 0
