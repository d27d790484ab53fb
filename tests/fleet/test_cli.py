"""`infrawatch apply -f` and `infrawatch export --all` as a user runs them:
the plan printed first, a dry run that changes nothing, the environment for
secrets, and an export applied back changing nothing."""

from __future__ import annotations

from pathlib import Path

from tests.live import infrawatch

FLEET = """
servers:
  - name: web-1
    hostname: web-1.lab.invalid
monitors:
  - name: web-1 http
    type: http
    target: http://127.0.0.1:9/
    server: web-1
    paused: true
channels:
  - name: ops
    url: "${env:OPS_URL}"
"""


def test_apply_prints_the_plan_then_applies_and_an_export_round_trips(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert infrawatch(cli_env, "db", "upgrade").returncode == 0
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "a.yaml").write_text(FLEET)
    env = {**cli_env, "OPS_URL": "json://127.0.0.1:9/hook?token=from-the-shell"}

    dry = infrawatch(env, "apply", "-f", str(fleet), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "+ servers web-1",
        "+ monitors web-1 http",
        "+ channels ops",
        "3 to create, 0 to update, 0 to delete (dry run)",
    ]
    done = infrawatch(env, "apply", "-f", str(fleet))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "3 created, 0 updated, 0 deleted"
    again = infrawatch(env, "apply", "-f", str(fleet))
    assert again.stdout.splitlines() == ["nothing to change"]

    exported = tmp_path / "export.yaml"
    written = infrawatch(env, "export", "--all", "-o", str(exported))
    assert written.returncode == 0, written.stderr
    text = exported.read_text()
    assert "from-the-shell" not in text and "web-1 http" in text
    back = infrawatch(env, "apply", "-f", str(exported), "--prune")
    assert back.returncode == 0, back.stderr
    assert back.stdout.splitlines() == ["nothing to change"]

    broken = tmp_path / "broken.yaml"
    broken.write_text("servers:\n  - name: a\n    ssh_port: 0\n")
    refused = infrawatch(env, "apply", "-f", str(broken))
    assert refused.returncode != 0 and "ssh_port" in refused.stderr
    assert "Traceback" not in refused.stderr
    no_env = infrawatch(cli_env, "apply", "-f", str(fleet), "--dry-run")
    assert no_env.returncode != 0 and "OPS_URL" in no_env.stderr
    assert "--prune" in infrawatch(cli_env, "apply", "--help").stdout
