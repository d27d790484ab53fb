"""The pages a newcomer meets in the first hour, in a real browser: the API
docs with no internet, pages that do not exist, the monitor page, the
audit log, and a phone's width."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.browser.conftest import browser, screenshots  # noqa: F401 - fixtures
from tests.browser.test_console import WAIT, console_env, login, shot, target
from tests.live import create_user, infrawatch, running_server

PHONE = {"width": 390, "height": 844}


def _outside(requests: list[str]) -> list[str]:
    """Requests to anything but this machine: an offline host has none."""
    return [u for u in requests if urlsplit(u).hostname not in ("127.0.0.1", "localhost", None)]


async def test_first_hour_pages(
    cli_env: dict[str, str],
    browser: Any,  # noqa: F811
    screenshots: Path,  # noqa: F811
) -> None:
    env = console_env(cli_env)
    assert create_user(env, "admin").returncode == 0
    token = infrawatch(env, "tokens", "create", "admin").stdout.strip().splitlines()[-1]
    async with contextlib.AsyncExitStack() as stack:
        switch, _, port = await stack.enter_async_context(target())
        base, _ = stack.enter_context(running_server(env))
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"})
        )
        server = (await http.post("/api/v1/servers", json={"name": "web-longname-01"})).json()
        made = await http.post(
            "/api/v1/monitors",
            json={
                "name": "front page",
                "type": "http",
                "target": f"http://127.0.0.1:{port}/",
                "interval_seconds": 1,
                "failure_threshold": 1,
            },
        )
        assert made.status_code == 201, made.text
        monitor = made.json()
        key = (await http.post("/api/v1/ssh-keys", json={"name": "deploy"})).json()

        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        stack.push_async_callback(context.close)
        page = await context.new_page()
        requests: list[str] = []
        errors: list[str] = []
        # What went out and came back; the content policy blocks ReDoc's CDN
        # logo before it is sent (Chromium still reports it, as failed).
        page.on("requestfinished", lambda request: requests.append(request.url))
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # The API docs render from files this server ships.
        await page.goto(f"{base}/docs")
        await page.locator(".swagger-ui .info .title").wait_for(timeout=WAIT)
        assert "InfraWatch" in (await page.locator(".swagger-ui .info .title").text_content() or "")
        await shot(page, screenshots, "first-hour-docs")
        await page.goto(f"{base}/redoc")
        await page.locator("redoc h1, [role=main] h1").first.wait_for(timeout=WAIT)
        assert _outside(requests) == [], _outside(requests)
        favicon = await page.request.get(f"{base}/favicon.ico")
        assert favicon.ok and "svg" in favicon.headers["content-type"]

        await login(page, base, "admin")
        # A path that is no page, and a server that does not exist: pages with the menu.
        for path in ("/no-such-page", "/servers/00000000-0000-0000-0000-000000000000"):
            response = await page.goto(base + path)
            assert response is not None and response.status == 404
            assert "text/html" in response.headers["content-type"]
            await page.locator("nav.side a.item", has_text="Servers").wait_for(timeout=WAIT)
        await shot(page, screenshots, "first-hour-404")

        # The monitor page: the last result at once, a chart with a range.
        switch.status = 200
        await page.goto(f"{base}/monitors/{monitor['id']}")
        await page.wait_for_function(
            "document.querySelector('[data-latency]').textContent.trim().endsWith('ms')",
            timeout=WAIT,
        )
        await page.reload()  # rendered by the server, before any live result
        shown = (await page.locator("[data-latency]").first.text_content() or "").strip()
        assert shown.endswith("ms") and shown != "—", shown
        for label in ("1 h", "7 d", "live"):
            await page.get_by_label(label, exact=True).check()
            await page.locator("[data-chart] canvas").wait_for(timeout=WAIT)
        switch.status = 500
        await page.wait_for_function(
            "document.querySelector('[data-latency]').textContent.trim() === 'failed'",
            timeout=WAIT,
        )
        # The type is said, not offered as a box; the server can be chosen.
        await page.locator("#settings summary").click()
        assert await page.locator("input#m-type").count() == 0
        await page.get_by_label("Server (its health follows").fill("web-longname")
        await page.get_by_label("Server (its health follows").fill("web-longname-01")
        await page.wait_for_function(
            "document.querySelector('input[name=server_id]').value.length === 36", timeout=WAIT
        )
        await page.get_by_role("button", name="Save").click()
        await page.wait_for_load_state("load")
        await page.wait_for_function(
            f"!!document.querySelector('a[href=\"/servers/{server['id']}\"]')", timeout=WAIT
        )
        saved = (await http.get(f"/api/v1/monitors/{monitor['id']}")).json()
        assert saved["server_id"] == server["id"]
        await shot(page, screenshots, "first-hour-monitor")

        # The monitors list: a down monitor has no latency, its sparkline is red.
        await page.goto(f"{base}/monitors")
        row = page.locator(f"[data-monitor-row='{monitor['id']}']")
        await page.wait_for_function(
            f"document.querySelector(\"[data-monitor-row='{monitor['id']}'] [data-latency]\")"
            ".textContent.trim() === 'failed'",
            timeout=WAIT,
        )
        assert await row.locator("svg.spark").get_attribute("data-state") == "down"
        assert "0 ms" not in (await row.text_content() or "")

        # The audit log: one line per record, a readable change, linked objects.
        await http.patch(f"/api/v1/servers/{server['id']}", json={"environment": "prod"})
        await page.goto(f"{base}/audit?object_id={server['id']}")
        update = page.locator("tr", has_text="server.update").first
        text = (await update.text_content() or "").replace("\n", " ")
        assert "environment: " in text and "prod" in text and "{" not in text, text
        link = update.locator("[data-object-link]")
        assert await link.get_attribute("href") == f"/servers/{server['id']}"
        height = await update.evaluate("r => r.getBoundingClientRect().height")
        assert height < 60, height  # one line, not a JSON blob wrapped four times
        await shot(page, screenshots, "first-hour-audit")

        # A phone: the key page and the servers grid fit the screen.
        phone = await browser.new_context(viewport=PHONE)
        stack.push_async_callback(phone.close)
        small = await phone.new_page()
        await login(small, base, "admin")
        for path in (f"/credentials/keys/{key['id']}", "/servers", "/audit"):
            await small.goto(base + path)
            width = await small.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (path, width)
        await small.goto(f"{base}/servers")
        name = small.locator("a.name", has_text="web-longname-01")
        lines = await name.evaluate(
            "a => Math.round(a.getBoundingClientRect().height"
            " / (parseFloat(getComputedStyle(a).lineHeight) || 20))"
        )
        assert lines <= 1, lines
        await shot(small, screenshots, "first-hour-phone-key")
        assert errors == [], errors
