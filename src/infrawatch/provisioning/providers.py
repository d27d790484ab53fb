"""Where a server's snapshots come from. The lab provider is here now; the
cloud providers implement the same two calls."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any, Protocol

import yaml

from infrawatch.core.config import Settings
from infrawatch.provisioning.lab.hosts import Lab, LabConfig
from infrawatch.provisioning.runner import roles_path

LAB = "lab"


class Snapshots(Protocol):
    async def snapshot(self, server: Any, label: str) -> None: ...
    async def restore(self, server: Any, label: str) -> None: ...


def lab_of(settings: Settings) -> Lab:
    root = settings.lab_dir or (settings.data_dir.resolve() / "lab")
    return Lab(LabConfig(root=root, cache=settings.lab_cache, subnet=settings.lab_subnet))


class LabSnapshots:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    async def snapshot(self, server: Any, label: str) -> None:
        await asyncio.to_thread(self.lab.snapshot, server.attributes["lab_host"], label)

    async def restore(self, server: Any, label: str) -> None:
        await asyncio.to_thread(self.lab.restore, server.attributes["lab_host"], label)


def for_server(settings: Settings, server: Any) -> Snapshots | None:
    if server.provider == LAB and server.attributes.get("lab_host") and settings.lab_enabled:
        return LabSnapshots(lab_of(settings))
    return None


@cache
def task_count(role: str) -> int:
    """Tasks in a role's main task file, blocks counted by their tasks."""

    def count(tasks: list[Any]) -> int:
        total = 0
        for task in tasks or []:
            if isinstance(task, dict) and "block" in task:
                total += count(task["block"]) + count(task.get("rescue", []))
            else:
                total += 1
        return total

    path = roles_path() / role / "tasks" / "main.yml"
    if not path.is_file():
        return 10  # a user's playbook: its size is not known before it runs
    return max(count(yaml.safe_load(path.read_text())), 1)
