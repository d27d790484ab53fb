"""The lab provider behind /api/v1/providers/lab/hosts: a host is made (or
removed) first, with no transaction open, since booting takes seconds and
SQLite has one writer; then it is registered in the inventory with its
vault key assigned, in one short transaction."""

from __future__ import annotations

import asyncio
import uuid

from infrawatch.core.config import Settings
from infrawatch.core.context import OperationContext
from infrawatch.core.crypto import Keyring
from infrawatch.core.db import Database
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.credentials import assignments as credential_assignments
from infrawatch.credentials import keys as credential_keys
from infrawatch.credentials.schemas import AssignmentCreate
from infrawatch.inventory import service as inventory
from infrawatch.provisioning.lab.hosts import LOGIN_USER, Lab, LabError, LabHost
from infrawatch.provisioning.providers import LAB, lab_of
from infrawatch.provisioning.schemas import LabHostCreate, LabHostOut


def _lab(settings: Settings) -> Lab:
    if not settings.lab_enabled:
        raise Conflict("the lab provider is off; start with INFRAWATCH_LAB_ENABLED=true")
    return lab_of(settings)


async def _server_ids_by_host(db: Database) -> dict[str, uuid.UUID]:
    async with db.unit_of_work(write=False) as session:
        ids = await inventory.live_server_ids_matching(
            session, f"provider:{LAB}", 10_000, ("query", "q")
        )
        servers = await inventory.servers_by_ids(session, ids)
    return {str(s.attributes.get("lab_host")): s.id for s in servers}


def _out(lab: Lab, host: LabHost, server_id: uuid.UUID | None) -> LabHostOut:
    return LabHostOut(
        name=host.name,
        flavour=host.flavour,
        address=host.address,
        running=host.pid is not None,
        server_id=server_id,
        snapshots=lab.snapshots(host.name),
    )


async def list_hosts(db: Database, settings: Settings) -> list[LabHostOut]:
    lab = _lab(settings)
    servers = await _server_ids_by_host(db)
    hosts = await asyncio.to_thread(lab.hosts)
    return [_out(lab, h, servers.get(h.name)) for h in hosts]


async def create_host(
    db: Database, settings: Settings, keyring: Keyring, ctx: OperationContext, body: LabHostCreate
) -> LabHostOut:
    lab = _lab(settings)
    async with db.unit_of_work(write=False) as session:
        key = await credential_keys.require_key(session, body.key_id)
        if key.status != "active" or key.purpose != "login":
            raise InvalidInput("not an active login key", loc=("body", "key_id"))
        if await inventory.live_names_taken(session, [body.name]):
            raise Conflict(f"a server named {body.name!r} exists already")
        public_key = key.public_key
    try:
        host = await asyncio.to_thread(lab.create, body.name, public_key, body.flavour)
    except LabError as exc:
        raise Conflict(f"lab host {body.name!r}: {exc}") from None
    try:
        async with db.unit_of_work() as session:
            server = await inventory.create_server(
                session,
                ctx,
                {
                    "name": body.name,
                    "ip_address": host.address,
                    "ssh_port": 22,
                    "provider": LAB,
                    "os": "Debian 12",
                    "tags": dict(body.tags),
                    "attributes": {"lab_host": host.name},
                    "lifecycle": "planned",
                },
            )
            await credential_assignments.assign(
                session,
                ctx,
                key.id,
                AssignmentCreate(server_id=server.value.id, username=LOGIN_USER),
            )
    except BaseException:
        await asyncio.to_thread(lab.destroy, host.name)
        raise
    return _out(lab, host, server.value.id)


async def act(settings: Settings, name: str, action: str, label: str | None) -> LabHostOut:
    lab = _lab(settings)
    try:
        if action == "start":
            host = await asyncio.to_thread(lab.start, name)
        elif action == "stop":
            host = await asyncio.to_thread(lab.stop, name)
        elif action == "snapshot":
            await asyncio.to_thread(lab.snapshot, name, label or "manual")
            host = lab.get(name)
        else:
            host = await asyncio.to_thread(lab.restore, name, label or "manual")
    except LabError as exc:
        if "no lab host" in str(exc):
            raise NotFound(str(exc)) from None
        raise Conflict(str(exc)) from None
    return _out(lab, host, None)


async def destroy_host(db: Database, settings: Settings, ctx: OperationContext, name: str) -> None:
    lab = _lab(settings)
    try:
        lab.get(name)
    except LabError as exc:
        raise NotFound(str(exc)) from None
    await asyncio.to_thread(lab.destroy, name)
    server_id = (await _server_ids_by_host(db)).get(name)
    if server_id is not None:
        async with db.unit_of_work() as session:
            await inventory.delete_server(session, ctx, server_id, purge=False)
