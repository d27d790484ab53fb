"""The clamav role on a real host: installed through the lab's apt proxy, a
scheduled scan, and that scan finding a planted file. ClamAV's own mirrors
cannot be reached here, so freshclam is off and the signature is the
test's own (a hash signature for the planted file)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncssh
import pytest

from infrawatch.provisioning.lab.hosts import LabHost
from tests.conftest import Clients
from tests.provisioning.conftest import ssh_to
from tests.provisioning.test_hardening import register, wait_for_run

pytestmark = pytest.mark.hosts
PLANTED = b"not a virus, but the test says it is\n"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_clamav_schedules_a_scan_that_finds_a_planted_file(
    api: Clients, fresh_host: LabHost, lab_key: asyncssh.SSHKey, lab_key_file: Path
) -> None:
    server_id = await register(api, fresh_host, lab_key, "av-1")
    signature = f"{hashlib.md5(PLANTED).hexdigest()}:{len(PLANTED)}:InfraWatch.Test.Planted\n"  # noqa: S324 - ClamAV's hash signatures are MD5
    body = {
        "servers": [server_id],
        "roles": ["clamav"],
        "vars": {
            "clamav_freshclam": False,
            "clamav_scan_paths": ["/srv"],
            "clamav_signatures": {"infrawatch-test.hdb": signature},
        },
        "snapshot": False,
    }
    r = await api.operator.post("/api/v1/provisioning/runs", json=body)
    assert r.status_code == 202, r.text
    run = await wait_for_run(api, r.json()["id"], timeout=600)
    assert run["status"] == "succeeded", "\n".join(
        map(str, [run["error"], run["hosts"], *run.get("log", [])])
    )
    timer = ssh_to(fresh_host, lab_key_file, "systemctl is-enabled infrawatch-clamscan.timer")
    assert timer.stdout.strip() == "enabled", timer.stdout + timer.stderr
    planted = ssh_to(
        fresh_host,
        lab_key_file,
        "sudo mkdir -p /srv/upload && printf '%s\\n' '"
        + PLANTED.decode().strip()
        + "' | sudo tee /srv/upload/file.txt >/dev/null"
        " && sudo systemctl start infrawatch-clamscan.service"
        " && sudo cat /var/log/infrawatch-clamscan.log",
    )
    assert planted.returncode == 0, planted.stderr
    assert "/srv/upload/file.txt: InfraWatch.Test.Planted.UNOFFICIAL FOUND" in planted.stdout, (
        planted.stdout
    )
    again = await api.operator.post("/api/v1/provisioning/runs", json=body)
    second = await wait_for_run(api, again.json()["id"], timeout=300)
    assert second["status"] == "succeeded" and second["hosts"][0]["recap"]["changed"] == 0, second
