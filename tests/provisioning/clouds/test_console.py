"""The console's New servers page in a real browser: the create form, then
one row per server moving step by step (live, over the WebSocket) to
`create done`; the page on a phone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest

from tests.browser.conftest import browser, screenshots  # noqa: F401 - fixtures
from tests.browser.test_console import WAIT, login, shot
from tests.credentials.sshd import SshServer, ssh_server
from tests.live import create_user, infrawatch, running_server
from tests.provisioning.clouds.fakes import serve_fake


@pytest.fixture
def sshd() -> Iterator[SshServer]:
    with ssh_server() as server:
        yield server


async def test_servers_created_from_the_console_are_followed_step_by_step(
    cli_env: dict[str, str],
    browser: Any,  # noqa: F811
    screenshots: Path,  # noqa: F811
    sshd: SshServer,
) -> None:
    env = {**cli_env, "INFRAWATCH_JOBS_ENABLED": "true"}
    assert create_user(env, "admin").returncode == 0
    token = infrawatch(env, "tokens", "create", "admin").stdout.strip().splitlines()[-1]
    async with contextlib.AsyncExitStack() as stack:
        cloud = await stack.enter_async_context(serve_fake("digitalocean"))
        cloud.faults.pending_seconds = 3.0  # long enough to see the row wait at `running`
        base, _ = stack.enter_context(running_server(env))
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"})
        )
        r = await http.post(
            "/api/v1/provider-accounts",
            json={
                "name": "do",
                "kind": "digitalocean",
                "credentials": {"token": cloud.token},
                "api_url": cloud.url,
                "region": "fra1",
            },
        )
        assert r.status_code == 201, r.text
        key = asyncssh.generate_private_key("ssh-ed25519")
        r = await http.post(
            "/api/v1/ssh-keys", json={"name": "k", "private_key": key.export_private_key().decode()}
        )
        assert r.status_code == 201, r.text

        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        stack.push_async_callback(context.close)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await login(page, base, "admin")
        await page.goto(f"{base}/provisioning/servers")
        await page.get_by_label("Size").fill("s-1vcpu-1gb")
        await page.get_by_label("Image").fill("debian-12-x64")
        await page.get_by_label("Name or pattern").fill("app-{n}")
        await page.get_by_label("How many").fill("2")
        # The fake's machines are a loopback sshd: nothing to configure.
        await page.get_by_label("base role").uncheck()
        await page.get_by_label("hardening (SSH, firewall, Fail2Ban, updates)").uncheck()
        # The form has no port field: the sshd's port goes in through the API
        # shape the form posts, as a hidden field would.
        await page.evaluate(
            f"""() => {{ const i = document.createElement('input'); i.name = 'ssh_port';
            i.type = 'number'; i.value = '{sshd.port}'; i.hidden = true;
            document.querySelector('form[data-api="POST /api/v1/servers/create"]').append(i); }}"""
        )
        await page.get_by_role("button", name="Create").click()
        row = page.locator("tr[data-build='app-1']")
        await row.wait_for(timeout=WAIT)
        await page.locator("tr[data-build='app-1'] li.current").wait_for(timeout=WAIT)
        await shot(page, screenshots, "servers-building")
        # Live to the end, without a reload.
        await page.locator("tr[data-build='app-2'] .badge:has-text('create done')").wait_for(
            timeout=60_000
        )
        await page.locator("tr[data-build='app-1'] .badge:has-text('create done')").wait_for(
            timeout=WAIT
        )
        done = await page.locator("tr[data-build='app-1'] li.done").count()
        assert done == 6, done
        await shot(page, screenshots, "servers-built")
        assert sorted(n.name for n in cloud.live()) == ["app-1", "app-2"]

        phone = await browser.new_context(viewport={"width": 390, "height": 844})
        stack.push_async_callback(phone.close)
        small = await phone.new_page()
        await login(small, base, "admin")
        await small.goto(f"{base}/provisioning/servers")
        width = await small.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, width
        await shot(small, screenshots, "servers-phone")
        assert errors == []
