"""The console's Provisioning section in a real browser: the run form
(search, roles or a stack's variable form, check mode), then the run page
live, host by host, to its recap."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest

from infrawatch.provisioning.lab.hosts import Lab, LabHost
from tests.browser.conftest import browser, screenshots  # noqa: F401 - fixtures
from tests.browser.test_console import WAIT, login, shot
from tests.live import create_user, infrawatch, running_server

pytestmark = pytest.mark.hosts


async def test_a_run_started_from_the_console_is_followed_live_to_its_recap(
    cli_env: dict[str, str],
    browser: Any,  # noqa: F811
    screenshots: Path,  # noqa: F811
    lab: Lab,
    fresh_host: LabHost,
    lab_key: asyncssh.SSHKey,
) -> None:
    env = {
        **cli_env,
        "INFRAWATCH_JOBS_ENABLED": "true",
        "INFRAWATCH_LAB_ENABLED": "true",
        "INFRAWATCH_LAB_DIR": str(lab.config.root),
    }
    assert create_user(env, "admin").returncode == 0
    token = infrawatch(env, "tokens", "create", "admin").stdout.strip().splitlines()[-1]
    async with contextlib.AsyncExitStack() as stack:
        base, _ = stack.enter_context(running_server(env))
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"})
        )
        key = await http.post(
            "/api/v1/ssh-keys",
            json={"name": "lab", "private_key": lab_key.export_private_key().decode()},
        )
        server = await http.post(
            "/api/v1/servers",
            json={"name": "web-c", "ip_address": fresh_host.address, "tags": {"env": "dev"}},
        )
        assigned = await http.post(
            f"/api/v1/ssh-keys/{key.json()['id']}/assignments",
            json={"server_id": server.json()["id"], "username": "admin"},
        )
        assert assigned.status_code == 201, assigned.text

        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        stack.push_async_callback(context.close)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await login(page, base, "admin")
        await page.get_by_role("link", name="Provisioning", exact=True).click()
        await page.wait_for_url(f"{base}/provisioning")

        # A stack's form refuses a bad domain on the field itself.
        await page.get_by_label("Servers (search)").fill("tag:env=dev")
        await page.get_by_label("A stack").check()
        await page.get_by_label("Stack", exact=True).select_option("lamp")
        await page.locator("#p-lamp-domain").fill("not a domain!")
        await page.get_by_role("button", name="Start").click()
        await page.locator("#p-lamp-domain[aria-invalid='true']").wait_for(timeout=WAIT)
        note = await page.locator("#err-vars-domain").text_content()
        assert note == "domain must be a domain name such as shop.example.com", note
        await shot(page, screenshots, "provisioning-form-error")

        # Roles, in check mode: only base.
        await page.get_by_label("Roles", exact=True).check()
        for role in ("ssh_hardening", "firewall", "fail2ban", "auto_updates"):
            await page.locator(f"[data-role][value='{role}']").uncheck()
        await page.get_by_label("Check mode (report, change nothing)").check()
        await page.get_by_role("button", name="Start").click()
        await page.wait_for_url(re.compile(r"/provisioning/runs/[0-9a-f-]{36}$"))

        # Followed live: the log fills, the badge ends at succeeded, the host has its recap.
        await page.wait_for_function(
            "() => document.querySelector('[data-job-status]').textContent.trim() === 'succeeded'",
            timeout=120_000,
        )
        log = await page.locator("#job-log").text_content() or ""
        assert "TASK [base : base | admin user]" in log
        await page.locator("#run-hosts td:has-text('ok=')").wait_for(timeout=WAIT)
        row = await page.locator("#run-hosts tbody tr").first.text_content() or ""
        assert "web-c" in row and "ok" in row and "changed=" in row
        await shot(page, screenshots, "provisioning-run")

        phone = await browser.new_context(viewport={"width": 390, "height": 844})
        stack.push_async_callback(phone.close)
        small = await phone.new_page()
        await login(small, base, "admin")
        await small.goto(f"{base}/provisioning")
        width = await small.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, width
        await shot(small, screenshots, "provisioning-phone")
        assert errors == []
