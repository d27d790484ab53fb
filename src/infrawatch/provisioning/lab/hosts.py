"""Disposable hosts on this machine, for provisioning for real without a
cloud: a cached Debian root filesystem under an overlayfs (lower = the base,
upper = the host's own changes), booted with systemd-nspawn so systemd is
PID 1, in a network namespace of its own on a private range that exists only
between those namespaces and a bridge here (no default route, no NAT: a lab
host reaches nothing but this machine).

A snapshot is a copy of the host's upper layer taken while it is stopped;
a restore swaps it back. Everything needs root; every step is a plain
command so that what failed says which."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
FLAVOURS = ("debian12", "ubuntu2404")
BOOT_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
LOGIN_USER = "admin"
APT_PROXY_PORT = 3142


class LabError(Exception):
    """A lab operation that could not be done; the message says which step."""


@dataclass(frozen=True)
class LabConfig:
    # Per-host state: overlay layers, snapshots, the console log.
    root: Path
    # Built root filesystems, shared by every lab on the machine.
    cache: Path = Path("/var/cache/infrawatch-lab")
    subnet: str = "10.213.0.0/16"
    bridge: str = "iwlab0"


@dataclass
class LabHost:
    name: str
    flavour: str
    address: str
    pid: int | None = None
    # The create-server build that made it (a cloud node's tag, here).
    build_tag: str | None = None

    @property
    def netns(self) -> str:
        return f"iwl-{self.name}"


def _run(*argv: str, what: str, timeout: float = 120.0) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            argv, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise LabError(f"{what}: {argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{what}: {argv[0]} did not finish in {timeout:g} s") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise LabError(f"{what}: {' '.join(detail) or f'exit {done.returncode}'}")
    return done.stdout


class Lab:
    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.hosts_dir = config.root / "hosts"

    # --- the base image ----------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        """Serialises lab changes across processes (test workers, replicas)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def base(self, flavour: str) -> Path:
        """The unpacked root filesystem of a flavour, built on first use."""
        if flavour not in FLAVOURS:
            raise LabError(f"unknown flavour {flavour!r} (known: {', '.join(FLAVOURS)})")
        script = resources.files("infrawatch.provisioning.lab").joinpath("rootfs.sh")
        with resources.as_file(script) as path:
            self.config.cache.mkdir(parents=True, exist_ok=True)
            with self._locked(self.config.cache / f".{flavour}.lock"):
                tarball = Path(
                    _run(
                        "env",
                        f"INFRAWATCH_LAB_CACHE={self.config.cache}",
                        "bash",
                        str(path),
                        flavour,
                        what="building the root filesystem",
                        timeout=1800,
                    ).strip()
                )
                unpacked = tarball.with_suffix("")
                if not (unpacked / ".complete").exists():
                    shutil.rmtree(unpacked, ignore_errors=True)
                    unpacked.mkdir(parents=True)
                    _run("tar", "-C", str(unpacked), "-xf", str(tarball), what="unpacking")
                    (unpacked / ".complete").touch()
        return unpacked

    # --- hosts -------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.hosts_dir / name

    def _save(self, host: LabHost) -> None:
        path = self._dir(host.name) / "host.json"
        path.write_text(json.dumps(asdict(host)))

    def get(self, name: str) -> LabHost:
        try:
            data = json.loads((self._dir(name) / "host.json").read_text())
        except FileNotFoundError:
            raise LabError(f"no lab host named {name!r}") from None
        host = LabHost(**data)
        if host.pid is not None and not _alive(host.pid):
            host.pid = None
        return host

    def hosts(self) -> list[LabHost]:
        if not self.hosts_dir.exists():
            return []
        return [self.get(p.name) for p in sorted(self.hosts_dir.iterdir()) if p.is_dir()]

    def create(
        self,
        name: str,
        authorized_key: str,
        flavour: str = "debian12",
        build_tag: str | None = None,
    ) -> LabHost:
        """A new host, booted, with `authorized_key` allowed to log in as `admin`."""
        if not NAME.match(name):
            raise LabError("a lab host's name is lower-case letters, digits and '-' (32 at most)")
        base = self.base(flavour)
        self.ensure_apt_proxy()
        with self._locked(self.config.root / ".hosts.lock"):
            folder = self._dir(name)
            if folder.exists():
                raise LabError(f"a lab host named {name!r} exists already")
            for part in ("upper", "work", "merged", "snapshots"):
                (folder / part).mkdir(parents=True)
            address = self._free_address(folder)
            host = LabHost(name=name, flavour=flavour, address=address, build_tag=build_tag)
            self._save(host)
        try:
            self._mount(host, base)
            self._prepare(host, authorized_key)
            self.start(name)
        except Exception:
            self.destroy(name)
            raise
        return self.get(name)

    def _free_address(self, folder: Path) -> str:
        """Addresses are claimed machine-wide (every lab on this machine
        shares the bridge): a file per address in the cache names the host
        folder holding it; one whose folder is gone is free again."""
        network = ipaddress.ip_network(self.config.subnet)
        claims = self.config.cache / "addresses"
        claims.mkdir(parents=True, exist_ok=True)
        with self._locked(claims / ".lock"):
            # .1 is the bridge; hosts start at .10 so a glance tells them apart.
            for offset, address in enumerate(network.hosts()):
                if offset < 9:
                    continue
                claim = claims / str(address)
                if claim.exists() and Path(claim.read_text()).exists():
                    continue
                claim.write_text(str(folder))
                return str(address)
        raise LabError(f"no free address left in {network}")

    def _release_address(self, host: LabHost) -> None:
        claim = self.config.cache / "addresses" / host.address
        with contextlib.suppress(FileNotFoundError):
            if Path(claim.read_text()) == self._dir(host.name):
                claim.unlink()

    def _mount(self, host: LabHost, base: Path) -> None:
        folder = self._dir(host.name)
        merged = folder / "merged"
        if os.path.ismount(merged):
            return
        options = f"lowerdir={base},upperdir={folder / 'upper'},workdir={folder / 'work'}"
        _run("mount", "-t", "overlay", "overlay", "-o", options, str(merged), what="overlay mount")

    def _prepare(self, host: LabHost, authorized_key: str) -> None:
        merged = self._dir(host.name) / "merged"
        (merged / "etc/hostname").write_text(f"{host.name}\n")
        hosts = (merged / "etc/hosts").read_text() if (merged / "etc/hosts").exists() else ""
        (merged / "etc/hosts").write_text(f"127.0.1.1 {host.name}\n{hosts}")
        # Each host its own host keys (the image has none).
        _run("ssh-keygen", "-A", "-f", str(merged), what="host keys")
        # The image's login is `admin` with passwordless sudo, as cloud images have.
        uid, gid = _ids_of(merged, LOGIN_USER)
        ssh_dir = merged / "home" / LOGIN_USER / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        keys = ssh_dir / "authorized_keys"
        keys.write_text(authorized_key.strip() + "\n")
        keys.chmod(0o600)
        for path in (ssh_dir, keys):
            os.chown(path, uid, gid)
        (merged / "etc/apt/apt.conf.d/01infrawatch-lab-proxy").write_text(
            f'Acquire::http::Proxy "{self.proxy_url()}";\n'
        )

    # --- network -----------------------------------------------------------------

    def _ensure_bridge(self) -> None:
        network = ipaddress.ip_network(self.config.subnet)
        bridge = self.config.bridge
        if not Path(f"/sys/class/net/{bridge}").exists():
            with contextlib.suppress(LabError):  # another process made it meanwhile
                _run("ip", "link", "add", bridge, "type", "bridge", what="bridge")
            gateway = f"{next(network.hosts())}/{network.prefixlen}"
            with contextlib.suppress(LabError):
                _run("ip", "addr", "add", gateway, "dev", bridge, what="bridge address")
        _run("ip", "link", "set", bridge, "up", what="bridge up")

    def _ensure_netns(self, host: LabHost) -> None:
        self._ensure_bridge()
        if Path(f"/run/netns/{host.netns}").exists():
            return
        prefix = ipaddress.ip_network(self.config.subnet).prefixlen
        veth = _veth_of(host.name)
        if Path(f"/sys/class/net/{veth}").exists():
            # Left from a namespace removed a moment ago (the kernel frees it late).
            _run("ip", "link", "del", veth, what="stale veth removal")
        steps = [
            ("ip", "netns", "add", host.netns),
            (
                "ip",
                "link",
                "add",
                veth,
                "type",
                "veth",
                "peer",
                "name",
                "host0",
                "netns",
                host.netns,
            ),
            ("ip", "link", "set", veth, "master", self.config.bridge, "up"),
            ("ip", "-n", host.netns, "addr", "add", f"{host.address}/{prefix}", "dev", "host0"),
            ("ip", "-n", host.netns, "link", "set", "host0", "up"),
            ("ip", "-n", host.netns, "link", "set", "lo", "up"),
        ]
        for step in steps:
            _run(*step, what=f"network namespace of {host.name}")

    # --- packages ----------------------------------------------------------------

    def proxy_url(self) -> str:
        return f"http://{self._gateway()}:{APT_PROXY_PORT}"

    def _gateway(self) -> str:
        return str(next(ipaddress.ip_network(self.config.subnet).hosts()))

    def ensure_apt_proxy(self) -> None:
        """apt-cacher-ng on the bridge address: the only way out a lab host
        has, for Debian packages only, cached for every later host. One per
        machine, shared by every lab; it stays up like the bridge."""
        self._ensure_bridge()
        folder = self.config.cache / "apt-cacher-ng"
        with self._locked(folder / ".lock"):
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self._gateway(), APT_PROXY_PORT), 1),
            ):
                return
            for part in ("cache", "log", "conf"):
                (folder / part).mkdir(parents=True, exist_ok=True)
            # No Remap lines: the host asks for its mirror's own URL and the
            # proxy fetches it as it is (the stock config answers 503 here).
            (folder / "conf" / "acng.conf").write_text(
                f"CacheDir: {folder / 'cache'}\n"
                f"LogDir: {folder / 'log'}\n"
                "SupportDir: /usr/lib/apt-cacher-ng\n"
                f"Port: {APT_PROXY_PORT}\n"
                f"BindAddress: {self._gateway()}\n"
                "ConnectProto: v4\n"
                "ExThreshold: 4\n"
                "ForeGround: 1\n"
            )
            log = (folder / "log" / "daemon.log").open("ab")
            try:
                subprocess.Popen(  # noqa: S603
                    ["apt-cacher-ng", "-c", str(folder / "conf")],  # noqa: S607
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except FileNotFoundError:
                raise LabError(
                    "apt-cacher-ng is not installed (apt-get install apt-cacher-ng)"
                ) from None
            finally:
                log.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if _listening(self._gateway(), APT_PROXY_PORT):
                    return
                time.sleep(0.1)
            raise LabError(f"apt-cacher-ng did not listen on {self.proxy_url()}")

    # --- power -------------------------------------------------------------------

    def start(self, name: str) -> LabHost:
        host = self.get(name)
        if host.pid is not None:
            return host
        folder = self._dir(name)
        self._mount(host, self.base(host.flavour))
        self._ensure_netns(host)
        console = (folder / "console.log").open("ab")
        try:
            process = subprocess.Popen(  # noqa: S603 - fixed argv
                [  # noqa: S607 - from PATH, as every lab command
                    "systemd-nspawn",
                    "--boot",
                    "--register=no",
                    "--keep-unit",
                    "--quiet",
                    "-D",
                    str(folder / "merged"),
                    "-M",
                    name,
                    f"--network-namespace-path=/run/netns/{host.netns}",
                    # ufw and Fail2Ban change the host's firewall.
                    "--capability=CAP_NET_ADMIN,CAP_NET_RAW",
                ],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                # Not in our process group: a Ctrl-C to `serve` does not kill hosts.
                start_new_session=True,
            )
        except FileNotFoundError:
            raise LabError(
                "systemd-nspawn is not installed (apt-get install systemd-container)"
            ) from None
        finally:
            console.close()
        host.pid = process.pid
        self._save(host)
        self._wait_for_ssh(host, process)
        return host

    def _wait_for_ssh(self, host: LabHost, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (self._dir(host.name) / "console.log").read_text(errors="replace")[-400:]
                raise LabError(f"{host.name} stopped while booting: {tail}")
            if _listening(host.address, 22):
                return
            time.sleep(0.2)
        raise LabError(f"{host.name}: sshd did not answer within {BOOT_TIMEOUT:g} s")

    def stop(self, name: str) -> LabHost:
        host = self.get(name)
        if host.pid is not None:
            # nspawn turns SIGTERM into an orderly shutdown of the host's systemd.
            with contextlib.suppress(ProcessLookupError):
                os.kill(host.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while _alive(host.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(host.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(host.pid, signal.SIGKILL)
                while _alive(host.pid):
                    time.sleep(0.05)
        host.pid = None
        self._save(host)
        # A machine that is off keeps no firewall state: without this, rules
        # of the last boot would still be in the namespace at the next one
        # (a restored host would boot behind its later self's firewall).
        self._drop_netns(host.name)
        return host

    def _drop_netns(self, name: str) -> None:
        # The veth pair first, which is synchronous: a namespace's own
        # interfaces are freed late, and the next boot reuses the name.
        veth = _veth_of(name)
        if Path(f"/sys/class/net/{veth}").exists():
            _run("ip", "link", "del", veth, what="veth removal")
        netns = f"iwl-{name}"
        if Path(f"/run/netns/{netns}").exists():
            _run("ip", "netns", "del", netns, what="network namespace removal")

    # --- snapshots ---------------------------------------------------------------

    def snapshot(self, name: str, label: str) -> str:
        """Copies the host's own layer while it is stopped (so the copy is
        consistent), then boots it again."""
        if not NAME.match(label):
            raise LabError("a snapshot's label is lower-case letters, digits and '-'")
        was_running = self.get(name).pid is not None
        self.stop(name)
        folder = self._dir(name)
        target = folder / "snapshots" / label
        shutil.rmtree(target, ignore_errors=True)
        _run("cp", "-a", str(folder / "upper"), str(target), what="snapshot copy")
        if was_running:
            self.start(name)
        return label

    def snapshots(self, name: str) -> list[str]:
        self.get(name)
        return sorted(p.name for p in (self._dir(name) / "snapshots").iterdir())

    def restore(self, name: str, label: str) -> LabHost:
        folder = self._dir(name)
        source = folder / "snapshots" / label
        if not source.is_dir():
            raise LabError(f"{name} has no snapshot {label!r}")
        self.stop(name)
        self._unmount(name)
        for part in ("upper", "work"):
            shutil.rmtree(folder / part)
        _run("cp", "-a", str(source), str(folder / "upper"), what="restore copy")
        (folder / "work").mkdir()
        return self.start(name)

    # --- the end -----------------------------------------------------------------

    def _unmount(self, name: str) -> None:
        merged = self._dir(name) / "merged"
        if os.path.ismount(merged):
            _run("umount", str(merged), what="overlay unmount")

    def destroy(self, name: str) -> None:
        """Stops and removes the host with its namespace and layers; also
        a half-made one."""
        folder = self._dir(name)
        if not folder.exists():
            return
        with contextlib.suppress(LabError):
            self.stop(name)
        with contextlib.suppress(LabError):
            self._unmount(name)
        self._drop_netns(name)
        with contextlib.suppress(LabError, json.JSONDecodeError):
            self._release_address(self.get(name))
        shutil.rmtree(folder)


def _veth_of(name: str) -> str:
    """The host side of a lab host's veth pair (15 characters at most)."""
    return "iwv" + hashlib.sha256(name.encode()).hexdigest()[:10]


def _listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), 1):
            return True
    except OSError:
        return False


def _ids_of(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise LabError(f"the image has no user {user!r}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone (reap it).
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True
