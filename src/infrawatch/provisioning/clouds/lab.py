"""The lab as a provider: real hosts (systemd-nspawn) on this machine, so
the create-server flow and hibernation run end to end without a cloud. A
node's id is its host name; one region (`lab`) and one size (`nspawn`)."""

from __future__ import annotations

import asyncio

from infrawatch.provisioning.clouds.base import (
    Node,
    NodeNotFound,
    NodeSpec,
    ProviderError,
    Region,
    Size,
    Snapshot,
)
from infrawatch.provisioning.lab.hosts import FLAVOURS, LOGIN_USER, Lab, LabError, LabHost

REGION = "lab"
SIZE = "nspawn"


class LabProvider:
    kind = "lab"
    login_user = LOGIN_USER

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    async def _do(self, call: object, *args: object) -> object:
        try:
            return await asyncio.to_thread(call, *args)  # type: ignore[arg-type]
        except LabError as exc:
            if "no lab host" in str(exc):
                raise NodeNotFound(str(exc), status=404) from None
            raise ProviderError(str(exc)) from None

    async def create(self, spec: NodeSpec) -> Node:
        if spec.image not in FLAVOURS:
            raise ProviderError(f"the lab has images {', '.join(FLAVOURS)}, not {spec.image!r}")
        host = await self._do(
            self.lab.create, spec.name, spec.public_key, spec.image, spec.build_tag
        )
        assert isinstance(host, LabHost)
        return _node(host)

    async def find_build(self, build_tag: str) -> Node | None:
        hosts = await asyncio.to_thread(self.lab.hosts)
        return next((_node(h) for h in hosts if h.build_tag == build_tag), None)

    async def get(self, node_id: str) -> Node:
        host = await self._do(self.lab.get, node_id)
        assert isinstance(host, LabHost)
        return _node(host)

    async def list_nodes(self) -> list[Node]:
        return [_node(h) for h in await asyncio.to_thread(self.lab.hosts)]

    async def start(self, node_id: str) -> None:
        await self._do(self.lab.start, node_id)

    async def stop(self, node_id: str) -> None:
        await self._do(self.lab.stop, node_id)

    async def reboot(self, node_id: str) -> None:
        await self._do(self.lab.stop, node_id)
        await self._do(self.lab.start, node_id)

    async def destroy(self, node_id: str) -> None:
        try:
            await self._do(self.lab.get, node_id)
        except NodeNotFound:
            return
        await self._do(self.lab.destroy, node_id)

    async def snapshot(self, node_id: str, name: str) -> Snapshot:
        await self._do(self.lab.snapshot, node_id, name)
        return Snapshot(f"{node_id}/{name}", name, "available")

    async def get_snapshot(self, snapshot_id: str) -> Snapshot:
        node_id, _, name = snapshot_id.partition("/")
        if name not in self.lab.snapshots(node_id):
            raise NodeNotFound(f"no snapshot {name!r} of lab host {node_id!r}", status=404)
        return Snapshot(snapshot_id, name, "available")

    async def delete_snapshot(self, snapshot_id: str) -> None:
        raise ProviderError("lab snapshots go with their host (destroy the host)")

    async def rebuild(self, node_id: str, snapshot_id: str) -> None:
        owner, _, name = snapshot_id.partition("/")
        if owner != node_id:
            raise ProviderError(f"snapshot {snapshot_id!r} belongs to lab host {owner!r}")
        await self._do(self.lab.restore, node_id, name)

    async def regions(self) -> list[Region]:
        return [Region(REGION, "this machine")]

    async def sizes(self) -> list[Size]:
        return [Size(SIZE, 1, 512, 2, 0.0, (REGION,))]

    async def close(self) -> None:
        return None


def _node(host: LabHost) -> Node:
    running = host.pid is not None
    return Node(
        id=host.name,
        name=host.name,
        state="running" if running else "stopped",
        provider_state="running" if running else "stopped",
        region=REGION,
        size=SIZE,
        image=host.flavour,
        private_ip=host.address,
        tags=(f"infrawatch-build:{host.build_tag}",) if host.build_tag else (),
    )
