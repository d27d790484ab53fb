"""`infrawatch agent --url URL --token TOKEN`: report every 30 s.

The token may come from INFRAWATCH_AGENT_TOKEN or a file named by
INFRAWATCH_AGENT_TOKEN_FILE instead (what the systemd unit uses), so it
is not on the command line for every process list to see."""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from infrawatch.agent.readings import read

log = logging.getLogger("infrawatch.agent")
REPORT_PATH = "/api/v1/agents/report"
TIMEOUT = 10.0


class ReportRefused(Exception):
    """The server said no in a way another try will not change (401, 422)."""


def _token(given: str | None) -> str:
    if given:
        return given
    if os.environ.get("INFRAWATCH_AGENT_TOKEN"):
        return os.environ["INFRAWATCH_AGENT_TOKEN"]
    path = os.environ.get("INFRAWATCH_AGENT_TOKEN_FILE")
    if path:
        return Path(path).read_text().strip()
    raise SystemExit("error: give --token, INFRAWATCH_AGENT_TOKEN or INFRAWATCH_AGENT_TOKEN_FILE")


def send(url: str, token: str, reading: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own server
        url.rstrip("/") + REPORT_PATH,
        data=json.dumps(reading).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            return answer
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        if exc.code in (401, 403, 404, 422):
            raise ReportRefused(f"{exc.code}: {detail}") from None
        raise


def run(url: str, token: str, interval: float, once: bool) -> int:
    failures = 0
    while True:
        started = time.monotonic()
        try:
            answer = send(url, token, read())
            if failures:
                log.warning("reporting again after %d failed attempt(s)", failures)
            failures = 0
            interval = float(answer.get("next_report_in_seconds", interval))
            if once:
                print(json.dumps(answer))
                return 0
        except ReportRefused as exc:
            log.error("the server refused the report: %s", exc)
            return 2
        except (OSError, ValueError) as exc:
            failures += 1
            # Said once, then once every 20 failures: a long outage is no flood.
            if failures == 1 or failures % 20 == 0:
                log.warning("report failed (%d in a row): %s", failures, exc)
            if once:
                return 1
        wait = interval if not failures else min(interval * 2 ** min(failures, 4), 300)
        time.sleep(max(0.0, wait - (time.monotonic() - started)) + random.uniform(0, 1))  # noqa: S311


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="infrawatch agent",
        description="Report this host's CPU, memory, swap, disks, load, network and uptime "
        "to InfraWatch every INTERVAL seconds.",
    )
    parser.add_argument(
        "--url", required=True, help="InfraWatch's base URL, e.g. https://iw.example.com"
    )
    parser.add_argument(
        "--token", help="this server's agent token (or INFRAWATCH_AGENT_TOKEN[_FILE])"
    )
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between reports (30)")
    parser.add_argument("--once", action="store_true", help="report once, print the answer, exit")
    args = parser.parse_args(argv)
    if args.interval < 5:
        parser.error("--interval is 5 seconds at least")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sys.exit(run(args.url, _token(args.token), args.interval, args.once))
