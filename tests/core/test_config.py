from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from infrawatch.core.config import Settings
from infrawatch.core.datadir import prepare_data_dir
from infrawatch.core.db import Database
from infrawatch.core.events import EventBus


def test_settings_read_the_environment_only_when_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("INFRAWATCH_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("INFRAWATCH_PORT", "9001")
    settings = Settings()
    assert settings.data_dir == tmp_path / "d"
    assert settings.port == 9001
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")


def test_every_secret_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in (
        ("DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1/db"),
        ("REDIS_URL", "redis://127.0.0.1:6379/0"),
        ("MASTER_KEY", "m4st3r-value"),
        ("SESSION_SECRET", "s3ss10n-value"),
    ):
        path = tmp_path / name.lower()
        path.write_text(value + "\n")
        monkeypatch.setenv(f"INFRAWATCH_{name}_FILE", str(path))
    settings = Settings()
    assert settings.effective_database_url == "postgresql+asyncpg://u@127.0.0.1/db"
    assert (
        settings.redis_url is not None
        and settings.redis_url.get_secret_value() == "redis://127.0.0.1:6379/0"
    )
    assert (
        settings.master_key is not None and settings.master_key.get_secret_value() == "m4st3r-value"
    )
    assert "m4st3r-value" not in repr(settings)
    assert "s3ss10n-value" not in repr(settings)


def test_an_explicit_secret_wins_over_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "key").write_text("from-file")
    monkeypatch.setenv("INFRAWATCH_MASTER_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.setenv("INFRAWATCH_MASTER_KEY", "from-env")
    assert Settings().master_key.get_secret_value() == "from-env"  # type: ignore[union-attr]


def test_first_start_creates_the_data_dir_and_private_keys_once(tmp_path: Path) -> None:
    settings = prepare_data_dir(Settings(data_dir=tmp_path / "data"))
    for name in ("session.key", "master.key"):
        path = tmp_path / "data" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    again = prepare_data_dir(Settings(data_dir=tmp_path / "data"))
    assert again.master_key == settings.master_key
    assert again.session_secret == settings.session_secret
    assert settings.master_key != settings.session_secret


def test_processes_starting_together_agree_on_one_complete_master_key(tmp_path: Path) -> None:
    """Several `infrawatch` processes on a new data dir at the same moment
    (serve and workers under a supervisor) must all read the same, whole key."""
    import subprocess
    import sys
    import time

    go = tmp_path / "go"
    script = (
        "import os, time; from pathlib import Path; from infrawatch.core.config import Settings;"
        "from infrawatch.core.datadir import prepare_data_dir\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.0005)\n"
        f"print(prepare_data_dir(Settings(data_dir=Path({str(tmp_path / 'data')!r})))"
        ".master_key.get_secret_value())"
    )
    starts = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(12)
    ]
    time.sleep(3)  # every process imported and waiting
    go.touch()  # then all of them at once
    keys = {process.communicate(timeout=60)[0].strip() for process in starts}
    assert len(keys) == 1 and len(keys.pop()) == 44
    assert [p.name for p in (tmp_path / "data").iterdir() if p.name.startswith(".")] == []


async def test_the_sqlite_database_and_its_wal_are_private(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    old.chmod(0o644)  # as an older version left it
    for path in (tmp_path / "new.db", old):
        database = Database(f"sqlite+aiosqlite:///{path}", EventBus())
        try:
            async with database.unit_of_work() as session:
                await session.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
                await session.execute(text("INSERT INTO t VALUES (1)"))
            for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                assert name.exists(), name
                assert stat.S_IMODE(name.stat().st_mode) == 0o600, name
        finally:
            await database.dispose()
