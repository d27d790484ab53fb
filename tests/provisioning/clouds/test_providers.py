"""Each provider against its stand-in on loopback: the REST fakes in each
provider's documented shapes, and EC2 against moto in server mode. The
same life for every one — create, find by build tag, run, stop, start,
snapshot, destroy — and the failures a cloud API has: 429 with
Retry-After, 5xx after a create went through, slow answers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import boto3
import pytest

from infrawatch.provisioning.builds import create_once
from infrawatch.provisioning.clouds import digitalocean, linode, vultr
from infrawatch.provisioning.clouds.base import NodeNotFound, NodeSpec, Provider, ProviderError
from infrawatch.provisioning.clouds.ec2 import EC2
from infrawatch.provisioning.clouds.rest import RestClient, TokenBucket
from tests.monitoring.helpers import eventually
from tests.provisioning.clouds.fakes import FakeCloud, serve_fake

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl t"
IMAGES = {"digitalocean": "debian-12-x64", "linode": "linode/debian12", "vultr": "2136"}
SIZES = {"digitalocean": "s-1vcpu-1gb", "linode": "g6-nanode-1", "vultr": "vc2-1c-1gb"}
REGIONS = {"digitalocean": "fra1", "linode": "eu-central", "vultr": "fra"}
CLASSES: dict[str, Any] = {
    "digitalocean": digitalocean.DigitalOcean,
    "linode": linode.Linode,
    "vultr": vultr.Vultr,
}


class Sleeps:
    """Stands in for asyncio.sleep: records the waits, waits a moment."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0.01)


@asynccontextmanager
async def rest_provider(
    kind: str, *, timeout: float = 30.0
) -> AsyncIterator[tuple[Provider, FakeCloud, Sleeps]]:
    async with serve_fake(kind) as cloud:
        sleeps = Sleeps()
        client = RestClient(
            cloud.url,
            {"Authorization": f"Bearer {cloud.token}"},
            TokenBucket(1000, 1000),
            sleep=sleeps,
            timeout=timeout,
        )
        # Linode and DigitalOcean wait for images and actions: not here.
        provider = CLASSES[kind](client, sleeps) if kind != "vultr" else vultr.Vultr(client)
        try:
            yield provider, cloud, sleeps
        finally:
            await provider.close()


def spec(kind: str, name: str = "web-1") -> NodeSpec:
    return NodeSpec(
        name=name,
        region=REGIONS[kind],
        size=SIZES[kind],
        image=IMAGES[kind],
        public_key=PUBLIC_KEY,
        build_tag=str(uuid.uuid4()),
        tags={"env": "dev"},
    )


@pytest.mark.parametrize("kind", sorted(CLASSES))
async def test_a_node_lives_and_dies_through_the_providers_api(kind: str) -> None:
    async with rest_provider(kind) as (provider, cloud, _):
        cloud.faults.pending_seconds = 0.5
        wanted = spec(kind)
        node = await provider.create(wanted)
        assert node.state == "pending", node
        # The key goes in as cloud-init user data, for the one login user.
        made = cloud.nodes[node.id.removeprefix("vultr-")]
        assert PUBLIC_KEY in made.user_data and "name: infrawatch" in made.user_data
        found = await provider.find_build(wanted.build_tag)
        assert found is not None and found.id == node.id
        assert await provider.find_build(str(uuid.uuid4())) is None

        async def running() -> Any:
            current = await provider.get(node.id)
            return current if current.state == "running" else None

        node = await eventually(running, timeout=10)
        assert node.public_ip == "127.0.0.1" and node.region == REGIONS[kind]
        assert [n.id for n in await provider.list_nodes()] == [node.id]

        await provider.stop(node.id)
        assert (await provider.get(node.id)).state == "stopped"
        snapshot = await provider.snapshot(node.id, "before-sleep")
        assert (await provider.get_snapshot(snapshot.id)).state == "available"
        await provider.start(node.id)
        assert (await provider.get(node.id)).state == "running"
        await provider.rebuild(node.id, snapshot.id)
        await provider.delete_snapshot(snapshot.id)
        with pytest.raises(NodeNotFound):
            await provider.get_snapshot(snapshot.id)

        await provider.destroy(node.id)
        with pytest.raises(NodeNotFound):
            await provider.get(node.id)
        assert await provider.list_nodes() == []

        assert REGIONS[kind] in {r.id for r in await provider.regions()}
        (size,) = await provider.sizes()
        assert size.id == SIZES[kind] and size.vcpus == 1 and size.memory_mb == 1024
        assert size.hourly_price is not None and 0 < size.hourly_price < 0.01


@pytest.mark.parametrize("kind", sorted(CLASSES))
async def test_429_waits_what_retry_after_says_and_then_succeeds(kind: str) -> None:
    async with rest_provider(kind) as (provider, cloud, sleeps):
        cloud.faults.throttle, cloud.faults.retry_after = 3, "7"
        assert await provider.regions()
        assert cloud.throttled == 3
        assert sleeps.waits == [7.0, 7.0, 7.0]
        # An HTTP date works too, and an absurd wait is capped at a minute.
        cloud.faults.throttle, cloud.faults.retry_after = 1, "Fri, 01 Jan 2100 00:00:00 GMT"
        assert await provider.regions()
        assert sleeps.waits[-1] == 60.0


@pytest.mark.parametrize("kind", sorted(CLASSES))
async def test_a_provider_that_keeps_refusing_ends_in_a_named_retryable_error(kind: str) -> None:
    async with rest_provider(kind) as (provider, cloud, sleeps):
        cloud.faults.throttle = 100
        with pytest.raises(ProviderError) as caught:
            await provider.regions()
        assert caught.value.retryable and caught.value.status == 429
        assert "429" in str(caught.value) and "/regions" in str(caught.value)
        assert len(sleeps.waits) == 5  # six attempts


@pytest.mark.parametrize("kind", sorted(CLASSES))
async def test_a_create_lost_in_a_5xx_is_found_by_its_tag_not_made_twice(kind: str) -> None:
    async with rest_provider(kind) as (provider, cloud, _):
        cloud.faults.lose_creates = 1
        wanted = spec(kind)
        # The provider made it, then answered 500: create alone would be
        # retried blindly by a naive client and make a second server.
        with pytest.raises(ProviderError) as caught:
            await provider.create(wanted)
        assert caught.value.retryable
        node = await create_once(provider, wanted)
        again = await create_once(provider, wanted)
        assert node.id == again.id
        assert len(cloud.live()) == 1
        creates = [
            r for r in cloud.requests if r[0] == "POST" and r[1].endswith(("droplets", "instances"))
        ]
        assert len(creates) == 1


@pytest.mark.parametrize("kind", sorted(CLASSES))
async def test_a_slow_provider_times_out_as_a_retryable_error_naming_the_call(kind: str) -> None:
    async with rest_provider(kind, timeout=0.3) as (provider, cloud, sleeps):
        cloud.faults.delay = 1.0
        with pytest.raises(ProviderError) as caught:
            await provider.get("1001")
        assert caught.value.retryable and "TimeoutError" in str(caught.value)
        assert len(sleeps.waits) == 5


@pytest.mark.parametrize("kind", sorted(CLASSES))
async def test_a_wrong_token_is_the_providers_own_words_and_not_retried(kind: str) -> None:
    async with serve_fake(kind) as cloud:
        sleeps = Sleeps()
        client = RestClient(
            cloud.url, {"Authorization": "Bearer wrong"}, TokenBucket(100, 10), sleep=sleeps
        )
        provider = CLASSES[kind](client)
        with pytest.raises(ProviderError) as caught:
            await provider.regions()
        await provider.close()
        assert caught.value.status == 401 and not caught.value.retryable
        assert "Unable to authenticate you" in str(caught.value)
        assert sleeps.waits == []


async def test_the_token_bucket_spaces_calls_beyond_the_burst() -> None:
    bucket = TokenBucket(rate=20, burst=2)
    started = time.monotonic()
    for _ in range(6):
        await bucket.take()
    # Two at once, then four at 20 a second: at least 0.2 s (a lower bound
    # of the rate, not a timing of this machine).
    assert time.monotonic() - started >= 0.19


# --- EC2 on moto --------------------------------------------------------------------


def _ami(moto_url: str) -> str:
    client = boto3.client(
        "ec2",
        region_name="eu-central-1",
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return str(client.describe_images()["Images"][0]["ImageId"])


async def test_ec2_node_life_on_moto_found_again_by_its_build_tag(moto_url: str) -> None:
    provider = EC2(
        "testing", "testing", "eu-central-1", TokenBucket(100, 10), endpoint_url=moto_url
    )
    try:
        wanted = NodeSpec(
            name="api-1",
            region="eu-central-1",
            size="t3.micro",
            image=_ami(moto_url),
            public_key=PUBLIC_KEY,
            build_tag=str(uuid.uuid4()),
            tags={"env": "dev"},
        )
        node = await provider.create(wanted)
        # EC2 itself answers a repeated ClientToken with the first instance;
        # moto does not implement that, so the tag lookup is what is tested.
        found = await provider.find_build(wanted.build_tag)
        assert found is not None and found.id == node.id
        assert (await create_once(provider, wanted)).id == node.id

        async def running() -> Any:
            current = await provider.get(node.id)
            return current if current.state == "running" else None

        node = await eventually(running, timeout=10)
        assert node.name == "api-1" and node.size == "t3.micro" and node.address
        assert "env:dev" in node.tags
        await provider.stop(node.id)
        await eventually(lambda: _state_is(provider, node.id, "stopped"), timeout=10)
        await provider.start(node.id)
        await eventually(lambda: _state_is(provider, node.id, "running"), timeout=10)
        image = await provider.snapshot(node.id, "sleep-api-1")
        assert (await provider.get_snapshot(image.id)).state == "available"
        await provider.delete_snapshot(image.id)
        with pytest.raises(ProviderError, match="in place"):
            await provider.rebuild(node.id, image.id)
        await provider.destroy(node.id)
        assert (await provider.get(node.id)).state == "gone"
        assert await provider.find_build(wanted.build_tag) is None
        with pytest.raises(NodeNotFound):
            await provider.get("i-0123456789abcdef0")
        regions = {r.id for r in await provider.regions()}
        assert "eu-central-1" in regions
        assert any(s.id == "t3.micro" and s.vcpus == 2 for s in await provider.sizes())
    finally:
        await provider.close()


async def _state_is(provider: EC2, node_id: str, state: str) -> bool:
    return (await provider.get(node_id)).state == state


async def test_ec2_errors_are_named_and_a_missing_instance_is_not_found(moto_url: str) -> None:
    provider = EC2(
        "testing", "testing", "eu-central-1", TokenBucket(100, 10), endpoint_url=moto_url
    )
    try:
        with pytest.raises(NodeNotFound, match="start_instances"):
            await provider.start("i-0123456789abcdef0")
        # Destroying what is gone already is done, not an error.
        await provider.destroy("i-0123456789abcdef0")
    finally:
        await provider.close()
