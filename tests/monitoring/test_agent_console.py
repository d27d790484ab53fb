"""The server page shows the agent's latest figures and charts its rollups
(uPlot), in a real browser."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import httpx

from tests.browser.conftest import browser, screenshots  # noqa: F401 - fixtures
from tests.browser.test_console import WAIT, login, shot
from tests.live import create_user, infrawatch, running_server
from tests.monitoring.test_agent import reading


async def test_the_server_page_charts_what_the_agent_reports(
    cli_env: dict[str, str],
    browser: Any,  # noqa: F811
    screenshots: Path,  # noqa: F811
) -> None:
    assert create_user(cli_env, "admin").returncode == 0
    token = infrawatch(cli_env, "tokens", "create", "admin").stdout.strip().splitlines()[-1]
    async with contextlib.AsyncExitStack() as stack:
        base, _ = stack.enter_context(running_server(cli_env))
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"})
        )
        server = (await http.post("/api/v1/servers", json={"name": "charted-1"})).json()
        agent = (await http.post("/api/v1/agents/tokens", json={"server_id": server["id"]})).json()
        for cpu in (20.0, 40.0):
            r = await http.post(
                "/api/v1/agents/report",
                json=reading(cpu_percent=cpu, hostname="charted-1"),
                headers={"Authorization": f"Bearer {agent['token']}"},
            )
            assert r.status_code == 202, r.text
        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        stack.push_async_callback(context.close)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await login(page, base, "admin")
        await page.goto(f"{base}/servers/{server['id']}")
        section = page.locator("section[aria-labelledby='host-h']")
        await section.wait_for(timeout=WAIT)
        text = await section.text_content() or ""
        assert "CPU 40.0 %" in text and "/ 50.0 %" in text, text
        await page.locator("[data-host-chart] canvas").wait_for(timeout=WAIT)
        legend = await page.locator("[data-host-chart] .u-legend").text_content() or ""
        assert "fullest disk" in legend and "load per core" in legend, legend
        await page.get_by_label("last 7 days").check()
        await page.locator("[data-host-chart] canvas").wait_for(timeout=WAIT)
        await shot(page, screenshots, "server-host-chart")
        # A new agent token from the page, shown once; the old one stops working.
        page.once("dialog", lambda dialog: dialog.accept())
        await page.get_by_role("button", name="New agent token").click()
        shown = page.locator("[data-new-agent-token]")
        await shown.wait_for(timeout=WAIT)
        new_token = (await shown.text_content() or "").strip()
        assert new_token.startswith("iwa_") and new_token != agent["token"]
        old = await http.post(
            "/api/v1/agents/report",
            json=reading(),
            headers={"Authorization": f"Bearer {agent['token']}"},
        )
        assert old.status_code == 401
        assert errors == []
