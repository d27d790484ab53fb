"""`pip install` is all the console needs: every template and static file
must be in the package data, or a wheel install serves 500s and 404s."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "infrawatch"


def test_every_console_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["infrawatch"]
    shipped = {p for pattern in patterns for p in PACKAGE.glob(pattern) if p.is_file()}
    needed = {
        p
        for folder in ("web/templates", "web/static")
        for p in (PACKAGE / folder).rglob("*")
        if p.is_file()
    }
    assert needed - shipped == set()
    assert any(p.name == "feed.atom" for p in needed)  # the pattern list once missed it
