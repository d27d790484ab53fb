"""Network errors in words a person can act on, shared by the monitoring
probes, the SSH connection tests and the validation tools."""

from __future__ import annotations

import errno
import socket


def describe_os_error(exc: OSError) -> str:
    """A named reason: refused, unreachable, DNS failure, timed out."""
    if isinstance(exc, socket.gaierror):
        return f"DNS failure: {exc.strerror}"
    names = {
        errno.ECONNREFUSED: "connection refused",
        errno.EHOSTUNREACH: "host unreachable",
        errno.ENETUNREACH: "network unreachable",
        errno.ECONNRESET: "connection reset",
        errno.ETIMEDOUT: "timed out",
    }
    return names.get(exc.errno or 0, exc.strerror or str(exc))
