"""A host's figures (from the agent's report or a node_exporter scrape)
turned into the facts conditions test and the thresholds they cross."""

from __future__ import annotations

from typing import Any

SKIPPED_FILESYSTEMS = frozenset(
    {"squashfs", "tmpfs", "devtmpfs", "overlay", "iso9660", "nsfs", "ramfs", "proc", "sysfs"}
)


def disk_max(readings: dict[str, Any]) -> float:
    return max((float(d["percent"]) for d in readings.get("disks", [])), default=0.0)


def load_per_core(readings: dict[str, Any]) -> float:
    return round(float(readings["load"][0]) / max(int(readings.get("cpu_count", 1)), 1), 3)


def thresholds(
    readings: dict[str, Any], settings: dict[str, Any]
) -> tuple[dict[str, float], list[str]]:
    """The facts conditions can test, and every threshold crossed, in words.
    A figure the source does not give (a node_exporter scrape has no CPU
    share of its own) is left out, and its threshold with it."""
    facts: dict[str, float] = {"RESPONSE_TIME": 0.0}
    if readings.get("cpu_percent") is not None:
        facts["CPU"] = float(readings["cpu_percent"])
    facts["MEMORY"] = float(readings["memory"]["percent"])
    facts["SWAP"] = float(readings["swap"]["percent"])
    facts["DISK"] = disk_max(readings)
    facts["LOAD_PER_CORE"] = load_per_core(readings)
    breaches = []
    limit = settings.get("disk_percent")
    for disk in readings.get("disks", []):
        if limit is not None and float(disk["percent"]) > limit:
            breaches.append(f"disk {disk['mount']} at {disk['percent']} % > {limit} %")
    for fact, setting, label in (
        ("MEMORY", "memory_percent", "memory"),
        ("SWAP", "swap_percent", "swap"),
        ("CPU", "cpu_percent", "CPU"),
    ):
        limit = settings.get(setting)
        if limit is not None and fact in facts and facts[fact] > limit:
            breaches.append(f"{label} at {facts[fact]} % > {limit} %")
    limit = settings.get("load_per_core")
    if limit is not None and facts["LOAD_PER_CORE"] > limit:
        breaches.append(f"load {facts['LOAD_PER_CORE']} per core > {limit}")
    return facts, breaches
