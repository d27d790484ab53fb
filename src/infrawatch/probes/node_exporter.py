"""A `node_exporter` monitor: scrape a Prometheus text endpoint (Prometheus'
node_exporter, or anything exporting its metric names) and judge it with
the agent's thresholds. One scrape gives no CPU share (that needs two
counter readings), so CPU is the one threshold it does not have."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from infrawatch.probes import ProbeResult
from infrawatch.probes.host_figures import SKIPPED_FILESYSTEMS, thresholds
from infrawatch.probes.http import HttpClient, probe_http


class NotAnExporter(ValueError):
    pass


def _percent(used: float, total: float) -> float:
    return round(100.0 * used / total, 1) if total > 0 else 0.0


def readings_from_exporter(text: str) -> dict[str, Any]:
    """The agent's reading shape from node_exporter's metric names."""
    values: dict[str, float] = {}
    size: dict[str, float] = {}
    avail: dict[str, float] = {}
    cpus: set[str] = set()
    network: defaultdict[str, float] = defaultdict(float)
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise NotAnExporter(f"not the Prometheus text format: {exc}") from None
    for family in families:
        for sample in family.samples:
            name, labels = sample.name, sample.labels
            if name in ("node_filesystem_size_bytes", "node_filesystem_avail_bytes"):
                if labels.get("fstype") in SKIPPED_FILESYSTEMS:
                    continue
                target = size if name.endswith("size_bytes") else avail
                target[labels.get("mountpoint", "?")] = sample.value
            elif name == "node_cpu_seconds_total" and labels.get("mode") == "idle":
                cpus.add(labels.get("cpu", ""))
            elif name in ("node_network_transmit_bytes_total", "node_network_receive_bytes_total"):
                if labels.get("device") != "lo":
                    network[name] += sample.value
            else:
                values[name] = sample.value
    if "node_memory_MemTotal_bytes" not in values or "node_load1" not in values:
        raise NotAnExporter("no node_memory_MemTotal_bytes or node_load1: not a node_exporter")
    memory_total = values["node_memory_MemTotal_bytes"]
    memory_free = values.get(
        "node_memory_MemAvailable_bytes", values.get("node_memory_MemFree_bytes", 0.0)
    )
    swap_total = values.get("node_memory_SwapTotal_bytes", 0.0)
    swap_free = values.get("node_memory_SwapFree_bytes", 0.0)
    return {
        "cpu_percent": None,
        "cpu_count": max(len(cpus), 1),
        "load": [
            values["node_load1"],
            values.get("node_load5", 0.0),
            values.get("node_load15", 0.0),
        ],
        "memory": {
            "total_bytes": memory_total,
            "used_bytes": memory_total - memory_free,
            "percent": _percent(memory_total - memory_free, memory_total),
        },
        "swap": {
            "total_bytes": swap_total,
            "used_bytes": swap_total - swap_free,
            "percent": _percent(swap_total - swap_free, swap_total),
        },
        "disks": [
            {
                "mount": mount,
                "total_bytes": total,
                "used_bytes": total - avail.get(mount, 0.0),
                "percent": _percent(total - avail.get(mount, 0.0), total),
            }
            for mount, total in sorted(size.items())
        ],
        "network": {
            "bytes_sent": network["node_network_transmit_bytes_total"],
            "bytes_received": network["node_network_receive_bytes_total"],
        },
    }


async def probe_node_exporter(
    client: HttpClient, target: str, settings: dict[str, Any], timeout: float
) -> ProbeResult:
    scrape = {"verify_tls": settings.get("verify_tls", True), "accepted_status_codes": ["200-299"]}
    result = await probe_http(client, target, scrape, timeout)
    body = str(result.facts.pop("BODY", ""))
    if not result.ok:
        return result
    try:
        readings = readings_from_exporter(body)
    except NotAnExporter as exc:
        result.fail(str(exc))
        return result
    facts, breaches = thresholds(readings, settings)
    result.facts.update({k: v for k, v in facts.items() if k != "RESPONSE_TIME"})
    result.details["figures"] = {k: v for k, v in facts.items() if k != "RESPONSE_TIME"}
    result.details["disks"] = readings["disks"]
    if breaches:
        result.fail("; ".join(breaches))
    return result
