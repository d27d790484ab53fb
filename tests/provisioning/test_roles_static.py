"""The roles without a host: every role passes ansible's syntax check, the
EL branches are listed, and the templates render for both families. The EL
family cannot be run on a real host here (its mirrors are unreachable), so
these checks are what stands behind its branches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infrawatch.provisioning import catalog, stacks
from infrawatch.provisioning.runner import playbook_for, roles_path

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def ansible(tmp_path: Path, playbook: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "site.yml").write_text(playbook)
    (tmp_path / "hosts").write_text(
        f"target ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(roles_path()),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_HOME": str(tmp_path / "home"),
    }
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "hosts"), str(tmp_path / "site.yml"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_every_role_and_stack_passes_the_syntax_check(tmp_path: Path) -> None:
    roles = list(catalog.roles())
    assert {"base", "ssh_hardening", "firewall", "fail2ban", "auto_updates"} <= set(roles)
    done = ansible(tmp_path, playbook_for(roles), "--syntax-check")
    assert done.returncode == 0, done.stdout + done.stderr
    for stack in stacks.STACKS.values():
        assert set(stack.roles) <= set(roles), stack.name


def test_the_el_branches_are_there_for_firewall_and_updates(tmp_path: Path) -> None:
    done = ansible(tmp_path, playbook_for(["firewall", "auto_updates"]), "--list-tasks")
    assert done.returncode == 0, done.stderr
    for task in (
        "firewall | firewalld installed",
        "firewall | allow SSH (firewalld)",
        "auto_updates | installed (dnf-automatic)",
        "auto_updates | the timer (dnf-automatic)",
    ):
        assert task in done.stdout, task


@pytest.mark.parametrize(
    ("family", "banaction", "service"),
    [("Debian", "ufw", "ssh"), ("RedHat", "firewallcmd-rich-rules", "sshd")],
)
def test_templates_render_for_each_family(
    tmp_path: Path, family: str, banaction: str, service: str
) -> None:
    """The jail and the sshd settings with that family's facts, as ansible renders them."""
    facts = {"ansible_os_family": family, "controller_address": "127.0.0.2", "ssh_port": 22}
    supported = {
        "results": [
            {"stdout_lines": ["chacha20-poly1305@openssh.com", "aes128-cbc"]},
            {"stdout_lines": ["hmac-sha2-256-etm@openssh.com", "hmac-md5"]},
            {"stdout_lines": ["curve25519-sha256", "diffie-hellman-group1-sha1"]},
        ]
    }
    roles = roles_path()
    play = [
        {
            "hosts": "all",
            "gather_facts": False,
            "vars": {**facts, "ssh_supported": supported},
            "vars_files": [
                str(roles / "fail2ban/defaults/main.yml"),
                str(roles / "ssh_hardening/defaults/main.yml"),
            ],
            "tasks": [
                {
                    "name": "render",
                    "ansible.builtin.copy": {
                        "dest": str(tmp_path / f"{name}.out"),
                        "content": "{{ lookup('template', '%s') }}" % (roles / path),
                        "mode": "0600",
                    },
                }
                for name, path in (
                    ("jail", "fail2ban/templates/jail.local.j2"),
                    ("sshd", "ssh_hardening/templates/hardening.conf.j2"),
                )
            ]
            + [
                {
                    "name": "restart handler's service",
                    "ansible.builtin.copy": {
                        "dest": str(tmp_path / "service.out"),
                        "content": "{{ 'sshd' if ansible_os_family == 'RedHat' else 'ssh' }}",
                        "mode": "0600",
                    },
                }
            ],
        }
    ]
    done = ansible(tmp_path, json.dumps(play))
    assert done.returncode == 0, done.stdout + done.stderr
    jail = (tmp_path / "jail.out").read_text()
    assert f"banaction = {banaction}" in jail
    assert "ignoreip = 127.0.0.1/8 ::1 127.0.0.2" in jail and "backend = systemd" in jail
    sshd = (tmp_path / "sshd.out").read_text()
    # Only strong algorithms, and only those this sshd knows.
    assert "Ciphers chacha20-poly1305@openssh.com\n" in sshd
    assert "MACs hmac-sha2-256-etm@openssh.com\n" in sshd
    assert "KexAlgorithms curve25519-sha256\n" in sshd
    assert "PermitRootLogin no" in sshd and "MaxAuthTries 3" in sshd
    handler = (roles / "ssh_hardening/handlers/main.yml").read_text()
    assert "'sshd' if ansible_os_family == 'RedHat' else 'ssh'" in handler
    assert (tmp_path / "service.out").read_text() == service
