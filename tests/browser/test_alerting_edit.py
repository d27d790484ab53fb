"""Channels, rules and maintenance windows are edited in the console, in
place, in a real browser: what the form saves is what the API then says."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path
from typing import Any

from infrawatch.core.clock import utcnow
from tests.browser.conftest import browser, screenshots  # noqa: F401 - fixtures
from tests.browser.test_console import WAIT, console_env, login, shot
from tests.live import serve_as_admin


async def test_channels_rules_and_windows_are_edited_in_place(
    cli_env: dict[str, str],
    browser: Any,  # noqa: F811
    screenshots: Path,  # noqa: F811
) -> None:
    env = console_env(cli_env)
    async with contextlib.AsyncExitStack() as stack:
        base, http = await serve_as_admin(stack, env)
        channel = (
            await http.post(
                "/api/v1/notification-channels",
                json={"name": "ops", "url": "json://127.0.0.1:9/alerts"},
            )
        ).json()
        rule = (
            await http.post(
                "/api/v1/alert-rules", json={"name": "all", "channel_ids": [channel["id"]]}
            )
        ).json()
        starts = (utcnow() + timedelta(days=1)).replace(second=17, microsecond=0)
        window = (
            await http.post(
                "/api/v1/maintenance-windows",
                json={
                    "name": "patching",
                    "starts_at": starts.isoformat(),
                    "ends_at": (starts + timedelta(hours=1)).isoformat(),
                },
            )
        ).json()

        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        stack.push_async_callback(context.close)
        page = await context.new_page()
        await login(page, base, "admin")
        await page.goto(f"{base}/alerting")

        # The channel: renamed; its URL field left empty keeps the stored URL.
        await page.click(f'button[data-toggle="#edit-channel-{channel["id"]}"][aria-expanded]')
        form = page.locator(f"#edit-channel-{channel['id']} form")
        await form.get_by_label("Name").fill("ops pager")
        await shot(page, screenshots, "alerting-edit-channel")
        await form.get_by_role("button", name="Save channel").click()
        await page.get_by_text("ops pager").first.wait_for(timeout=WAIT)
        saved = (await http.get(f"/api/v1/notification-channels/{channel['id']}")).json()
        assert saved["name"] == "ops pager" and saved["url_hint"] == channel["url_hint"]

        # The rule: one more event, a tag matched by key alone, a reminder.
        await page.click(f'button[data-toggle="#edit-rule-{rule["id"]}"][aria-expanded]')
        form = page.locator(f"#edit-rule-{rule['id']} form")
        await form.get_by_label("Events").select_option(["down", "recovered", "degraded"])
        await form.get_by_label("Server tags").fill("env; team=web")
        await form.get_by_label("Remind every").fill("30")
        await form.get_by_role("button", name="Save rule").click()
        await page.get_by_text("every 30 min").wait_for(timeout=WAIT)
        saved = (await http.get(f"/api/v1/alert-rules/{rule['id']}")).json()
        assert saved["events"] == ["down", "recovered", "degraded"]
        assert saved["tags"] == {"env": None, "team": "web"}
        assert saved["reminder_minutes"] == 30
        # Emptied again: no reminders, no tags.
        await page.click(f'button[data-toggle="#edit-rule-{rule["id"]}"][aria-expanded]')
        form = page.locator(f"#edit-rule-{rule['id']} form")
        assert await form.get_by_label("Server tags").input_value() == "env; team=web"
        await form.get_by_label("Server tags").fill("")
        await form.get_by_label("Remind every").fill("")
        await form.get_by_role("button", name="Save rule").click()
        await page.locator("td", has_text="every 30 min").wait_for(state="detached", timeout=WAIT)
        saved = (await http.get(f"/api/v1/alert-rules/{rule['id']}")).json()
        assert saved["tags"] == {} and saved["reminder_minutes"] is None

        # The window: renamed and an hour longer; its untouched start keeps its seconds.
        await page.click(f'button[data-toggle="#edit-window-{window["id"]}"][aria-expanded]')
        form = page.locator(f"#edit-window-{window['id']} form")
        ends = form.get_by_label("Ends")
        shown = await ends.input_value()
        assert shown, "the stored end is shown in local time"
        later = await page.evaluate(
            "(v) => { const d = new Date(v); d.setHours(d.getHours() + 1);"
            " return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); }",
            shown,
        )
        await ends.fill(later)
        await form.get_by_label("Name").fill("long patching")
        await form.get_by_role("button", name="Save window").click()
        await page.get_by_text("long patching").wait_for(timeout=WAIT)
        saved = (await http.get(f"/api/v1/maintenance-windows/{window['id']}")).json()
        assert saved["starts_at"] == window["starts_at"]
        assert saved["ends_at"].startswith((starts + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
