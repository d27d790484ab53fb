"""Which class speaks for which kind of account, and what credentials each
needs. `connect` makes a provider for one account's decrypted credentials."""

from __future__ import annotations

from typing import Any

from infrawatch.core.config import Settings
from infrawatch.provisioning.clouds import digitalocean, linode, vultr
from infrawatch.provisioning.clouds.base import Provider, ProviderError
from infrawatch.provisioning.clouds.ec2 import EC2
from infrawatch.provisioning.clouds.lab import LabProvider
from infrawatch.provisioning.clouds.rest import RestClient, bucket_for
from infrawatch.provisioning.providers import lab_of

KINDS = ("ec2", "digitalocean", "linode", "vultr", "lab")
CREDENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "ec2": ("access_key_id", "secret_access_key"),
    "digitalocean": ("token",),
    "linode": ("token",),
    "vultr": ("api_key",),
    "lab": (),
}
DEFAULT_URLS = {
    "digitalocean": digitalocean.DEFAULT_URL,
    "linode": linode.DEFAULT_URL,
    "vultr": vultr.DEFAULT_URL,
}
# Providers that bill a stopped server's compute (all but EC2): hibernation
# saves money there only in `snapshot` mode. Shown in the docs and the API.
BILLS_WHEN_STOPPED = {
    "digitalocean": True,
    "linode": True,
    "vultr": True,
    "ec2": False,
    "lab": False,
}


def connect(
    *,
    account_key: str,
    kind: str,
    credentials: dict[str, str],
    api_url: str | None,
    region: str | None,
    rate_per_second: float,
    burst: int,
    settings: Settings,
) -> Provider:
    bucket = bucket_for(account_key, rate_per_second, burst)
    if kind == "lab":
        if not settings.lab_enabled:
            raise ProviderError("the lab provider is off; start with INFRAWATCH_LAB_ENABLED=true")
        return LabProvider(lab_of(settings))
    if kind == "ec2":
        return EC2(
            credentials["access_key_id"],
            credentials["secret_access_key"],
            region or "us-east-1",
            bucket,
            endpoint_url=api_url,
        )
    base = api_url or DEFAULT_URLS[kind]
    token = credentials["api_key" if kind == "vultr" else "token"]
    client = RestClient(base, {"Authorization": f"Bearer {token}"}, bucket)
    providers: dict[str, Any] = {
        "digitalocean": digitalocean.DigitalOcean,
        "linode": linode.Linode,
        "vultr": vultr.Vultr,
    }
    if kind not in providers:
        raise ProviderError(f"no provider of kind {kind!r}")
    provider: Provider = providers[kind](client)
    return provider
