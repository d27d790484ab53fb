"""The host agent: reads the host with psutil and reports to InfraWatch.
It imports nothing of the server (no FastAPI, SQLAlchemy or Ansible), so a
host needs only `pip install infrawatch` and runs `infrawatch agent`."""
