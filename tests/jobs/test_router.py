"""The jobs API: list and filter, read, follow the event log, cancel."""

from __future__ import annotations

from typing import Any

from tests.monitoring.helpers import create_server


async def test_jobs_are_listed_followed_and_cancelled_through_the_api(api: Any) -> None:
    server_id = await create_server(api, "app-1")
    key = (await api.admin.post("/api/v1/ssh-keys", json={"name": "k"})).json()
    await api.admin.post(
        f"/api/v1/ssh-keys/{key['id']}/assignments",
        json={"server_id": server_id, "username": "deploy"},
    )
    started = await api.operator.post(
        f"/api/v1/ssh-keys/{key['id']}/test",
        json={"server_id": server_id},
        headers={"Idempotency-Key": "test-1"},
    )
    assert started.status_code == 202 and started.json()["created"] is True
    repeated = await api.operator.post(
        f"/api/v1/ssh-keys/{key['id']}/test",
        json={"server_id": server_id},
        headers={"Idempotency-Key": "test-1"},
    )
    assert repeated.json()["job_id"] == started.json()["job_id"]
    assert repeated.json()["created"] is False
    job_id = started.json()["job_id"]

    listed = (await api.viewer.get(f"/api/v1/jobs?subject_id={key['id']}")).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == job_id
    assert listed["items"][0]["type"] == "ssh.connection_test"
    assert (await api.viewer.get("/api/v1/jobs?status=bogus")).status_code == 422
    page = (await api.viewer.get("/api/v1/jobs?limit=1&sort=-created_at")).json()
    assert len(page["items"]) == 1

    events = (await api.viewer.get(f"/api/v1/jobs/{job_id}/events")).json()
    assert events["events"][0]["message"] == "queued" and events["events"][0]["seq"] == 1
    later = (
        await api.viewer.get(f"/api/v1/jobs/{job_id}/events?after={events['last_seq']}")
    ).json()
    assert all(e["seq"] > events["last_seq"] for e in later["events"])
    assert (await api.viewer.post(f"/api/v1/jobs/{job_id}/cancel")).status_code == 403
    assert (
        await api.viewer.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000")
    ).status_code == 404


async def test_cancelling_a_finished_job_is_a_conflict(api: Any) -> None:
    started = await api.operator.post(
        "/api/v1/discovery/scans", json={"cidr": "127.0.2.0/30", "ports": [9]}
    )
    job_id = started.json()["job_id"]
    from tests.credentials.test_ssh_keys import wait_job

    job = await wait_job(api, job_id)
    assert job["status"] == "succeeded"
    response = await api.operator.post(f"/api/v1/jobs/{job_id}/cancel")
    assert response.status_code == 409 and "already ended" in response.json()["detail"]
