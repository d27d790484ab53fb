"""A worker killed with -9 while a server is being made: another worker
takes the build over when the lease runs out and goes on from the step it
was on — the node the dead one made is found by its tag, not made again."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from infrawatch.core.config import Settings
from tests.conftest import Clients
from tests.credentials.sshd import SshServer, ssh_server
from tests.provisioning.clouds.fakes import serve_fake
from tests.provisioning.clouds.helpers import account, vault_key, wait_builds
from tests.provisioning.test_takeover import start_worker


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"jobs_enabled": False})


@pytest.fixture
def sshd() -> Iterator[SshServer]:
    with ssh_server() as server:
        yield server


async def test_a_build_whose_worker_is_killed_goes_on_elsewhere_with_the_same_node(
    api: Clients, settings: Settings, sshd: SshServer, tmp_path: Path
) -> None:
    async with serve_fake("linode") as cloud:
        cloud.faults.pending_seconds = 3600  # it stays `provisioning` until we say
        await account(api, cloud)
        await vault_key(api)
        r = await api.operator.post(
            "/api/v1/servers/create",
            json={
                "provider_account": "linode-main",
                "region": "eu-central",
                "size": "g6-nanode-1",
                "image": "linode/debian12",
                "name": "api-7",
                "base": False,
                "harden": False,
                "ssh_port": sshd.port,
            },
        )
        assert r.status_code == 202, r.text
        build_id = r.json()["items"][0]["id"]
        first = start_worker(settings, tmp_path / "w1.log")
        second = None
        try:
            async with asyncio.timeout(60):
                while True:
                    build = (await api.viewer.get(f"/api/v1/server-builds/{build_id}")).json()
                    if build["step"] == "running" and build["node_id"]:
                        break
                    await asyncio.sleep(0.1)
            first.send_signal(signal.SIGKILL)
            first.wait()
            cloud.faults.pending_seconds = 0
            second = start_worker(settings, tmp_path / "w2.log")
            (done,) = await wait_builds(api, [build_id], timeout=120)
            assert done["status"] == "done", (done, (tmp_path / "w2.log").read_text()[-2000:])
            assert done["node_id"] == build["node_id"]
            assert [n.name for n in cloud.live()] == ["api-7"]
            creates = [r for r in cloud.requests if r == ("POST", "/linode/instances")]
            assert len(creates) == 1
        finally:
            for worker in (first, second):
                if worker is not None and worker.poll() is None:
                    worker.send_signal(signal.SIGKILL)
                    worker.wait()
