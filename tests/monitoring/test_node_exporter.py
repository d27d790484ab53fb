"""The node_exporter monitor: a real prometheus-node-exporter on loopback
(Debian's, installed by .ci/run), and a loopback exporter with figures the
test chooses, judged with the agent's thresholds."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.conftest import Clients, unavailable
from tests.live import free_port
from tests.monitoring.servers import serve_http

EXPORTER = "/usr/bin/prometheus-node-exporter"


@pytest.fixture(scope="module")
def node_exporter() -> Iterator[str]:
    if not os.path.exists(EXPORTER) and shutil.which("prometheus-node-exporter") is None:
        unavailable("prometheus-node-exporter (Debian's; .ci/run installs it)")
    port = free_port()
    process = subprocess.Popen(
        [EXPORTER, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "node_exporter did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


async def _check(api: Clients, target: str, **settings: Any) -> dict[str, Any]:
    r = await api.operator.post(
        "/api/v1/monitors",
        json={
            "name": f"ne-{time.monotonic_ns()}",
            "type": "node_exporter",
            "target": target,
            "interval_seconds": 30,
            "settings": settings,
        },
    )
    assert r.status_code == 201, r.text
    checked = await api.operator.post(f"/api/v1/monitors/{r.json()['id']}/check")
    assert checked.status_code == 200, checked.text
    return dict(checked.json())


async def test_a_real_node_exporter_is_read_and_judged(api: Clients, node_exporter: str) -> None:
    healthy = await _check(
        api, node_exporter, disk_percent=100, memory_percent=100, load_per_core=1000
    )
    assert healthy["ok"] is True, healthy
    facts = healthy["details"]["figures"]
    assert 0 < facts["MEMORY"] < 100 and facts["LOAD_PER_CORE"] >= 0 and "CPU" not in facts
    assert healthy["details"]["disks"], healthy["details"]
    strict = await _check(api, node_exporter, disk_percent=0, memory_percent=None)
    assert strict["ok"] is False and "disk " in strict["error"] and "> 0.0 %" in strict["error"]


EXPORTED = """# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.
# TYPE node_memory_MemTotal_bytes gauge
node_memory_MemTotal_bytes 1e+10
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes 3e+08
# TYPE node_memory_SwapTotal_bytes gauge
node_memory_SwapTotal_bytes 0
# TYPE node_memory_SwapFree_bytes gauge
node_memory_SwapFree_bytes 0
# TYPE node_load1 gauge
node_load1 9
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 100
node_cpu_seconds_total{cpu="1",mode="idle"} 100
node_cpu_seconds_total{cpu="0",mode="user"} 100
# TYPE node_filesystem_size_bytes gauge
node_filesystem_size_bytes{device="/dev/vda1",fstype="ext4",mountpoint="/"} 1000
node_filesystem_size_bytes{device="tmpfs",fstype="tmpfs",mountpoint="/run"} 1000
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/vda1",fstype="ext4",mountpoint="/"} 500
node_filesystem_avail_bytes{device="tmpfs",fstype="tmpfs",mountpoint="/run"} 0
"""


def _exporter(text: str) -> web.Application:
    app = web.Application()

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=text, content_type="text/plain")

    app.router.add_get("/metrics", metrics)
    return app


async def test_thresholds_on_chosen_figures_and_what_is_not_an_exporter(api: Clients) -> None:
    async with serve_http(_exporter(EXPORTED)) as (_, port):
        url = f"http://127.0.0.1:{port}/metrics"
        seen = await _check(api, url)
        # 97 % memory and 9 / 2 = 4.5 load per core: both over the defaults;
        # the full tmpfs is not a disk.
        assert seen["ok"] is False
        assert seen["error"] == "memory at 97.0 % > 95 %; load 4.5 per core > 2.0", seen["error"]
        assert seen["details"]["figures"]["DISK"] == 50.0
        relaxed = await _check(api, url, memory_percent=98, load_per_core=5)
        assert relaxed["ok"] is True, relaxed
    async with serve_http(_exporter("hello: not metrics\n")) as (_, port):
        wrong = await _check(api, f"http://127.0.0.1:{port}/metrics")
        assert (
            wrong["ok"] is False and "node_exporter" in wrong["error"]
        ) or "Prometheus" in wrong["error"]
    bad = await api.operator.post(
        "/api/v1/monitors",
        json={"name": "ne-bad", "type": "node_exporter", "target": "127.0.0.1:9100"},
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "target"]
