"""Named secrets: write-only through the API, admin-managed, and the
scheduled rotation that the periodic job starts."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from infrawatch.core.clock import utcnow
from infrawatch.core.context import cli_context
from infrawatch.core.db import Database
from infrawatch.credentials import keys as credential_keys
from infrawatch.credentials import repository, tasks
from infrawatch.credentials import stored_secrets as credential_secrets
from infrawatch.credentials.schemas import SshKeyCreate
from infrawatch.jobs import service as jobs
from tests.credentials.test_ssh_keys import wait_job


async def test_secrets_are_write_only_and_admin_managed(api: Any, app: Any) -> None:
    created = await api.admin.post(
        "/api/v1/secrets", json={"name": "db-password", "value": "hunter2", "description": "pg"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert "hunter2" not in created.text and body["value_length"] == 7
    assert (
        await api.operator.post("/api/v1/secrets", json={"name": "x", "value": "y"})
    ).status_code == 403
    listed = await api.operator.get("/api/v1/secrets")
    assert listed.status_code == 200 and [s["name"] for s in listed.json()] == ["db-password"]
    assert "hunter2" not in listed.text
    assert (await api.viewer.get("/api/v1/secrets")).status_code == 403
    duplicate = await api.admin.post("/api/v1/secrets", json={"name": "db-password", "value": "z"})
    assert duplicate.status_code == 409
    empty = await api.admin.post("/api/v1/secrets", json={"name": "e", "value": ""})
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body", "value"]

    updated = await api.admin.patch(
        f"/api/v1/secrets/{body['id']}", json={"value": "correct horse"}
    )
    assert updated.status_code == 200 and updated.json()["version"] == 2
    runtime = app.state.runtime
    async with runtime.db.unit_of_work(write=False) as session:
        assert (
            await credential_secrets.reveal_secret(session, runtime.keyring, "db-password")
            == "correct horse"
        )
    audit = (await api.admin.get(f"/api/v1/audit?object_id={body['id']}")).text
    assert "hunter2" not in audit and "correct horse" not in audit
    assert (await api.admin.delete(f"/api/v1/secrets/{body['id']}")).status_code == 204
    assert (await api.admin.get(f"/api/v1/secrets/{body['id']}")).status_code == 404


async def test_a_key_whose_rotation_interval_ran_out_gets_a_rotation_job(
    api: Any, app: Any, db: Database
) -> None:
    runtime = app.state.runtime
    async with db.unit_of_work() as session:
        key = await credential_keys.create_key(
            session,
            cli_context(),
            SshKeyCreate(name="cron", rotation_interval_days=7),
            runtime.keyring,
        )
        assert key.next_rotation_at is not None
        stored = await repository.get_key(session, key.id)
        assert stored is not None
        stored.next_rotation_at = utcnow() - timedelta(minutes=1)
        job, _ = await jobs.enqueue(session, None, tasks.ROTATIONS_DUE, {})
    finished = await wait_job(api, str(job.id))
    assert finished["status"] == "succeeded", finished
    # The app's own worker runs the same periodic job at start: whichever
    # run saw the key first started its rotation, the other found it there.
    jobs_of_key = (await api.viewer.get(f"/api/v1/jobs?subject_id={key.id}")).json()
    (rotation_job,) = jobs_of_key["items"]
    assert rotation_job["type"] == "ssh.rotate"
    rotation = await wait_job(api, rotation_job["id"])
    # No server is assigned: the rotation swaps the keys in the vault.
    assert rotation["status"] == "succeeded" and rotation["result"]["servers"] == []
    old = (await api.viewer.get(f"/api/v1/ssh-keys/{key.id}")).json()
    assert old["status"] == "retired"
    new = (await api.viewer.get(f"/api/v1/ssh-keys/{old['replaced_by_id']}")).json()
    assert new["status"] == "active" and new["rotation_interval_days"] == 7
    assert uuid.UUID(new["id"]) != key.id
