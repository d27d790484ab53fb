"""/metrics: the Prometheus text format, checked by promtool, scraped by a
real Prometheus on loopback, and matched by the shipped Grafana dashboard."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from infrawatch.alerting.runner import Alerting
from tests.conftest import Clients, unavailable
from tests.live import admin_token, free_port, running_server
from tests.monitoring.helpers import eventually, running_engine
from tests.monitoring.servers import Certificates, serve_http, target_app
from tests.monitoring.test_agent import reading

DASHBOARD = Path(__file__).parents[2] / "deploy/grafana/dashboards/infrawatch.json"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} (Debian package prometheus)")
    assert path is not None
    return path


async def _metrics_with_data(api: Clients, app: Any, db: Any, tmp_path: Path) -> str:
    certs = Certificates(tmp_path)
    async with serve_http(target_app(), certs.server_context(certs.expiring)) as (_, port):
        for name, target, settings in (
            ("web", f"https://localhost:{port}/ok", {"verify_tls": False}),
            ("cert", f"localhost:{port}", {"verify_chain": False}),
        ):
            kind = "http" if name == "web" else "tls"
            created = await api.operator.post(
                "/api/v1/monitors",
                json={
                    "name": name,
                    "type": kind,
                    "target": target,
                    "interval_seconds": 1,
                    "settings": settings,
                },
            )
            assert created.status_code == 201, created.text
        # A host agent's report: its latest figures are exported too.
        server = await api.operator.post("/api/v1/servers", json={"name": "host-1"})
        token = await api.operator.post(
            "/api/v1/agents/tokens", json={"server_id": server.json()["id"]}
        )
        sent = await api.anon.post(
            "/api/v1/agents/report",
            json=reading(),
            headers={"Authorization": f"Bearer {token.json()['token']}"},
        )
        assert sent.status_code == 202, sent.text
        runtime = app.state.runtime
        # The process's alerting exports its counters even before it sends.
        runtime.alerting = Alerting(runtime.db, runtime.bus, runtime.keyring)
        async with running_engine(db, runtime.bus) as engine:
            runtime.engine = engine
            await eventually(lambda: asyncio.sleep(0, result=engine.stats.checks >= 4))
            await asyncio.sleep(0.5)
            response = await api.viewer.get("/metrics")
            runtime.engine = runtime.alerting = None
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_metrics_need_a_token_unless_made_public(api: Clients) -> None:
    assert (await api.anon.get("/metrics")).status_code == 401
    assert (await api.viewer.get("/metrics")).status_code == 200


async def test_metrics_pass_promtool_and_carry_status_latency_and_certificates(
    api: Clients, app: Any, db: Any, tmp_path: Path
) -> None:
    promtool = _tool("promtool")
    text = await _metrics_with_data(api, app, db, tmp_path)
    process = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate(text.encode())
    assert process.returncode == 0, output.decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    up = {s.labels["name"]: s.value for s in families["infrawatch_monitor_up"].samples}
    assert up == {"web": 1.0, "cert": 1.0}
    cert = families["infrawatch_monitor_certificate_expires_in_seconds"]
    days = [s.value / 86400 for s in cert.samples]
    assert days and all(2 < d <= 3 for d in days)
    buckets = [
        s
        for s in families["infrawatch_monitor_latency_seconds"].samples
        if s.name.endswith("_count")
    ]
    assert buckets and all(s.value >= 1 for s in buckets)
    assert families["infrawatch_engine_checks"].samples
    disks = families["infrawatch_host_disk_used_percent"].samples
    assert [(d.labels["server"], d.labels["mount"], d.value) for d in disks] == [
        ("host-1", "/", 50.0)
    ]
    (load,) = families["infrawatch_host_load_per_core"].samples
    assert load.value == 0.25
    sent = {
        s.labels["direction"]: s.value for s in families["infrawatch_host_network_bytes"].samples
    }
    assert sent == {"sent": 1000.0, "received": 2000.0}


async def test_every_dashboard_panel_queries_a_metric_that_exists(
    api: Clients, app: Any, db: Any, tmp_path: Path
) -> None:
    text = await _metrics_with_data(api, app, db, tmp_path)
    exported = set()
    for family in text_string_to_metric_families(text):
        exported.update(sample.name for sample in family.samples)
        exported.add(family.name)
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(re.findall(r"\binfrawatch_[a-z0-9_]+", target["expr"]))
            assert names, (panel["title"], target["expr"])
            missing = names - exported
            assert not missing, (panel["title"], missing)


def test_a_real_prometheus_scrapes_a_running_infrawatch(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    prometheus = _tool("prometheus")
    env = {**cli_env, "INFRAWATCH_ENGINE_ENABLED": "true"}
    token = admin_token(env)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    with running_server(env) as (base, _):
        created = httpx.post(
            f"{base}/api/v1/monitors",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "name": "self",
                "type": "http",
                "target": f"{base}/healthz",
                "interval_seconds": 1,
            },
        )
        assert created.status_code == 201, created.text
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: infrawatch\n"
            f"    authorization: {{type: Bearer, credentials_file: {token_file}}}\n"
            f"    static_configs: [{{targets: ['{base.removeprefix('http://')}']}}]\n"
        )
        log = (tmp_path / "prometheus.log").open("w")
        process = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            found: list[Any] = []
            while time.monotonic() < deadline and not found:
                time.sleep(1)
                try:
                    answer = httpx.get(
                        f"http://127.0.0.1:{port}/api/v1/query",
                        params={"query": 'infrawatch_monitor_up{name="self"} == 1'},
                    ).json()
                except httpx.TransportError:
                    continue
                found = answer.get("data", {}).get("result", [])
            assert found, (tmp_path / "prometheus.log").read_text()[-2000:]
            targets = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets").json()
            assert targets["data"]["activeTargets"][0]["health"] == "up"
        finally:
            process.terminate()
            process.wait(timeout=30)
