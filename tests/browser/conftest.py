"""A real browser (Debian's Chromium, driven by Playwright) against a live
`infrawatch serve` on 127.0.0.1. Screenshots go to test-artifacts/screenshots
(or $INFRAWATCH_TEST_ARTIFACTS/screenshots)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("INFRAWATCH_TEST_ARTIFACTS", ROOT / "test-artifacts"))


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    executable = chromium_path()
    if executable is None:
        unavailable("Chromium (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("Playwright for Python (pip install playwright)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture
def screenshots(backend: Any) -> Path:
    folder = ARTIFACTS / "screenshots" / backend.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
