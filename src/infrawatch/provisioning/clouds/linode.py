"""Linode through its REST API v4 (techdocs.akamai.com/linode-api).

Instances go `provisioning` → `booting` → `running`; `offline` when
stopped. A snapshot is a private image made from the instance's disk; a
restore rebuilds the instance from it. Linode insists on a root password
at create and rebuild: a random one is sent and kept nowhere (login is by
the vault key that cloud-init installs)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from infrawatch.provisioning.clouds.base import (
    LOGIN_USER,
    Node,
    NodeSpec,
    NodeState,
    ProviderError,
    Region,
    Size,
    Snapshot,
    has_build_tag,
)
from infrawatch.provisioning.clouds.rest import RestClient

DEFAULT_URL = "https://api.linode.com/v4"
STATES: dict[str, NodeState] = {
    "provisioning": "pending",
    "booting": "pending",
    "rebuilding": "pending",
    "running": "running",
    "shutting_down": "stopping",
    "offline": "stopped",
    "deleting": "gone",
}
IMAGE_TIMEOUT = 3600.0


def _root_password() -> str:
    return secrets.token_urlsafe(24) + "A1!"


class Linode:
    kind = "linode"
    login_user = LOGIN_USER

    def __init__(
        self, client: RestClient, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self.client = client
        self.sleep = sleep

    async def create(self, spec: NodeSpec) -> Node:
        response = await self.client.call(
            "POST",
            "/linode/instances",
            body={
                "label": spec.name,
                "region": spec.region,
                "type": spec.size,
                "image": spec.image,
                "root_pass": _root_password(),
                "authorized_keys": [spec.public_key.strip()],
                "metadata": {"user_data": spec.user_data_base64()},
                "tags": spec.tag_list(),
                "booted": True,
            },
            retry=False,
        )
        return _node(response.body)

    async def find_build(self, build_tag: str) -> Node | None:
        for node in await self.list_nodes():
            if has_build_tag(node.tags, build_tag):
                return node
        return None

    async def get(self, node_id: str) -> Node:
        return _node((await self.client.call("GET", f"/linode/instances/{node_id}")).body)

    async def list_nodes(self) -> list[Node]:
        return [_node(item) for item in await self._pages("/linode/instances")]

    async def _pages(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            body = (
                await self.client.call("GET", path, params={"page": page, "page_size": 500})
            ).body
            items += body.get("data", [])
            if page >= int(body.get("pages", 1)):
                return items
            page += 1

    async def start(self, node_id: str) -> None:
        if (await self.get(node_id)).state != "running":
            await self.client.call("POST", f"/linode/instances/{node_id}/boot", body={})

    async def stop(self, node_id: str) -> None:
        if (await self.get(node_id)).state == "running":
            await self.client.call("POST", f"/linode/instances/{node_id}/shutdown", body={})

    async def reboot(self, node_id: str) -> None:
        await self.client.call("POST", f"/linode/instances/{node_id}/reboot", body={})

    async def destroy(self, node_id: str) -> None:
        await self.client.call("DELETE", f"/linode/instances/{node_id}")

    async def snapshot(self, node_id: str, name: str) -> Snapshot:
        disks = await self._pages(f"/linode/instances/{node_id}/disks")
        system = [d for d in disks if d.get("filesystem") != "swap"]
        if not system:
            raise ProviderError(f"linode {node_id} has no disk to image")
        image = (
            await self.client.call(
                "POST", "/images", body={"disk_id": system[0]["id"], "label": name}
            )
        ).body
        waited = 0.0
        while image["status"] != "available":
            if waited > IMAGE_TIMEOUT:
                raise ProviderError(f"image {image['id']} still {image['status']}", retryable=True)
            await self.sleep(10.0)
            waited += 10.0
            image = (await self.client.call("GET", f"/images/{image['id']}")).body
        return Snapshot(image["id"], image["label"], "available")

    async def get_snapshot(self, snapshot_id: str) -> Snapshot:
        image = (await self.client.call("GET", f"/images/{snapshot_id}")).body
        return Snapshot(image["id"], image["label"], image["status"])

    async def delete_snapshot(self, snapshot_id: str) -> None:
        await self.client.call("DELETE", f"/images/{snapshot_id}")

    async def rebuild(self, node_id: str, snapshot_id: str) -> None:
        await self.client.call(
            "POST",
            f"/linode/instances/{node_id}/rebuild",
            body={"image": snapshot_id, "root_pass": _root_password()},
        )

    async def regions(self) -> list[Region]:
        return [Region(r["id"], r.get("label") or r["id"]) for r in await self._pages("/regions")]

    async def sizes(self) -> list[Size]:
        return [
            Size(
                t["id"],
                int(t["vcpus"]),
                int(t["memory"]),
                int(t["disk"]) // 1024,
                float((t.get("price") or {}).get("hourly") or 0) or None,
            )
            for t in await self._pages("/linode/types")
        ]

    async def close(self) -> None:
        await self.client.close()


def _node(item: dict[str, Any]) -> Node:
    addresses = item.get("ipv4") or []
    public = [a for a in addresses if not a.startswith(("10.", "192.168."))]
    private = [a for a in addresses if a.startswith(("10.", "192.168."))]
    return Node(
        id=str(item["id"]),
        name=item["label"],
        state=STATES.get(item["status"], "pending"),
        provider_state=item["status"],
        region=item.get("region", ""),
        size=item.get("type", ""),
        image=item.get("image") or "",
        public_ip=public[0] if public else None,
        private_ip=private[0] if private else None,
        tags=tuple(item.get("tags", [])),
    )
