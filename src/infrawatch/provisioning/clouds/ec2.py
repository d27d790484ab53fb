"""AWS EC2 through boto3 (its calls run in a thread: boto3 blocks).

A create passes the build id as `ClientToken`, EC2's own idempotency, and
tags the instance with it, so a create retried after a crash returns the
first instance instead of making a second. A region is a client: each
call uses the client of the account's region or the node's."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from infrawatch.provisioning.clouds.base import (
    BUILD_TAG,
    LOGIN_USER,
    Node,
    NodeNotFound,
    NodeSpec,
    NodeState,
    ProviderError,
    Region,
    Size,
    Snapshot,
)
from infrawatch.provisioning.clouds.rest import TokenBucket

STATES: dict[str, NodeState] = {
    "pending": "pending",
    "running": "running",
    "stopping": "stopping",
    "shutting-down": "stopping",
    "stopped": "stopped",
    "terminated": "gone",
}
LIVE = ["pending", "running", "stopping", "stopped"]
NOT_FOUND = {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed", "InvalidAMIID.NotFound"}
THROTTLED = {"RequestLimitExceeded", "Throttling", "ThrottlingException"}


class EC2:
    kind = "ec2"
    login_user = LOGIN_USER

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        region: str,
        bucket: TokenBucket,
        endpoint_url: str | None = None,
    ) -> None:
        self.region = region
        self.bucket = bucket
        self._session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key
        )
        self._endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}

    def _client(self, region: str | None = None) -> Any:
        name = region or self.region
        if name not in self._clients:
            self._clients[name] = self._session.client(
                "ec2",
                region_name=name,
                endpoint_url=self._endpoint_url,
                # botocore's own retry mode honours throttling with backoff.
                config=Config(retries={"mode": "standard", "max_attempts": 6}),
            )
        return self._clients[name]

    async def _call(self, method: str, region: str | None = None, **kwargs: Any) -> Any:
        await self.bucket.take()
        call = partial(getattr(self._client(region), method), **kwargs)
        try:
            return await asyncio.to_thread(call)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = f"EC2 {method}: {code} {exc.response.get('Error', {}).get('Message', '')}"
            if code in NOT_FOUND:
                raise NodeNotFound(message, status=404) from None
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            retryable = code in THROTTLED or (status or 0) >= 500
            raise ProviderError(message, status=status, retryable=retryable) from None
        except BotoCoreError as exc:
            raise ProviderError(f"EC2 {method}: {exc}", retryable=True) from None

    async def create(self, spec: NodeSpec) -> Node:
        tags = [{"Key": "Name", "Value": spec.name}, {"Key": BUILD_TAG, "Value": spec.build_tag}]
        tags += [{"Key": k, "Value": v} for k, v in spec.tags.items()]
        body = await self._call(
            "run_instances",
            spec.region,
            ImageId=spec.image,
            InstanceType=spec.size,
            MinCount=1,
            MaxCount=1,
            UserData=spec.user_data(),
            ClientToken=spec.build_tag[:64],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        return _node(body["Instances"][0], spec.region)

    async def find_build(self, build_tag: str) -> Node | None:
        found = await self._describe(
            Filters=[
                {"Name": f"tag:{BUILD_TAG}", "Values": [build_tag]},
                {"Name": "instance-state-name", "Values": LIVE},
            ]
        )
        return found[0] if found else None

    async def _describe(self, **kwargs: Any) -> list[Node]:
        nodes: list[Node] = []
        token: str | None = None
        while True:
            page = await self._call(
                "describe_instances", **kwargs, **({"NextToken": token} if token else {})
            )
            for reservation in page.get("Reservations", []):
                nodes += [_node(i, self.region) for i in reservation.get("Instances", [])]
            token = page.get("NextToken")
            if not token:
                return nodes

    async def get(self, node_id: str) -> Node:
        found = await self._describe(InstanceIds=[node_id])
        if not found:
            raise NodeNotFound(f"EC2 instance {node_id} not found", status=404)
        return found[0]

    async def list_nodes(self) -> list[Node]:
        return await self._describe(Filters=[{"Name": "instance-state-name", "Values": LIVE}])

    async def start(self, node_id: str) -> None:
        await self._call("start_instances", InstanceIds=[node_id])

    async def stop(self, node_id: str) -> None:
        await self._call("stop_instances", InstanceIds=[node_id])

    async def reboot(self, node_id: str) -> None:
        await self._call("reboot_instances", InstanceIds=[node_id])

    async def destroy(self, node_id: str) -> None:
        try:
            await self._call("terminate_instances", InstanceIds=[node_id])
        except NodeNotFound:
            return

    async def snapshot(self, node_id: str, name: str) -> Snapshot:
        body = await self._call("create_image", InstanceId=node_id, Name=name)
        return await self.get_snapshot(body["ImageId"])

    async def get_snapshot(self, snapshot_id: str) -> Snapshot:
        images = (await self._call("describe_images", ImageIds=[snapshot_id])).get("Images", [])
        if not images:
            raise NodeNotFound(f"EC2 image {snapshot_id} not found", status=404)
        image = images[0]
        return Snapshot(image["ImageId"], image.get("Name", ""), image.get("State", "pending"))

    async def delete_snapshot(self, snapshot_id: str) -> None:
        await self._call("deregister_image", ImageId=snapshot_id)

    async def rebuild(self, node_id: str, snapshot_id: str) -> None:
        # EC2 has no in-place rebuild the way the others do: a node comes
        # back from an image as a new instance (create with the image).
        raise ProviderError(
            "EC2 does not rebuild an instance in place; create a new one from image "
            f"{snapshot_id} instead"
        )

    async def regions(self) -> list[Region]:
        body = await self._call("describe_regions")
        return [Region(r["RegionName"], r["RegionName"]) for r in body.get("Regions", [])]

    async def sizes(self) -> list[Size]:
        sizes: list[Size] = []
        token: str | None = None
        while True:
            page = await self._call(
                "describe_instance_types", **({"NextToken": token} if token else {})
            )
            for item in page.get("InstanceTypes", []):
                disk = (item.get("InstanceStorageInfo") or {}).get("TotalSizeInGB", 0)
                sizes.append(
                    Size(
                        item["InstanceType"],
                        int(item.get("VCpuInfo", {}).get("DefaultVCpus", 0)),
                        int(item.get("MemoryInfo", {}).get("SizeInMiB", 0)),
                        int(disk),
                        # Prices are in the separate Pricing API, not here.
                        None,
                    )
                )
            token = page.get("NextToken")
            if not token:
                return sizes

    async def close(self) -> None:
        for client in self._clients.values():
            client.close()


def _node(item: dict[str, Any], region: str) -> Node:
    tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
    state = item.get("State", {}).get("Name", "pending")
    zone = item.get("Placement", {}).get("AvailabilityZone", "")
    return Node(
        id=item["InstanceId"],
        name=tags.get("Name", item["InstanceId"]),
        state=STATES.get(state, "pending"),
        provider_state=state,
        region=zone[:-1] if zone else region,
        size=item.get("InstanceType", ""),
        image=item.get("ImageId", ""),
        public_ip=item.get("PublicIpAddress"),
        private_ip=item.get("PrivateIpAddress"),
        tags=tuple(f"{k}:{v}" for k, v in tags.items()),
    )
