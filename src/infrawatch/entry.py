"""The `infrawatch` command's entry point. `infrawatch agent` runs on
hosts and must not import the server (its web framework, ORM and Ansible),
so it is dispatched before anything of the server is loaded."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "agent":
        from infrawatch.agent.cli import main as agent_main

        agent_main(sys.argv[2:])
        return
    from infrawatch.cli import main as server_main

    server_main()
