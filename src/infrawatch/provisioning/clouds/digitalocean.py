"""DigitalOcean through its REST API v2 (docs.digitalocean.com/reference/api).

Droplets are `new` while they are made, `active` when running, `off` when
stopped. Actions (power, snapshot) are asynchronous: the call returns an
action, which is waited for where the caller needs its result."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from infrawatch.provisioning.clouds.base import (
    BUILD_TAG,
    LOGIN_USER,
    Node,
    NodeSpec,
    NodeState,
    ProviderError,
    Region,
    Size,
    Snapshot,
)
from infrawatch.provisioning.clouds.rest import RestClient

DEFAULT_URL = "https://api.digitalocean.com/v2"
STATES: dict[str, NodeState] = {"new": "pending", "active": "running", "off": "stopped"}
ACTION_TIMEOUT = 1800.0


class DigitalOcean:
    kind = "digitalocean"
    login_user = LOGIN_USER

    def __init__(
        self, client: RestClient, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self.client = client
        self.sleep = sleep

    async def create(self, spec: NodeSpec) -> Node:
        image: Any = int(spec.image) if spec.image.isdigit() else spec.image
        response = await self.client.call(
            "POST",
            "/droplets",
            body={
                "name": spec.name,
                "region": spec.region,
                "size": spec.size,
                "image": image,
                "user_data": spec.user_data(),
                "tags": spec.tag_list(),
                "monitoring": False,
            },
            retry=False,
        )
        return _node(response.body["droplet"])

    async def find_build(self, build_tag: str) -> Node | None:
        found = await self._droplets({"tag_name": f"{BUILD_TAG}:{build_tag}"})
        return found[0] if found else None

    async def get(self, node_id: str) -> Node:
        return _node((await self.client.call("GET", f"/droplets/{node_id}")).body["droplet"])

    async def list_nodes(self) -> list[Node]:
        return await self._droplets({})

    async def _droplets(self, params: dict[str, Any]) -> list[Node]:
        nodes: list[Node] = []
        page = 1
        while True:
            body = (
                await self.client.call(
                    "GET", "/droplets", params={**params, "page": page, "per_page": 200}
                )
            ).body
            nodes += [_node(d) for d in body.get("droplets", [])]
            if not (body.get("links") or {}).get("pages", {}).get("next"):
                return nodes
            page += 1

    async def _action(self, node_id: str, body: dict[str, Any], *, wait: bool = False) -> None:
        response = await self.client.call("POST", f"/droplets/{node_id}/actions", body=body)
        if not wait:
            return
        action_id = response.body["action"]["id"]
        waited = 0.0
        while True:
            action = (await self.client.call("GET", f"/actions/{action_id}")).body["action"]
            if action["status"] == "completed":
                return
            if action["status"] == "errored":
                raise ProviderError(f"droplet {node_id}: {body['type']} errored")
            if waited > ACTION_TIMEOUT:
                raise ProviderError(
                    f"droplet {node_id}: {body['type']} still running", retryable=True
                )
            await self.sleep(5.0)
            waited += 5.0

    async def start(self, node_id: str) -> None:
        if (await self.get(node_id)).state != "running":
            await self._action(node_id, {"type": "power_on"})

    async def stop(self, node_id: str) -> None:
        # A clean shutdown, so disks are consistent for a snapshot after it.
        if (await self.get(node_id)).state == "running":
            await self._action(node_id, {"type": "shutdown"}, wait=True)

    async def reboot(self, node_id: str) -> None:
        await self._action(node_id, {"type": "reboot"})

    async def destroy(self, node_id: str) -> None:
        await self.client.call("DELETE", f"/droplets/{node_id}")

    async def snapshot(self, node_id: str, name: str) -> Snapshot:
        await self._action(node_id, {"type": "snapshot", "name": name}, wait=True)
        body = (await self.client.call("GET", f"/droplets/{node_id}/snapshots")).body
        for item in body.get("snapshots", []):
            if item["name"] == name:
                return Snapshot(str(item["id"]), item["name"], "available")
        raise ProviderError(f"droplet {node_id}: snapshot {name!r} finished but is not listed")

    async def get_snapshot(self, snapshot_id: str) -> Snapshot:
        item = (await self.client.call("GET", f"/snapshots/{snapshot_id}")).body["snapshot"]
        return Snapshot(str(item["id"]), item["name"], "available")

    async def delete_snapshot(self, snapshot_id: str) -> None:
        await self.client.call("DELETE", f"/snapshots/{snapshot_id}")

    async def rebuild(self, node_id: str, snapshot_id: str) -> None:
        await self._action(node_id, {"type": "rebuild", "image": int(snapshot_id)}, wait=True)

    async def regions(self) -> list[Region]:
        body = (await self.client.call("GET", "/regions", params={"per_page": 200})).body
        return [Region(r["slug"], r["name"]) for r in body["regions"] if r.get("available", True)]

    async def sizes(self) -> list[Size]:
        body = (await self.client.call("GET", "/sizes", params={"per_page": 200})).body
        return [
            Size(
                s["slug"],
                int(s["vcpus"]),
                int(s["memory"]),
                int(s["disk"]),
                float(s["price_hourly"]) if s.get("price_hourly") is not None else None,
                tuple(s.get("regions", [])),
            )
            for s in body["sizes"]
        ]

    async def close(self) -> None:
        await self.client.close()


def _node(droplet: dict[str, Any]) -> Node:
    addresses = {n["type"]: n["ip_address"] for n in droplet.get("networks", {}).get("v4", [])}
    image = droplet.get("image") or {}
    return Node(
        id=str(droplet["id"]),
        name=droplet["name"],
        state=STATES.get(droplet["status"], "pending"),
        provider_state=droplet["status"],
        region=(droplet.get("region") or {}).get("slug", ""),
        size=droplet.get("size_slug", ""),
        image=str(image.get("slug") or image.get("id") or ""),
        public_ip=addresses.get("public"),
        private_ip=addresses.get("private"),
        tags=tuple(droplet.get("tags", [])),
    )
