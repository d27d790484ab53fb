"""The overview in a real browser: the host map drawn on a canvas, grouped
by a tag, a cell that opens its server, following a server going down; the
fleet chart and timelines; a phone's width."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from tests.browser.conftest import browser, screenshots  # noqa: F401 - fixtures
from tests.browser.test_console import WAIT, console_env, login, shot
from tests.live import serve_as_admin

PHONE = {"width": 390, "height": 844}


async def test_the_host_map_groups_follows_and_opens_servers(
    cli_env: dict[str, str],
    browser: Any,  # noqa: F811
    screenshots: Path,  # noqa: F811
) -> None:
    env = console_env(cli_env)
    async with contextlib.AsyncExitStack() as stack:
        base, http = await serve_as_admin(stack, env)
        rows = ["name,tags"] + [
            f"node-{i:03},env={'prod' if i % 3 else 'staging'}" for i in range(240)
        ]
        imported = await http.post(
            "/api/v1/servers/import",
            params={"format": "csv"},
            content="\n".join(rows).encode(),
            headers={"Content-Type": "text/csv"},
        )
        assert imported.status_code == 200, imported.text

        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        stack.push_async_callback(context.close)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await login(page, base, "admin")
        canvas = page.locator("[data-hostmap] canvas")
        await canvas.wait_for(timeout=WAIT)
        assert await canvas.get_attribute("aria-label") == "240 servers, 0 down"
        assert await page.locator("[data-fleet-chart] .uplot").count() == 1

        # Grouped by env; then a server goes down (a monitor on a closed
        # port): the map follows without a reload, its cell first in prod.
        await page.select_option("select[name=tag]", "env")
        await page.wait_for_url(f"{base}/?range=24h&tag=env")
        await canvas.wait_for(timeout=WAIT)
        server = (await http.get("/api/v1/servers", params={"q": "node-050"})).json()["items"][0]
        made = await http.post(
            "/api/v1/monitors",
            json={
                "name": "node-050 ssh",
                "type": "tcp",
                "target": "127.0.0.1:9",
                "server_id": server["id"],
                "interval_seconds": 1,
                "failure_threshold": 1,
            },
        )
        assert made.status_code == 201, made.text
        await page.wait_for_function(
            "document.querySelector('[data-hostmap] canvas')"
            "?.getAttribute('aria-label') === '240 servers, 1 down'",
            timeout=WAIT,
        )
        labels = await page.evaluate("document.querySelector('[data-hostmap]').hostMap.groups")
        assert [(g["name"], g["count"], g["states"]["down"]) for g in labels] == [
            ("prod", 160, 1),
            ("staging", 80, 0),
        ]
        await shot(page, screenshots, "overview-host-map")

        # The hover names the cell; a click opens its server.
        box = await page.locator("[data-hostmap] canvas").bounding_box()
        assert box is not None
        await page.mouse.move(box["x"] + 3, box["y"] + 24)  # the first cell under prod's label
        tip = page.locator(".map-tip")
        assert (await tip.text_content() or "").startswith("node-050 · down")
        await page.mouse.click(box["x"] + 3, box["y"] + 24)
        await page.wait_for_url(f"{base}/servers/{server['id']}")

        # The state change reached the fleet timeline.
        await page.goto(f"{base}/?range=1h")
        await page.wait_for_selector("svg.strip rect", timeout=WAIT)
        assert "1 went down" in (
            await page.locator("svg.strip rect title").first.text_content() or ""
        )

        # A phone: nothing wider than the screen, the map as wide as it.
        phone = await browser.new_context(viewport=PHONE)
        stack.push_async_callback(phone.close)
        small = await phone.new_page()
        await login(small, base, "admin")
        await small.locator("[data-hostmap] canvas").wait_for(timeout=WAIT)
        width = await small.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
        await shot(small, screenshots, "overview-phone")
        assert errors == []
