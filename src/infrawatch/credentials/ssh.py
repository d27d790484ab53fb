"""SSH key material and the remote steps of tests and rotation (asyncssh).

Private keys live here only as decrypted strings passed in by the caller;
nothing in this module logs or returns them."""

from __future__ import annotations

import asyncio
import shlex
import time
from dataclasses import dataclass
from typing import Any

import asyncssh

from infrawatch.core.neterrors import describe_os_error

RSA_BITS = 4096
AUTHORIZED_KEYS = "~/.ssh/authorized_keys"


@dataclass(frozen=True)
class KeyMaterial:
    private_openssh: str
    public_openssh: str  # "ssh-ed25519 AAAA… comment"
    fingerprint: str  # "SHA256:…"
    algorithm: str  # "ssh-ed25519", "ssh-rsa", …
    bits: int | None


class KeyError_(ValueError):
    """A key that cannot be imported; the message says why and `field`
    which input is at fault (private_key or passphrase)."""

    def __init__(self, message: str, field: str = "private_key") -> None:
        super().__init__(message)
        self.field = field


def _material(key: asyncssh.SSHKey, comment: str) -> KeyMaterial:
    key.set_comment(comment)
    bits = _rsa_bits(key)
    return KeyMaterial(
        private_openssh=key.export_private_key("openssh").decode(),
        public_openssh=key.export_public_key("openssh").decode().strip(),
        fingerprint=key.get_fingerprint("sha256"),
        algorithm=key.get_algorithm(),
        bits=bits,
    )


def _rsa_bits(key: asyncssh.SSHKey) -> int | None:
    if key.get_algorithm() != "ssh-rsa":
        return None
    return int(getattr(key.pyca_key, "key_size", 0))


def generate(kind: str, comment: str) -> KeyMaterial:
    """ed25519, or RSA with 4096 bits."""
    if kind == "rsa":
        key = asyncssh.generate_private_key("ssh-rsa", key_size=RSA_BITS)
    else:
        key = asyncssh.generate_private_key("ssh-ed25519")
    return _material(key, comment)


def import_private(text: str, passphrase: str | None, comment: str) -> KeyMaterial:
    """OpenSSH or PEM (PKCS#1/PKCS#8), optionally encrypted. The key is
    stored unencrypted by its passphrase (the vault encrypts it instead), so
    jobs can use it without anyone typing the passphrase again."""
    try:
        key = asyncssh.import_private_key(text.strip().encode(), passphrase or None)
    except asyncssh.KeyEncryptionError as exc:
        raise KeyError_(f"could not decrypt the key: {exc}", "passphrase") from None
    except asyncssh.KeyImportError as exc:
        message = str(exc)
        if "passphrase" in message.lower():
            raise KeyError_("the key is encrypted: a passphrase is needed", "passphrase") from None
        raise KeyError_(f"not a private key in OpenSSH or PEM format: {message}") from None
    if (_rsa_bits(key) or 4096) < 2048:
        raise KeyError_("RSA keys shorter than 2048 bits are refused")
    return _material(key, comment)


def key_blob(public_openssh: str) -> str:
    """The base64 part of a public key line: what identifies it in an
    authorized_keys file whatever its options or comment."""
    parts = public_openssh.split()
    return parts[1] if len(parts) > 1 else parts[0]


# --- a certificate authority ---------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    openssh: str  # "ssh-ed25519-cert-v01@openssh.com AAAA… comment"
    serial: int
    valid_after: int
    valid_before: int


def sign_user_key(
    ca_private: str,
    user_public: str,
    key_id: str,
    principals: list[str],
    valid_seconds: int,
    serial: int,
) -> Certificate:
    """A user certificate for `principals`, valid from a minute ago (clock
    skew) for `valid_seconds`."""
    ca = asyncssh.import_private_key(ca_private)
    try:
        user = asyncssh.import_public_key(user_public)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise KeyError_(f"not an OpenSSH public key: {exc}", "public_key") from None
    now = int(time.time())
    cert = ca.generate_user_certificate(
        user,
        key_id,
        serial=serial,
        principals=principals,
        valid_after=now - 60,
        valid_before=now + valid_seconds,
        comment=key_id,
    )
    return Certificate(
        openssh=cert.export_certificate("openssh").decode().strip(),
        serial=serial,
        valid_after=now - 60,
        valid_before=now + valid_seconds,
    )


# --- talking to a server ------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    username: str


class StepFailed(Exception):
    """A named stage (tcp, handshake, host_key, authentication, command) failed."""

    def __init__(self, stage: str, message: str, facts: dict[str, Any] | None = None) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message
        self.facts = facts or {}


@dataclass
class HostKeySeen:
    public_openssh: str
    fingerprint: str
    algorithm: str


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


async def fetch_host_key(target: Target, timeout: float) -> tuple[HostKeySeen, dict[str, float]]:
    """TCP and the key exchange only: no credentials are offered to a host
    before its key has been checked."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(target.host, target.port)
            timings["tcp"] = _ms(start)
            writer.close()
            start = time.perf_counter()
            key = await asyncssh.get_server_host_key(target.host, target.port, config=[])
            timings["handshake"] = _ms(start)
    except TimeoutError:
        stage = "handshake" if "tcp" in timings else "tcp"
        raise StepFailed(stage, f"timed out after {timeout:g} s") from None
    except OSError as exc:
        stage = "handshake" if "tcp" in timings else "tcp"
        raise StepFailed(stage, describe_os_error(exc)) from None
    except asyncssh.Error as exc:
        raise StepFailed("handshake", exc.reason or str(exc)) from None
    if key is None:
        raise StepFailed("handshake", "the server offered no host key")
    seen = HostKeySeen(
        public_openssh=key.export_public_key("openssh").decode().strip(),
        fingerprint=key.get_fingerprint("sha256"),
        algorithm=key.get_algorithm(),
    )
    return seen, timings


def check_host_key(seen: HostKeySeen, trusted_fingerprint: str | None) -> None:
    if trusted_fingerprint is not None and seen.fingerprint != trusted_fingerprint:
        raise StepFailed(
            "host_key",
            f"the host key changed: trusted {trusted_fingerprint}, offered {seen.fingerprint}. "
            "If the server was reinstalled, forget its host key and test again.",
            {"trusted": trusted_fingerprint, "offered": seen.fingerprint},
        )


async def run(
    target: Target,
    private_openssh: str,
    host_key: HostKeySeen,
    command: str,
    timeout: float,
    certificate: str | None = None,
) -> tuple[str, dict[str, float]]:
    """Log in with this key (and certificate, if given), trusting only this
    host key, and run one command; a non-zero exit is a failure naming its
    stderr."""
    timings: dict[str, float] = {}
    trusted = asyncssh.import_public_key(host_key.public_openssh)
    private = asyncssh.import_private_key(private_openssh)
    client_key: Any = private
    if certificate is not None:
        client_key = (private, asyncssh.import_certificate(certificate))
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            async with asyncssh.connect(
                target.host,
                target.port,
                username=target.username,
                client_keys=[client_key],
                known_hosts=([trusted], [], []),
                agent_path=None,
                password=None,
                kbdint_auth=False,
                gss_auth=False,
                config=[],
                login_timeout=timeout,
            ) as conn:
                timings["authentication"] = _ms(start)
                start = time.perf_counter()
                completed = await conn.run(command, check=False)
                timings["command"] = _ms(start)
    except TimeoutError:
        stage = "command" if "authentication" in timings else "authentication"
        raise StepFailed(stage, f"timed out after {timeout:g} s") from None
    except asyncssh.PermissionDenied:
        raise StepFailed(
            "authentication", f"permission denied (publickey) for user {target.username!r}"
        ) from None
    except asyncssh.HostKeyNotVerifiable as exc:
        raise StepFailed("host_key", f"host key not verifiable: {exc.reason}") from None
    except asyncssh.Error as exc:
        raise StepFailed("authentication", exc.reason or str(exc)) from None
    except OSError as exc:
        raise StepFailed("tcp", describe_os_error(exc)) from None
    if completed.exit_status != 0:
        stderr = str(completed.stderr or "").strip()[-500:]
        raise StepFailed(
            "command",
            f"exit status {completed.exit_status}" + (f": {stderr}" if stderr else ""),
        )
    return str(completed.stdout or ""), timings


# --- authorized_keys, edited with POSIX sh on the server ----------------------------


def append_key_command(public_openssh: str) -> str:
    """Add the line unless a line with the same key is there already; makes
    ~/.ssh (0700) and the file (0600) if missing. Fails loudly (non-zero)
    if the file cannot be written."""
    line = shlex.quote(public_openssh)
    blob = shlex.quote(key_blob(public_openssh))
    f = AUTHORIZED_KEYS
    return (
        "set -e; umask 077; mkdir -p ~/.ssh; touch " + f + "; "
        "if grep -qF -- " + blob + " " + f + "; then exit 0; fi; "
        "[ -s " + f + ' ] && [ "$(tail -c1 ' + f + ')" != "" ] && echo >> ' + f + "; "
        "printf '%s\\n' " + line + " >> " + f
    )


def remove_key_command(public_openssh: str) -> str:
    """Drop every line carrying this key. Rewrites in place (same inode,
    owner and mode); refuses to leave the file empty of the key we log in
    with, which the caller guarantees by removing only after the new key
    has been verified."""
    blob = shlex.quote(key_blob(public_openssh))
    f = AUTHORIZED_KEYS
    return (
        "set -e; f=" + f + '; t="$f.infrawatch.$$"; '
        "{ grep -vF -- " + blob + ' "$f" || true; } > "$t"; '
        'cat "$t" > "$f"; rm -f "$t"; '
        "if grep -qF -- " + blob + ' "$f"; then echo "key still present" >&2; exit 1; fi'
    )
