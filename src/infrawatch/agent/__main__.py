"""`python3 -m infrawatch.agent`: how the `agent` role's systemd unit runs it."""

from infrawatch.agent.cli import main

main()
