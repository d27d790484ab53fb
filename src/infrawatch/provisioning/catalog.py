"""The roles shipped in the package, what each does and which variables it reads."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from infrawatch.provisioning.runner import roles_path
from infrawatch.provisioning.schemas import RoleOut

DESCRIPTIONS = {
    "base": "admin user with the server's vault key, passwordless sudo, timezone, packages",
    "ssh_hardening": "no root or password logins, strong ciphers/MACs/kex, MaxAuthTries, "
    "a banner; checked with sshd -T",
    "firewall": "ufw (Debian family) or firewalld (EL): deny incoming but SSH and the "
    "ports asked for; the controller is allowed first",
    "fail2ban": "the sshd jail on the journal, banning through ufw or firewalld",
    "auto_updates": "unattended-upgrades (Debian family) or dnf-automatic (EL): security updates",
    "clamav": "ClamAV with freshclam, extra signatures, and a scheduled scan (a systemd timer)",
    "certbot": "a Let's Encrypt certificate over ACME (the directory is a variable) and "
    "certbot's renew timer",
    "lamp": "Apache, MariaDB and PHP, a virtual host for the domain (the lamp stack's own role)",
    "rails": "Rails under puma behind nginx on PostgreSQL, gems from the distribution "
    "(the rails stack's own role)",
    "nginx_proxy": "nginx in front of an app on a local port (the django and rails roles use it)",
    "django": "Django under gunicorn behind nginx on PostgreSQL (the django stack's own role)",
    "agent": "the InfraWatch host agent as a systemd unit, with the server's own agent token "
    "(needs agent_url: InfraWatch's URL as the host reaches it)",
}
# The order a console form offers them in (and a hardened host wants them):
# the others follow by name.
ORDER = ("base", "ssh_hardening", "firewall", "fail2ban", "auto_updates")
# A run of any of these snapshots its hosts first unless told not to.
HARDENING = frozenset({"ssh_hardening", "firewall", "fail2ban", "auto_updates"})


@cache
def roles() -> dict[str, RoleOut]:
    found = {}
    rank = {name: i for i, name in enumerate(ORDER)}
    folders = sorted(roles_path().iterdir(), key=lambda p: (rank.get(p.name, len(ORDER)), p.name))
    for folder in folders:
        if not (folder / "tasks" / "main.yml").is_file():
            continue
        defaults_file = folder / "defaults" / "main.yml"
        defaults: dict[str, Any] = {}
        if defaults_file.is_file():
            defaults = yaml.safe_load(defaults_file.read_text()) or {}
        found[folder.name] = RoleOut(
            name=folder.name,
            description=DESCRIPTIONS.get(folder.name, ""),
            variables=defaults,
        )
    return found
