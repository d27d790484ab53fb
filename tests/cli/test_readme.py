"""The README's tour, run as written against a live `serve`: every block
marked `<!-- tour -->`, in one bash, answering the password prompt as a
person would. Only the ports change (8000 for serve, 8099 for the
receiver), so parallel tests do not collide."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect

from tests.live import free_port, running_server

README = Path(__file__).resolve().parents[2] / "README.md"
PASSWORD = "a long enough password"


def tour_blocks(text: str) -> tuple[str, list[str]]:
    """(the receiver's block, the tour's blocks in order)."""
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    receiver = next(b for b in blocks if "http.server.HTTPServer" in b)
    tour = re.findall(r"<!-- tour -->\n```sh\n(.*?)```", text, flags=re.S)
    return receiver, tour


def test_the_readme_links_only_files_in_the_repo() -> None:
    text = README.read_text()
    root = README.parent
    for target in re.findall(r"\]\(([^)#]+)\)", text) + re.findall(
        r"`((?:docs|deploy|bench)/[^`\s]+)`", text
    ):
        if "://" in target:
            continue
        assert (root / target).exists(), target
    assert "../" not in text and "192.0.2." not in text and ".example/" not in text


def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    """On the embedded default, as a newcomer runs it: SQLite in a data dir
    of its own (one run, not one per database)."""
    receiver_code, tour = tour_blocks(README.read_text())
    assert len(tour) >= 5
    port, receiver_port = free_port(), free_port()

    def ported(block: str) -> str:
        return block.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace(
            "8099", str(receiver_port)
        )

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INFRAWATCH_")},
        "INFRAWATCH_DATA_DIR": str(tmp_path / "infrawatch-data"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "INFRAWATCH_ENGINE_ENABLED": "true",
        "INFRAWATCH_ALERTING_ENABLED": "true",
        "INFRAWATCH_JOBS_ENABLED": "true",
    }
    heard = tmp_path / "receiver.out"
    with heard.open("w") as out:
        receiver = subprocess.Popen(["bash", "-c", ported(receiver_code)], stdout=out, env=env)
    try:
        with running_server(env, port=port) as _:
            script = "set -euo pipefail\n" + "\n".join(ported(block) for block in tour)
            shell = pexpect.spawn(
                "bash", ["-c", script], cwd=str(tmp_path), env=env, encoding="utf-8", timeout=180
            )
            log: list[str] = []
            shell.logfile_read = _Collect(log)
            shell.expect("Password: ")
            shell.sendline(PASSWORD)
            shell.expect("Again: ")
            shell.sendline(PASSWORD)
            shell.expect(pexpect.EOF)
            shell.close()
            said = "".join(log)
            assert shell.exitstatus == 0, said[-4000:]
            assert '"name":"web-01"' in said.replace(" ", "") and '"Shop"' in said
            assert "<svg" in said and "would create 1" in said, said[-4000:]
            assert "web-02" in (tmp_path / "eu.yaml").read_text()
            # The monitor on a port nothing listens on went down; the receiver heard it.
            assert receiver.poll() is None, "the receiver did not start"
            deadline = time.monotonic() + 90
            while "DOWN: nothing here" not in heard.read_text():
                assert time.monotonic() < deadline, heard.read_text()
                time.sleep(0.5)
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


class _Collect:
    def __init__(self, into: list[str]) -> None:
        self.into = into

    def write(self, text: str) -> None:
        self.into.append(text)

    def flush(self) -> None:
        pass
