"""Incidents page newest first with the id breaking ties: an outage opens
many incidents in the same instant, and none is skipped or repeated at a
page's edge."""

from __future__ import annotations

import uuid

from sqlalchemy import insert

from infrawatch.alerting.models import Incident
from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database
from tests.conftest import Clients


async def test_incidents_opened_in_one_instant_page_without_gaps(
    api: Clients, db: Database
) -> None:
    at = utcnow()
    made = []
    async with db.unit_of_work() as session:
        for n in range(7):
            incident_id = uuid.uuid4()
            made.append(str(incident_id))
            await session.execute(
                insert(Incident.__table__),
                {
                    "id": incident_id,
                    "title": f"outage {n}",
                    "status": "open",
                    "opened_at": at,
                    "notified": False,
                    "reminders_sent": 0,
                },
            )
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.viewer.get("/api/v1/incidents", params=params)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 7
    assert seen == sorted(made, reverse=True)  # the tie broken by id

    crafted = await api.viewer.get("/api/v1/incidents", params={"cursor": "not-a-cursor"})
    assert crafted.status_code == 422 and "cursor" in crafted.text
