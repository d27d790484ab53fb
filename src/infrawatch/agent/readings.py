"""One reading of the host: what `/api/v1/agents/report` takes."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import psutil

from infrawatch import __version__

# Pseudo and read-only image filesystems say nothing about space running out.
SKIPPED_FILESYSTEMS = {"squashfs", "tmpfs", "devtmpfs", "overlay", "iso9660", "nsfs", "ramfs"}
MAX_DISKS = 64


def _disks() -> list[dict[str, Any]]:
    disks = []
    seen: set[str] = set()
    for part in psutil.disk_partitions(all=False):
        if part.fstype in SKIPPED_FILESYSTEMS or part.mountpoint in seen:
            continue
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:  # a mount that went away, or one we may not read
            continue
        seen.add(part.mountpoint)
        disks.append(
            {
                "mount": part.mountpoint[:255],
                "total_bytes": usage.total,
                "used_bytes": usage.used,
                "percent": round(usage.percent, 1),
            }
        )
    if not disks:  # a container whose root is an overlay: report it anyway
        usage = psutil.disk_usage("/")
        disks.append(
            {
                "mount": "/",
                "total_bytes": usage.total,
                "used_bytes": usage.used,
                "percent": round(usage.percent, 1),
            }
        )
    return disks[:MAX_DISKS]


def read() -> dict[str, Any]:
    """CPU is the share since the previous call (psutil keeps the mark);
    the first call of a process reads over a quarter second instead."""
    cpu = psutil.cpu_percent(interval=None)
    if cpu == 0.0:
        cpu = psutil.cpu_percent(interval=0.25)
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    load1, load5, load15 = os.getloadavg()
    net = psutil.net_io_counters()
    return {
        "agent_version": __version__,
        "hostname": socket.gethostname()[:255],
        "cpu_percent": round(cpu, 1),
        "cpu_count": psutil.cpu_count() or 1,
        "load": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "memory": {
            "total_bytes": memory.total,
            "used_bytes": memory.total - memory.available,
            "percent": round(memory.percent, 1),
        },
        "swap": {
            "total_bytes": swap.total,
            "used_bytes": swap.used,
            "percent": round(swap.percent, 1),
        },
        "disks": _disks(),
        "network": {"bytes_sent": net.bytes_sent, "bytes_received": net.bytes_recv},
        "uptime_seconds": int(time.time() - psutil.boot_time()),
        "processes": len(psutil.pids()),
    }
