"""Before `serve` says where it listens: is the address free, and if not,
who holds it."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path


def bind_problem(host: str, port: int) -> str | None:
    """None if host:port can be listened on now, else why not, in words."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"{host} is not an address this machine has ({exc.strerror})"
    family, kind, proto, _, address = infos[0]
    probe = socket.socket(family, kind, proto)
    try:
        # As uvicorn binds: SO_REUSEADDR, so a port in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            holder = listener_of(port)
            return f"port {port} on {host} is in use" + (f" by {holder}" if holder else "")
        if exc.errno == errno.EACCES:
            return f"port {port} needs privileges this user lacks (ports below 1024)"
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"{host} is not an address of this machine"
        return f"cannot listen on {host}:{port}: {exc.strerror}"
    finally:
        probe.close()
    return None


def listener_of(port: int) -> str | None:
    """`pid 1234 (python3 -m http.server 8000)` for the process listening on
    `port`, from /proc (Linux); None where that cannot be seen."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    proc = Path("/proc")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return f"pid {entry.name} ({_command(entry)})"
        except OSError:
            continue  # gone, or another user's process
    return "another user's process"


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes


def _command(process: Path) -> str:
    try:
        words = (process / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    line = " ".join(w.decode(errors="replace") for w in words if w)
    return line[:120] or "?"
