"""Stacks on a real host: each is hardened, installed from the distribution
through the lab's apt proxy, and serves its page."""

from __future__ import annotations

import http.client

import asyncssh
import pytest

from infrawatch.provisioning.lab.hosts import LabHost
from tests.conftest import Clients
from tests.provisioning.test_hardening import register, wait_for_run

EXPECTED = {
    "lamp": "InfraWatch LAMP stack on shop.example.test: PHP 8.2",
    "django": "InfraWatch Django stack on shop.example.test: database shop ok",
    "rails": "InfraWatch Rails stack on shop.example.test: database shop ok",
}


def page(address: str, host_header: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection(address, 80, timeout=10)
    try:
        connection.request("GET", "/", headers={"Host": host_header})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


# Each stack on one database: the database's part of a run is the same for
# every run and is covered on both by the other tests; the hosts' part is
# what a stack adds, and costs minutes.
@pytest.mark.hosts
@pytest.mark.parametrize(
    ("backend", "stack"),
    [("sqlite", "lamp"), ("postgresql", "django"), ("sqlite", "rails")],
    indirect=["backend"],
)
async def test_a_stack_hardens_the_host_and_serves_its_page(
    api: Clients, fresh_host: LabHost, lab_key: asyncssh.SSHKey, stack: str
) -> None:
    server_id = await register(api, fresh_host, lab_key, f"{stack}-1")
    r = await api.operator.post(
        "/api/v1/provisioning/runs",
        json={
            "servers": [server_id],
            "stack": stack,
            "vars": {"domain": "shop.example.test", "db_name": "shop"},
        },
    )
    assert r.status_code == 202, r.text
    assert r.json()["snapshot"] is True  # stacks snapshot first by default
    run = await wait_for_run(api, r.json()["id"], timeout=900)
    assert run["status"] == "succeeded", "\n".join(
        map(str, [run["error"], run["hosts"], *run.get("log", [])])
    )
    assert run["hosts"][0]["done_roles"][-1] == stack
    status, body = page(fresh_host.address, "shop.example.test")
    assert status == 200 and EXPECTED[stack] in body, (status, body)
    if stack == "lamp":
        assert "database shop ok" in body


async def test_stacks_are_listed_with_their_forms_and_bad_variables_name_the_field(
    api: Clients,
) -> None:
    r = await api.viewer.get("/api/v1/provisioning/stacks")
    assert r.status_code == 200
    forms = {s["name"]: s["form"] for s in r.json()}
    assert {"lamp", "django", "rails"} <= set(forms)
    assert forms["lamp"]["required"] == ["domain"]
    r = await api.admin.post("/api/v1/servers", json={"name": "s1", "ip_address": "127.0.0.1"})
    server_id = r.json()["id"]
    for body, loc in [
        ({"stack": "lamp", "vars": {}}, ["body", "vars", "domain"]),
        ({"stack": "lamp", "vars": {"domain": "bad domain!"}}, ["body", "vars", "domain"]),
        (
            {"stack": "django", "vars": {"domain": "a.test", "db_name": "X-1"}},
            ["body", "vars", "db_name"],
        ),
        ({"stack": "nope"}, ["body", "stack"]),
        ({"stack": "lamp", "roles": ["base"], "vars": {"domain": "a.test"}}, ["body", "roles"]),
    ]:
        r = await api.operator.post(
            "/api/v1/provisioning/runs", json={"servers": [server_id], **body}
        )
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"][0]["loc"] == loc, (body, r.json())
