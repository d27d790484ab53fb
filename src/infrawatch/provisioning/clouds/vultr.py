"""Vultr through its REST API v2 (www.vultr.com/api).

An instance is `pending` while it is made; it is running when `status` is
`active`, `power_status` is `running` and `server_status` is `ok` (its
`main_ip` is `0.0.0.0` until then). `image` names an OS by its number, an
application image by its id, or a snapshot as `snapshot:<id>`."""

from __future__ import annotations

from typing import Any

from infrawatch.provisioning.clouds.base import (
    BUILD_TAG,
    LOGIN_USER,
    Node,
    NodeSpec,
    NodeState,
    Region,
    Size,
    Snapshot,
)
from infrawatch.provisioning.clouds.rest import RestClient

DEFAULT_URL = "https://api.vultr.com/v2"
# Vultr bills by the hour up to 672 hours a month, so a plan's hourly price
# is its monthly cost over 672.
BILLED_HOURS_PER_MONTH = 672
SNAPSHOT_PREFIX = "snapshot:"


def image_field(image: str) -> dict[str, Any]:
    if image.startswith(SNAPSHOT_PREFIX):
        return {"snapshot_id": image[len(SNAPSHOT_PREFIX) :]}
    if image.isdigit():
        return {"os_id": int(image)}
    return {"image_id": image}


class Vultr:
    kind = "vultr"
    login_user = LOGIN_USER

    def __init__(self, client: RestClient) -> None:
        self.client = client

    async def create(self, spec: NodeSpec) -> Node:
        response = await self.client.call(
            "POST",
            "/instances",
            body={
                "region": spec.region,
                "plan": spec.size,
                **image_field(spec.image),
                "label": spec.name,
                "hostname": spec.name,
                "user_data": spec.user_data_base64(),
                "tags": spec.tag_list(),
            },
            retry=False,
        )
        return _node(response.body["instance"])

    async def find_build(self, build_tag: str) -> Node | None:
        found = await self._list("/instances", "instances", {"tag": f"{BUILD_TAG}:{build_tag}"})
        return _node(found[0]) if found else None

    async def get(self, node_id: str) -> Node:
        return _node((await self.client.call("GET", f"/instances/{node_id}")).body["instance"])

    async def list_nodes(self) -> list[Node]:
        return [_node(i) for i in await self._list("/instances", "instances", {})]

    async def _list(self, path: str, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = ""
        while True:
            query = {**params, "per_page": 500, **({"cursor": cursor} if cursor else {})}
            body = (await self.client.call("GET", path, params=query)).body
            items += body.get(key, [])
            cursor = ((body.get("meta") or {}).get("links") or {}).get("next") or ""
            if not cursor:
                return items

    async def start(self, node_id: str) -> None:
        await self.client.call("POST", f"/instances/{node_id}/start", body={})

    async def stop(self, node_id: str) -> None:
        await self.client.call("POST", f"/instances/{node_id}/halt", body={})

    async def reboot(self, node_id: str) -> None:
        await self.client.call("POST", f"/instances/{node_id}/reboot", body={})

    async def destroy(self, node_id: str) -> None:
        await self.client.call("DELETE", f"/instances/{node_id}")

    async def snapshot(self, node_id: str, name: str) -> Snapshot:
        body = (
            await self.client.call(
                "POST", "/snapshots", body={"instance_id": node_id, "description": name}
            )
        ).body
        return _snapshot(body["snapshot"])

    async def get_snapshot(self, snapshot_id: str) -> Snapshot:
        return _snapshot(
            (await self.client.call("GET", f"/snapshots/{snapshot_id}")).body["snapshot"]
        )

    async def delete_snapshot(self, snapshot_id: str) -> None:
        await self.client.call("DELETE", f"/snapshots/{snapshot_id}")

    async def rebuild(self, node_id: str, snapshot_id: str) -> None:
        await self.client.call(
            "POST", f"/instances/{node_id}/restore", body={"snapshot_id": snapshot_id}
        )

    async def regions(self) -> list[Region]:
        return [
            Region(r["id"], f"{r.get('city', r['id'])}, {r.get('country', '')}".rstrip(", "))
            for r in await self._list("/regions", "regions", {})
        ]

    async def sizes(self) -> list[Size]:
        return [
            Size(
                p["id"],
                int(p["vcpu_count"]),
                int(p["ram"]),
                int(p["disk"]),
                round(float(p["monthly_cost"]) / BILLED_HOURS_PER_MONTH, 4)
                if p.get("monthly_cost") is not None
                else None,
                tuple(p.get("locations", [])),
            )
            for p in await self._list("/plans", "plans", {})
        ]

    async def close(self) -> None:
        await self.client.close()


def _state(item: dict[str, Any]) -> NodeState:
    if item.get("status") != "active":
        return "pending"
    if item.get("power_status") == "stopped":
        return "stopped"
    if item.get("server_status") != "ok":
        return "pending"
    return "running"


def _snapshot(item: dict[str, Any]) -> Snapshot:
    state = "available" if item.get("status") == "complete" else str(item.get("status"))
    return Snapshot(str(item["id"]), str(item.get("description", "")), state)


def _node(item: dict[str, Any]) -> Node:
    public = item.get("main_ip") or None
    return Node(
        id=str(item["id"]),
        name=item.get("label", ""),
        state=_state(item),
        provider_state="/".join(
            str(item.get(k)) for k in ("status", "power_status", "server_status")
        ),
        region=item.get("region", ""),
        size=item.get("plan", ""),
        image=str(item.get("os_id") or item.get("image_id") or ""),
        public_ip=None if public == "0.0.0.0" else public,  # noqa: S104 - Vultr's "none yet"
        private_ip=item.get("internal_ip") or None,
        tags=tuple(item.get("tags", [])),
    )
