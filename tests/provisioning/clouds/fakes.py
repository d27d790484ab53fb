"""Loopback fakes of DigitalOcean, Linode and Vultr, answering in each
provider's documented shapes (the API references of DigitalOcean v2,
Linode v4 and Vultr v2), with the faults the tests need: 429s with
Retry-After, slow answers, 5xx after a create went through, and nodes that
stay `new`/`provisioning`/`pending` for a while.

Every node's address is 127.0.0.1: nothing a job does reaches further."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ADDRESS = "127.0.0.1"


@dataclass
class FakeNode:
    id: str
    name: str
    region: str
    size: str
    image: str
    tags: list[str]
    user_data: str
    born: float
    powered: bool = True
    deleted: bool = False


@dataclass
class Faults:
    # The next `throttle` requests answer 429 with Retry-After.
    throttle: int = 0
    retry_after: str = "1"
    # Seconds every answer waits.
    delay: float = 0.0
    # Seconds a new node stays pending.
    pending_seconds: float = 0.0
    # The next `lose_creates` creates make the node, then answer 500.
    lose_creates: int = 0


@dataclass
class FakeCloud:
    kind: str
    token: str
    faults: Faults = field(default_factory=Faults)
    nodes: dict[str, FakeNode] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    throttled: int = 0
    url: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))

    def next_id(self) -> str:
        return str(next(self._ids))

    def live(self) -> list[FakeNode]:
        return [n for n in self.nodes.values() if not n.deleted]

    def pending(self, node: FakeNode) -> bool:
        return time.monotonic() - node.born < self.faults.pending_seconds

    def make(
        self, name: str, region: str, size: str, image: str, tags: list[str], data: str
    ) -> FakeNode:
        node = FakeNode(
            self.next_id(), name, region, size, image, list(tags), data, time.monotonic()
        )
        self.nodes[node.id] = node
        return node


def _error(kind: str, status: int, message: str) -> web.Response:
    body: dict[str, Any]
    if kind == "digitalocean":
        body = {"id": "not_found" if status == 404 else "error", "message": message}
    elif kind == "linode":
        body = {"errors": [{"reason": message}]}
    else:
        body = {"error": message, "status": status}
    return web.json_response(body, status=status)


def _middleware(cloud: FakeCloud) -> Any:
    @web.middleware
    async def faults(request: web.Request, handler: Any) -> web.StreamResponse:
        cloud.requests.append((request.method, request.path))
        if cloud.faults.delay:
            await asyncio.sleep(cloud.faults.delay)
        if request.headers.get("Authorization") != f"Bearer {cloud.token}":
            return _error(cloud.kind, 401, "Unable to authenticate you")
        if cloud.faults.throttle > 0:
            cloud.faults.throttle -= 1
            cloud.throttled += 1
            response = _error(cloud.kind, 429, "Too many requests")
            response.headers["Retry-After"] = cloud.faults.retry_after
            return response
        try:
            response: web.StreamResponse = await handler(request)
        except KeyError:
            return _error(cloud.kind, 404, "The resource you were accessing could not be found.")
        return response

    return faults


def _lost(cloud: FakeCloud) -> bool:
    if cloud.faults.lose_creates > 0:
        cloud.faults.lose_creates -= 1
        return True
    return False


# --- DigitalOcean v2 ----------------------------------------------------------------


def _droplet(cloud: FakeCloud, node: FakeNode) -> dict[str, Any]:
    status = "new" if cloud.pending(node) else "active" if node.powered else "off"
    return {
        "id": int(node.id),
        "name": node.name,
        "status": status,
        "memory": 1024,
        "vcpus": 1,
        "disk": 25,
        "region": {"slug": node.region, "name": node.region},
        "image": {"id": 1, "slug": node.image},
        "size_slug": node.size,
        "networks": {"v4": [] if status == "new" else [{"ip_address": ADDRESS, "type": "public"}]},
        "tags": node.tags,
    }


def digitalocean_app(cloud: FakeCloud) -> web.Application:
    app = web.Application(middlewares=[_middleware(cloud)])
    actions: dict[int, dict[str, Any]] = {}

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        node = cloud.make(
            body["name"],
            body["region"],
            body["size"],
            str(body["image"]),
            body.get("tags", []),
            body.get("user_data", ""),
        )
        if _lost(cloud):
            return _error("digitalocean", 500, "Server Error")
        return web.json_response({"droplet": _droplet(cloud, node)}, status=202)

    async def listing(request: web.Request) -> web.Response:
        tag = request.query.get("tag_name")
        found = [n for n in cloud.live() if tag is None or tag in n.tags]
        page, per_page = int(request.query.get("page", 1)), int(request.query.get("per_page", 20))
        chunk = found[(page - 1) * per_page : page * per_page]
        pages = (
            {"next": f"{cloud.url}/droplets?page={page + 1}"}
            if page * per_page < len(found)
            else {}
        )
        return web.json_response(
            {
                "droplets": [_droplet(cloud, n) for n in chunk],
                "links": {"pages": pages},
                "meta": {"total": len(found)},
            }
        )

    def node_of(request: web.Request) -> FakeNode:
        node = cloud.nodes[request.match_info["id"]]
        if node.deleted:
            raise KeyError(node.id)
        return node

    async def get(request: web.Request) -> web.Response:
        return web.json_response({"droplet": _droplet(cloud, node_of(request))})

    async def delete(request: web.Request) -> web.Response:
        node_of(request).deleted = True
        return web.Response(status=204)

    async def action(request: web.Request) -> web.Response:
        node = node_of(request)
        body = await request.json()
        kind = body["type"]
        if kind in ("power_off", "shutdown"):
            node.powered = False
        elif kind == "power_on":
            node.powered = True
        elif kind == "snapshot":
            snapshot_id = cloud.next_id()
            cloud.snapshots[snapshot_id] = {
                "id": int(snapshot_id),
                "name": body["name"],
                "node": node.id,
            }
        elif kind == "rebuild":
            node.image = str(body["image"])
        action_id = len(actions) + 1
        actions[action_id] = {"id": action_id, "status": "completed", "type": kind}
        return web.json_response(
            {"action": {**actions[action_id], "status": "in-progress"}}, status=201
        )

    async def get_action(request: web.Request) -> web.Response:
        return web.json_response({"action": actions[int(request.match_info["id"])]})

    async def droplet_snapshots(request: web.Request) -> web.Response:
        node = node_of(request)
        found = [s for s in cloud.snapshots.values() if s["node"] == node.id]
        return web.json_response({"snapshots": [{"id": s["id"], "name": s["name"]} for s in found]})

    async def get_snapshot(request: web.Request) -> web.Response:
        item = cloud.snapshots[request.match_info["id"]]
        return web.json_response({"snapshot": {"id": str(item["id"]), "name": item["name"]}})

    async def delete_snapshot(request: web.Request) -> web.Response:
        del cloud.snapshots[request.match_info["id"]]
        return web.Response(status=204)

    async def regions(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "regions": [
                    {"slug": "fra1", "name": "Frankfurt 1", "available": True},
                    {"slug": "nyc3", "name": "New York 3", "available": True},
                ]
            }
        )

    async def sizes(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "sizes": [
                    {
                        "slug": "s-1vcpu-1gb",
                        "vcpus": 1,
                        "memory": 1024,
                        "disk": 25,
                        "price_hourly": 0.00893,
                        "regions": ["fra1", "nyc3"],
                    }
                ]
            }
        )

    app.router.add_post("/droplets", create)
    app.router.add_get("/droplets", listing)
    app.router.add_get("/droplets/{id}", get)
    app.router.add_delete("/droplets/{id}", delete)
    app.router.add_post("/droplets/{id}/actions", action)
    app.router.add_get("/droplets/{id}/snapshots", droplet_snapshots)
    app.router.add_get("/actions/{id}", get_action)
    app.router.add_get("/snapshots/{id}", get_snapshot)
    app.router.add_delete("/snapshots/{id}", delete_snapshot)
    app.router.add_get("/regions", regions)
    app.router.add_get("/sizes", sizes)
    return app


# --- Linode v4 ----------------------------------------------------------------------


def _instance(cloud: FakeCloud, node: FakeNode) -> dict[str, Any]:
    status = "provisioning" if cloud.pending(node) else "running" if node.powered else "offline"
    return {
        "id": int(node.id),
        "label": node.name,
        "status": status,
        "region": node.region,
        "type": node.size,
        "image": node.image,
        "ipv4": [ADDRESS],
        "tags": node.tags,
    }


def linode_app(cloud: FakeCloud) -> web.Application:
    app = web.Application(middlewares=[_middleware(cloud)])

    def paged(items: list[Any], request: web.Request) -> web.Response:
        page, size = int(request.query.get("page", 1)), int(request.query.get("page_size", 100))
        pages = max(1, -(-len(items) // size))
        return web.json_response(
            {
                "data": items[(page - 1) * size : page * size],
                "page": page,
                "pages": pages,
                "results": len(items),
            }
        )

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("root_pass"):
            return _error("linode", 400, "root_pass is required")
        data = base64.b64decode(body.get("metadata", {}).get("user_data", "")).decode()
        node = cloud.make(
            body["label"], body["region"], body["type"], body["image"], body.get("tags", []), data
        )
        if _lost(cloud):
            return _error("linode", 500, "Internal Server Error")
        return web.json_response(_instance(cloud, node))

    def node_of(request: web.Request) -> FakeNode:
        node = cloud.nodes[request.match_info["id"]]
        if node.deleted:
            raise KeyError(node.id)
        return node

    async def listing(request: web.Request) -> web.Response:
        return paged([_instance(cloud, n) for n in cloud.live()], request)

    async def get(request: web.Request) -> web.Response:
        return web.json_response(_instance(cloud, node_of(request)))

    async def delete(request: web.Request) -> web.Response:
        node_of(request).deleted = True
        return web.json_response({})

    async def power(request: web.Request) -> web.Response:
        node_of(request).powered = request.match_info["verb"] in ("boot", "reboot")
        return web.json_response({})

    async def disks(request: web.Request) -> web.Response:
        node = node_of(request)
        return paged(
            [
                {"id": int(node.id) * 10, "filesystem": "ext4"},
                {"id": int(node.id) * 10 + 1, "filesystem": "swap"},
            ],
            request,
        )

    async def create_image(request: web.Request) -> web.Response:
        body = await request.json()
        image_id = f"private/{cloud.next_id()}"
        cloud.snapshots[image_id] = {"id": image_id, "label": body["label"], "status": "available"}
        return web.json_response({**cloud.snapshots[image_id], "status": "creating"})

    async def get_image(request: web.Request) -> web.Response:
        return web.json_response(cloud.snapshots[f"private/{request.match_info['id']}"])

    async def delete_image(request: web.Request) -> web.Response:
        del cloud.snapshots[f"private/{request.match_info['id']}"]
        return web.json_response({})

    async def rebuild(request: web.Request) -> web.Response:
        node = node_of(request)
        node.image = (await request.json())["image"]
        return web.json_response(_instance(cloud, node))

    async def regions(request: web.Request) -> web.Response:
        return paged([{"id": "eu-central", "label": "Frankfurt, DE"}], request)

    async def types(request: web.Request) -> web.Response:
        return paged(
            [
                {
                    "id": "g6-nanode-1",
                    "vcpus": 1,
                    "memory": 1024,
                    "disk": 25600,
                    "price": {"hourly": 0.0075, "monthly": 5.0},
                }
            ],
            request,
        )

    app.router.add_post("/linode/instances", create)
    app.router.add_get("/linode/instances", listing)
    app.router.add_get("/linode/instances/{id}", get)
    app.router.add_delete("/linode/instances/{id}", delete)
    app.router.add_post("/linode/instances/{id}/rebuild", rebuild)
    app.router.add_post("/linode/instances/{id}/{verb:boot|shutdown|reboot}", power)
    app.router.add_get("/linode/instances/{id}/disks", disks)
    app.router.add_post("/images", create_image)
    app.router.add_get("/images/private/{id}", get_image)
    app.router.add_delete("/images/private/{id}", delete_image)
    app.router.add_get("/regions", regions)
    app.router.add_get("/linode/types", types)
    return app


# --- Vultr v2 -----------------------------------------------------------------------


def _vultr(cloud: FakeCloud, node: FakeNode) -> dict[str, Any]:
    pending = cloud.pending(node)
    return {
        "id": f"vultr-{node.id}",
        "label": node.name,
        "status": "pending" if pending else "active",
        "power_status": "running" if node.powered else "stopped",
        "server_status": "installingbooting" if pending else "ok",
        "main_ip": "0.0.0.0" if pending else ADDRESS,  # noqa: S104 - Vultr says "none yet" so
        "internal_ip": "",
        "region": node.region,
        "plan": node.size,
        "os_id": int(node.image) if node.image.isdigit() else None,
        "tags": node.tags,
    }


def vultr_app(cloud: FakeCloud) -> web.Application:
    app = web.Application(middlewares=[_middleware(cloud)])

    def node_of(request: web.Request) -> FakeNode:
        node = cloud.nodes[request.match_info["id"].removeprefix("vultr-")]
        if node.deleted:
            raise KeyError(node.id)
        return node

    def listing(key: str, items: list[Any]) -> web.Response:
        return web.json_response(
            {key: items, "meta": {"total": len(items), "links": {"next": "", "prev": ""}}}
        )

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        image = str(
            body.get("os_id") or body.get("image_id") or f"snapshot:{body.get('snapshot_id')}"
        )
        data = base64.b64decode(body.get("user_data", "")).decode()
        node = cloud.make(
            body["label"], body["region"], body["plan"], image, body.get("tags", []), data
        )
        if _lost(cloud):
            return _error("vultr", 500, "Internal server error")
        return web.json_response({"instance": _vultr(cloud, node)}, status=202)

    async def instances(request: web.Request) -> web.Response:
        tag = request.query.get("tag")
        return listing(
            "instances", [_vultr(cloud, n) for n in cloud.live() if tag is None or tag in n.tags]
        )

    async def get(request: web.Request) -> web.Response:
        return web.json_response({"instance": _vultr(cloud, node_of(request))})

    async def delete(request: web.Request) -> web.Response:
        node_of(request).deleted = True
        return web.Response(status=204)

    async def power(request: web.Request) -> web.Response:
        node_of(request).powered = request.match_info["verb"] in ("start", "reboot")
        return web.Response(status=204)

    async def snapshot(request: web.Request) -> web.Response:
        body = await request.json()
        snapshot_id = f"snap-{cloud.next_id()}"
        cloud.snapshots[snapshot_id] = {
            "id": snapshot_id,
            "description": body["description"],
            "status": "complete",
            "node": body["instance_id"],
        }
        return web.json_response(
            {"snapshot": {**cloud.snapshots[snapshot_id], "status": "pending"}}, status=201
        )

    async def get_snapshot(request: web.Request) -> web.Response:
        return web.json_response({"snapshot": cloud.snapshots[request.match_info["id"]]})

    async def delete_snapshot(request: web.Request) -> web.Response:
        del cloud.snapshots[request.match_info["id"]]
        return web.Response(status=204)

    async def restore(request: web.Request) -> web.Response:
        node = node_of(request)
        node.image = "snapshot:" + (await request.json())["snapshot_id"]
        return web.Response(status=202)

    async def regions(request: web.Request) -> web.Response:
        return listing("regions", [{"id": "fra", "city": "Frankfurt", "country": "DE"}])

    async def plans(request: web.Request) -> web.Response:
        return listing(
            "plans",
            [
                {
                    "id": "vc2-1c-1gb",
                    "vcpu_count": 1,
                    "ram": 1024,
                    "disk": 25,
                    "monthly_cost": 5,
                    "locations": ["fra"],
                }
            ],
        )

    app.router.add_post("/instances", create)
    app.router.add_get("/instances", instances)
    app.router.add_get("/instances/{id}", get)
    app.router.add_delete("/instances/{id}", delete)
    app.router.add_post("/instances/{id}/restore", restore)
    app.router.add_post("/instances/{id}/{verb:start|halt|reboot}", power)
    app.router.add_post("/snapshots", snapshot)
    app.router.add_get("/snapshots/{id}", get_snapshot)
    app.router.add_delete("/snapshots/{id}", delete_snapshot)
    app.router.add_get("/regions", regions)
    app.router.add_get("/plans", plans)
    return app


APPS = {"digitalocean": digitalocean_app, "linode": linode_app, "vultr": vultr_app}


@asynccontextmanager
async def serve_fake(kind: str, token: str = "fake-token") -> AsyncIterator[FakeCloud]:
    cloud = FakeCloud(kind=kind, token=token)
    runner = web.AppRunner(APPS[kind](cloud), shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, ADDRESS, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    cloud.url = f"http://{ADDRESS}:{port}"
    try:
        yield cloud
    finally:
        await runner.cleanup()
