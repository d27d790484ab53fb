"""Provider accounts: admins only, credentials checked per kind, stored
encrypted and never returned or audited; the provider's answers (and its
refusals, as 502 in its own words) through the API."""

from __future__ import annotations

from sqlalchemy import text

from infrawatch.core.db import Database
from tests.conftest import Clients
from tests.provisioning.clouds.fakes import serve_fake
from tests.provisioning.clouds.helpers import account


async def test_an_account_keeps_its_token_encrypted_and_never_shows_it(
    api: Clients, db: Database
) -> None:
    async with serve_fake("digitalocean", token="dop_v1_s3cr3t-t0ken") as cloud:
        account_id = await account(api, cloud)
        shown = (await api.admin.get(f"/api/v1/provider-accounts/{account_id}")).json()
        assert shown["credential_fields"] == ["token"] and shown["bills_when_stopped"] is True
        assert "s3cr3t" not in str(shown)
        listed = (await api.admin.get("/api/v1/provider-accounts")).text
        assert "s3cr3t" not in listed
        async with db.unit_of_work(write=False) as session:
            stored = (
                await session.execute(text("SELECT credentials_encrypted FROM provider_accounts"))
            ).scalar_one()
            audited = (await session.execute(text("SELECT * FROM audit_records"))).all()
        assert "s3cr3t" not in stored and stored.startswith("v1")
        assert "s3cr3t" not in str(audited) and "provider_account.create" in str(audited)
        # The provider answers through the account.
        regions = await api.admin.get(f"/api/v1/provider-accounts/{account_id}/regions")
        assert (
            regions.status_code == 200 and {"id": "fra1", "name": "Frankfurt 1"} in regions.json()
        )
        sizes = (await api.admin.get(f"/api/v1/provider-accounts/{account_id}/sizes")).json()
        assert sizes[0]["hourly_price"] == 0.00893
        assert (await api.admin.get(f"/api/v1/provider-accounts/{account_id}/nodes")).json() == []
        # New credentials replace the old; a wrong token is the provider's 401, as a 502.
        r = await api.admin.patch(
            f"/api/v1/provider-accounts/{account_id}", json={"credentials": {"token": "nope"}}
        )
        assert r.status_code == 200, r.text
        refused = await api.admin.get(f"/api/v1/provider-accounts/{account_id}/regions")
        assert refused.status_code == 502
        assert "Unable to authenticate you" in refused.json()["detail"]
        assert cloud.requests[-1] == ("GET", "/regions")


async def test_accounts_are_for_admins_and_bad_input_names_the_field(api: Clients) -> None:
    body = {"name": "do", "kind": "digitalocean", "credentials": {"token": "t"}}
    assert (await api.operator.post("/api/v1/provider-accounts", json=body)).status_code == 403
    assert (await api.operator.get("/api/v1/provider-accounts")).status_code == 403
    missing = await api.admin.post("/api/v1/provider-accounts", json={**body, "credentials": {}})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "credentials", "token"]
    extra = await api.admin.post(
        "/api/v1/provider-accounts", json={**body, "credentials": {"token": "t", "password": "x"}}
    )
    assert extra.status_code == 422 and "password" in str(extra.json())
    ec2 = await api.admin.post(
        "/api/v1/provider-accounts",
        json={"name": "aws", "kind": "ec2", "credentials": {"access_key_id": "AKIA"}},
    )
    assert ec2.status_code == 422 and "secret_access_key" in str(ec2.json())
    for bad in ({"kind": "azure"}, {"api_url": "file:///etc/passwd"}, {"rate_per_second": 0}):
        r = await api.admin.post("/api/v1/provider-accounts", json={**body, **bad})
        assert r.status_code == 422, (bad, r.text)
    assert (await api.admin.post("/api/v1/provider-accounts", json=body)).status_code == 201
    again = await api.admin.post("/api/v1/provider-accounts", json=body)
    assert again.status_code == 409 and "exists" in again.json()["detail"]
    assert (await api.admin.get("/api/v1/provider-accounts")).json()[0]["name"] == "do"
