"""A real OpenSSH server for the tests: Debian's sshd (installed by
.ci/run), started on 127.0.0.1 with its own config, host key and a
throwaway login user whose ~/.ssh/authorized_keys the test controls."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from tests.conftest import unavailable
from tests.live import free_port

SSHD = "/usr/sbin/sshd"


@dataclass
class SshServer:
    host: str
    port: int
    user: str
    home: Path
    base: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def authorized_keys(self) -> Path:
        return self.home / ".ssh" / "authorized_keys"

    def authorize(self, *public_keys: str) -> None:
        ssh_dir = self.home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        self.authorized_keys.write_text("".join(k.strip() + "\n" for k in public_keys))
        self.authorized_keys.chmod(0o600)
        shutil.chown(ssh_dir, self.user, self.user)
        shutil.chown(self.authorized_keys, self.user, self.user)

    def authorized_lines(self) -> list[str]:
        return [ln for ln in self.authorized_keys.read_text().splitlines() if ln.strip()]

    def new_host_key(self) -> str:
        """Replace the host key and restart: what a reinstalled server (or a
        man in the middle) looks like. Returns the new fingerprint."""
        self.stop()
        fingerprint = _write_host_key(self.base / "host_key")
        self.start()
        return fingerprint

    def trust_ca(self, ca_public_key: str) -> None:
        """TrustedUserCAKeys: certificates this CA signs log in."""
        self.stop()
        (self.base / "user_ca.pub").write_text(ca_public_key.strip() + "\n")
        self.start()

    def start(self) -> None:
        config = self.base / "sshd_config"
        ca_file = self.base / "user_ca.pub"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.host}",
                    f"HostKey {self.base / 'host_key'}",
                    f"PidFile {self.base / 'sshd.pid'}",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "AuthorizedKeysFile .ssh/authorized_keys",
                    f"AllowUsers {self.user}",
                    "StrictModes yes",
                    "LogLevel VERBOSE",
                    f"TrustedUserCAKeys {ca_file}" if ca_file.exists() else "",
                    "",
                ]
            )
        )
        log = (self.base / "sshd.log").open("a")
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.2),
            ):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not start: {(self.base / 'sshd.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    async def can_login(self, private_openssh: str) -> bool:
        try:
            async with asyncssh.connect(
                self.host,
                self.port,
                username=self.user,
                client_keys=[asyncssh.import_private_key(private_openssh)],
                known_hosts=None,
                agent_path=None,
                config=[],
            ) as conn:
                return (await conn.run("true")).exit_status == 0
        except asyncssh.PermissionDenied:
            return False


def _write_host_key(path: Path) -> str:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.unlink(missing_ok=True)
    path.write_bytes(key.export_private_key("openssh"))
    path.chmod(0o600)
    return str(key.get_fingerprint("sha256"))


@contextlib.contextmanager
def ssh_server() -> Iterator[SshServer]:
    if not Path(SSHD).exists():
        unavailable("sshd (Debian's openssh-server; .ci/run installs it)")
    if os.geteuid() != 0:
        unavailable("root, to create the throwaway SSH login user")
    base = Path(tempfile.mkdtemp(prefix="iwt-sshd-"))
    base.chmod(0o755)  # the login user walks through it to its home
    user = f"iwt{uuid.uuid4().hex[:8]}"
    home = base / "home"
    subprocess.run(
        [
            "useradd",
            "--create-home",
            "--home-dir",
            str(home),
            "--shell",
            "/bin/sh",
            "--password",
            "*",
            user,
        ],
        check=True,
        capture_output=True,
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    _write_host_key(base / "host_key")
    server = SshServer(host="127.0.0.1", port=free_port(), user=user, home=home, base=base)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        subprocess.run(["userdel", "--remove", user], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
