"""The systemd units: clean for `systemd-analyze verify`, and hardened
(`systemd-analyze security`, offline: exposure at most 2.0 of 10)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import unavailable

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
BINARY = Path(sys.executable).with_name("infrawatch")


def installed(tmp_path: Path, name: str) -> Path:
    """The unit as installed, pointing at this checkout's infrawatch (verify
    wants its ExecStart to exist)."""
    text = (UNITS / name).read_text().replace("/opt/infrawatch/bin/infrawatch", str(BINARY))
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("template", "instance"),
    [
        ("infrawatch.service", "infrawatch.service"),
        ("infrawatch-worker@.service", "infrawatch-worker@eu-west.service"),
    ],
)
def test_a_unit_verifies_cleanly_and_is_hardened(
    tmp_path: Path, template: str, instance: str
) -> None:
    if shutil.which("systemd-analyze") is None:
        unavailable("systemd-analyze (apt-get install systemd)")
    unit = installed(tmp_path, template)
    verified = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit.with_name(instance))],
        capture_output=True,
        text=True,
        check=False,
    )
    # verify only warns about unknown keys: any output at all is a defect.
    assert verified.returncode == 0 and verified.stderr.strip() == "", verified.stderr
    security = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            "--no-pager",
            "--threshold=20",
            str(unit.with_name(instance)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert security.returncode == 0, security.stdout[-2000:]
    assert "Overall exposure level" in security.stdout


def test_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        unavailable("systemd-analyze (apt-get install systemd)")
    unit = installed(tmp_path, "infrawatch.service")
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSistem=strict"))
    verified = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    assert "ProtectSistem" in verified.stderr
