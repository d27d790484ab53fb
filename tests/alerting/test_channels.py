from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import text

from infrawatch.alerting.senders import SIGNATURE_HEADER
from tests.alerting.receiver import receiving
from tests.conftest import Clients

SECRET = "a-signing-secret-of-some-length"


async def test_a_channel_never_shows_its_url_and_stores_it_encrypted(api: Clients, db: Any) -> None:
    url = "json://127.0.0.1:9/hook?token=supersecrettoken123"
    created = await api.operator.post(
        "/api/v1/notification-channels", json={"name": "ops", "url": url}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url_hint"] == "json://127.0.0.1" and "supersecret" not in created.text
    listed = await api.viewer.get("/api/v1/notification-channels")
    assert "supersecret" not in listed.text
    async with db.unit_of_work(write=False) as session:
        row = (await session.execute(text("SELECT * FROM notification_channels"))).one()
        audit = (await session.execute(text("SELECT changes FROM audit_records"))).all()
    assert "supersecret" not in " ".join(str(v) for v in row)
    assert "supersecret" not in " ".join(str(v) for v in audit)


async def test_an_unknown_apprise_url_is_refused_naming_the_field(api: Clients) -> None:
    response = await api.operator.post(
        "/api/v1/notification-channels", json={"name": "x", "url": "nosuchservice://abc"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "url"]


async def test_send_test_goes_through_apprise_json_to_a_local_receiver(api: Clients) -> None:
    async with receiving() as receiver:
        channel = (
            await api.operator.post(
                "/api/v1/notification-channels",
                json={"name": "json", "url": f"json://{receiver.base}/apprise"},
            )
        ).json()
        result = await api.operator.post(f"/api/v1/notification-channels/{channel['id']}/test")
    assert result.json() == {"ok": True, "error": None}
    [message] = receiver.on("/apprise")
    assert message.json["title"] == "InfraWatch test notification"


async def test_the_signed_webhook_carries_a_valid_hmac(api: Clients) -> None:
    async with receiving() as receiver:
        channel = (
            await api.operator.post(
                "/api/v1/notification-channels",
                json={
                    "name": "hook",
                    "kind": "webhook",
                    "url": f"http://{receiver.base}/signed",
                    "secret": SECRET,
                },
            )
        ).json()
        assert channel["has_secret"] is True
        result = await api.operator.post(f"/api/v1/notification-channels/{channel['id']}/test")
    assert result.json()["ok"] is True
    [message] = receiver.on("/signed")
    expected = "sha256=" + hmac.new(SECRET.encode(), message.raw, hashlib.sha256).hexdigest()
    assert message.headers[SIGNATURE_HEADER] == expected
    assert message.json["event"] == "test"


async def test_a_failing_channel_test_reports_the_reason(api: Clients) -> None:
    async with receiving() as receiver:
        receiver.fail_next = 5
        channel = (
            await api.operator.post(
                "/api/v1/notification-channels",
                json={"name": "bad", "kind": "webhook", "url": f"http://{receiver.base}/x"},
            )
        ).json()
        result = (
            await api.operator.post(f"/api/v1/notification-channels/{channel['id']}/test")
        ).json()
    assert result["ok"] is False and "HTTP 500" in result["error"]


async def test_viewers_cannot_manage_channels(api: Clients) -> None:
    response = await api.viewer.post(
        "/api/v1/notification-channels", json={"name": "x", "url": "json://127.0.0.1/"}
    )
    assert response.status_code == 403
