"""A real ACME run: the certbot role asks Pebble (on the lab bridge) for a
certificate for a lab host, Pebble validates it over HTTP-01, and the renew
timer is there. Let's Encrypt itself cannot be reached here."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from infrawatch.provisioning.lab.hosts import LabHost
from tests.conftest import Clients
from tests.provisioning.conftest import Acme, ssh_to
from tests.provisioning.test_hardening import register, wait_for_run

pytestmark = pytest.mark.hosts
DOMAIN = "secure.example.test"


async def test_certbot_gets_a_certificate_from_pebble_and_sets_up_renewals(
    api: Clients, acme: Acme, fresh_host: LabHost, lab_key: asyncssh.SSHKey, lab_key_file: Path
) -> None:
    server_id = await register(api, fresh_host, lab_key, "tls-1")
    body = {
        "servers": [server_id],
        "roles": ["certbot"],
        "vars": {
            "domain": DOMAIN,
            "certbot_email": "ops@example.test",
            "acme_directory": acme.directory,
            "acme_ca_cert": acme.ca_pem,
        },
        "snapshot": False,
    }
    r = await api.operator.post("/api/v1/provisioning/runs", json=body)
    assert r.status_code == 202, r.text
    run = await wait_for_run(api, r.json()["id"], timeout=600)
    assert run["status"] == "succeeded", "\n".join(
        map(str, [run["error"], run["hosts"], *run.get("log", [])])
    )
    issuer = ssh_to(
        fresh_host,
        lab_key_file,
        f"sudo openssl x509 -in /etc/letsencrypt/live/{DOMAIN}/cert.pem"
        " -noout -issuer -ext subjectAltName",
    )
    assert issuer.returncode == 0, issuer.stderr
    assert "Pebble" in issuer.stdout and f"DNS:{DOMAIN}" in issuer.stdout, issuer.stdout
    timer = ssh_to(
        fresh_host,
        lab_key_file,
        "systemctl is-enabled certbot.timer; systemctl is-active certbot.timer",
    )
    assert timer.stdout.split() == ["enabled", "active"], timer.stdout
    # A renewal (forced) goes through the timer's service, with the CA it needs.
    renew = ssh_to(
        fresh_host,
        lab_key_file,
        "sudo systemctl start certbot.service && sudo systemctl show certbot.service -p Result",
    )
    assert renew.returncode == 0 and "Result=success" in renew.stdout, renew.stdout + renew.stderr

    again = await api.operator.post("/api/v1/provisioning/runs", json=body)
    second = await wait_for_run(api, again.json()["id"], timeout=300)
    assert second["status"] == "succeeded" and second["hosts"][0]["recap"]["changed"] == 0, second
