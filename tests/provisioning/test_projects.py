"""Users' own playbooks: a git repository served over loopback (git daemon),
synced, run at a pinned commit, and retried from the task that failed."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from infrawatch.provisioning.lab.hosts import LabHost
from tests.conftest import Clients
from tests.live import free_port
from tests.provisioning.conftest import ssh_to
from tests.provisioning.test_hardening import all_events, register, wait_for_run

pytestmark = pytest.mark.hosts

PLAYBOOK = """\
- hosts: all
  become: true
  tasks:
    - name: version file
      ansible.builtin.copy:
        src: "{{ playbook_dir }}/version.txt"
        dest: /etc/iw-version
        mode: "0644"
    - name: needs the go-ahead
      ansible.builtin.command: test -e /etc/iw-go-ahead
      changed_when: false
    - name: done marker
      ansible.builtin.copy:
        content: "{{ marker }}\\n"
        dest: /etc/iw-done
        mode: "0644"
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def commit(repo: Path, version: str) -> str:
    (repo / "version.txt").write_text(version + "\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-qm", version)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def served_repo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    base = tmp_path / "git"
    repo = base / "ops.git"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "site.yml").write_text(PLAYBOOK)
    (repo / "vars.yml").write_text("marker: not a playbook\n")
    port = free_port()
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            "--reuseaddr",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"git://127.0.0.1:{port}/ops.git", repo
    finally:
        daemon.kill()
        daemon.wait()


async def synced(api: Clients, project_id: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            project = (await api.viewer.get(f"/api/v1/provisioning/projects/{project_id}")).json()
            if project["synced_at"] or project["sync_error"]:
                return dict(project)
            await asyncio.sleep(0.2)


async def test_a_project_playbook_runs_at_its_pinned_commit_and_retries_from_the_failed_task(
    api: Clients,
    served_repo: tuple[str, Path],
    fresh_host: LabHost,
    lab_key: asyncssh.SSHKey,
    lab_key_file: Path,
) -> None:
    url, repo = served_repo
    first = commit(repo, "v1")
    r = await api.operator.post(
        "/api/v1/provisioning/projects", json={"name": "ops", "source": url}
    )
    assert r.status_code == 403
    r = await api.admin.post(
        "/api/v1/provisioning/projects", json={"name": "ops", "source": url, "branch": "main"}
    )
    assert r.status_code == 202, r.text
    project = await synced(api, r.json()["id"])
    assert project["sync_error"] is None, project
    assert project["revision"] == first and project["playbooks"] == ["site.yml"]

    server_id = await register(api, fresh_host, lab_key, "app-p")
    base = {"servers": [server_id], "project": "ops", "vars": {"marker": "m1"}}
    for body, loc in [
        ({**base, "playbook": "nope.yml"}, ["body", "playbook"]),
        ({**base, "project": "other", "playbook": "site.yml"}, ["body", "project"]),
        ({**base, "playbook": "site.yml", "roles": ["base"]}, ["body", "roles"]),
    ]:
        r = await api.operator.post("/api/v1/provisioning/runs", json=body)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == loc, (body, r.text)

    r = await api.operator.post("/api/v1/provisioning/runs", json={**base, "playbook": "site.yml"})
    assert r.status_code == 202, r.text
    failed = await wait_for_run(api, r.json()["id"])
    assert failed["status"] == "failed" and failed["project_revision"] == first
    assert failed["hosts"][0]["failed_task"] == "needs the go-ahead"
    assert ssh_to(fresh_host, lab_key_file, "cat /etc/iw-version").stdout == "v1\n"

    # A push after the run does not change what its retry runs.
    commit(repo, "v2")
    assert ssh_to(fresh_host, lab_key_file, "sudo touch /etc/iw-go-ahead").returncode == 0
    r = await api.operator.post(f"/api/v1/provisioning/runs/{failed['id']}/retry")
    assert r.status_code == 202, r.text
    retried = await wait_for_run(api, r.json()["id"])
    assert retried["status"] == "succeeded", retried
    assert retried["project_revision"] == first
    tasks = [
        e["message"]
        for e in await all_events(api, retried["job_id"])
        if e["message"].startswith("TASK [")
    ]
    assert "TASK [version file]" not in tasks and "TASK [done marker]" in tasks, tasks
    assert ssh_to(fresh_host, lab_key_file, "cat /etc/iw-done").stdout == "m1\n"

    # A sync moves the project on; a new run takes the new commit.
    r = await api.admin.post(f"/api/v1/provisioning/projects/{project['id']}/sync")
    assert r.status_code == 202
    async with asyncio.timeout(60):
        while True:
            moved = await api.viewer.get(f"/api/v1/provisioning/projects/{project['id']}")
            if moved.json()["revision"] != first:
                break
            await asyncio.sleep(0.2)
    r = await api.operator.post("/api/v1/provisioning/runs", json={**base, "playbook": "site.yml"})
    latest = await wait_for_run(api, r.json()["id"])
    assert latest["status"] == "succeeded", latest
    assert ssh_to(fresh_host, lab_key_file, "cat /etc/iw-version").stdout == "v2\n"


async def test_a_project_that_cannot_be_synced_says_why(api: Clients) -> None:
    port = free_port()  # nothing listens there
    r = await api.admin.post(
        "/api/v1/provisioning/projects",
        json={"name": "gone", "source": f"git://127.0.0.1:{port}/none.git"},
    )
    project = await synced(api, r.json()["id"])
    assert project["synced_at"] is None and "git clone" in project["sync_error"]
    r = await api.admin.post(
        "/api/v1/provisioning/projects", json={"name": "bad", "source": "ext::sh -c touch% /tmp/x"}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "source"]
    r = await api.admin.post(
        "/api/v1/provisioning/projects", json={"name": "gone", "source": "/srv"}
    )
    assert r.status_code == 409
