"""What every provider offers, in one shape.

A node is a provider's machine. States are reduced to five (`pending`,
`running`, `stopping`, `stopped`, `gone`) because the flow only needs to
know whether to wait, go on, or give up; the provider's own word is kept
in `provider_state` for people."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Literal, Protocol

NodeState = Literal["pending", "running", "stopping", "stopped", "gone"]
# The tag every node we create carries: `infrawatch-build:<build id>`, so a
# create retried after a crash finds the node the first attempt made.
BUILD_TAG = "infrawatch-build"
# Cloud images log in as different users; cloud-init makes this one on all.
LOGIN_USER = "infrawatch"


class ProviderError(Exception):
    """A provider refused or failed; the message is the provider's own."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class NodeNotFound(ProviderError):
    pass


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    state: NodeState
    provider_state: str
    region: str
    size: str
    image: str
    public_ip: str | None = None
    private_ip: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def address(self) -> str | None:
        return self.public_ip or self.private_ip


@dataclass(frozen=True)
class Region:
    id: str
    name: str


@dataclass(frozen=True)
class Size:
    id: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    # What a running hour costs, as the provider lists it (USD); None when
    # the API does not say. Hibernation's savings are estimated from it.
    hourly_price: float | None = None
    regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    id: str
    name: str
    state: str  # `available` once it can be restored from


@dataclass(frozen=True)
class NodeSpec:
    name: str
    region: str
    size: str
    image: str
    public_key: str
    build_tag: str
    tags: dict[str, str] = field(default_factory=dict)

    def tag_list(self) -> list[str]:
        """Tags as `key:value` words (DigitalOcean, Linode and Vultr take plain strings)."""
        return [f"{BUILD_TAG}:{self.build_tag}", *(f"{k}:{v}" for k, v in self.tags.items())]

    def user_data(self) -> str:
        """cloud-init: one login user with the vault key and sudo on every image."""
        return (
            "#cloud-config\n"
            "users:\n"
            "  - default\n"
            f"  - name: {LOGIN_USER}\n"
            "    sudo: ALL=(ALL) NOPASSWD:ALL\n"
            "    shell: /bin/bash\n"
            "    ssh_authorized_keys:\n"
            f"      - {self.public_key.strip()}\n"
        )

    def user_data_base64(self) -> str:
        return base64.b64encode(self.user_data().encode()).decode()


class Provider(Protocol):
    """Every call is idempotent where the provider allows: destroying a node
    that is gone, stopping one that is stopped, succeed."""

    kind: str
    login_user: str

    async def create(self, spec: NodeSpec) -> Node: ...
    async def find_build(self, build_tag: str) -> Node | None: ...
    async def get(self, node_id: str) -> Node: ...
    async def list_nodes(self) -> list[Node]: ...
    async def start(self, node_id: str) -> None: ...
    async def stop(self, node_id: str) -> None: ...
    async def reboot(self, node_id: str) -> None: ...
    async def destroy(self, node_id: str) -> None: ...
    async def snapshot(self, node_id: str, name: str) -> Snapshot: ...
    async def get_snapshot(self, snapshot_id: str) -> Snapshot: ...
    async def delete_snapshot(self, snapshot_id: str) -> None: ...
    async def rebuild(self, node_id: str, snapshot_id: str) -> None: ...
    async def regions(self) -> list[Region]: ...
    async def sizes(self) -> list[Size]: ...
    async def close(self) -> None: ...


def has_build_tag(tags: list[str] | tuple[str, ...], build_tag: str) -> bool:
    return f"{BUILD_TAG}:{build_tag}" in tags
