"""Validation tools and network discovery. Operators may use both; viewers
may read scans."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, status

from infrawatch.accounts.security import Context, authorize
from infrawatch.core.context import Role
from infrawatch.core.runtime import DbSession, SettingsDep
from infrawatch.discovery import service, tasks, validation
from infrawatch.discovery.schemas import (
    HostnameRequest,
    HostnameResult,
    HostOut,
    HttpRequest,
    ImportRequest,
    ImportResult,
    IpResult,
    ProbeOut,
    ScanCreate,
    ScanOut,
    TcpRequest,
    TlsRequest,
    ValueRequest,
)

# The tools change nothing, but they reach out to the network: operators.
validate_router = APIRouter(
    prefix="/validate",
    tags=["validation"],
    dependencies=[Depends(authorize(write=Role.operator))],
)
router = APIRouter(prefix="/discovery", tags=["discovery"], dependencies=[Depends(authorize())])


@validate_router.post("/ip", response_model=IpResult)
async def validate_ip(body: ValueRequest) -> IpResult:
    return validation.validate_ip(body.value)


@validate_router.post("/hostname", response_model=HostnameResult)
async def validate_hostname(body: HostnameRequest) -> HostnameResult:
    return await validation.validate_hostname(body)


@validate_router.post("/tcp", response_model=ProbeOut)
async def validate_tcp(body: TcpRequest) -> ProbeOut:
    return await validation.validate_tcp(body)


@validate_router.post("/http", response_model=ProbeOut)
async def validate_http(body: HttpRequest) -> ProbeOut:
    return await validation.validate_http(body)


@validate_router.post("/tls", response_model=ProbeOut)
async def validate_tls(body: TlsRequest) -> ProbeOut:
    return await validation.validate_tls(body)


@router.get("/scans", response_model=list[ScanOut])
async def list_scans(
    session: DbSession, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[ScanOut]:
    return await service.list_scans(session, limit)


@router.post("/scans", response_model=ScanOut, status_code=status.HTTP_202_ACCEPTED)
async def create_scan(
    body: ScanCreate,
    ctx: Context,
    session: DbSession,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ScanOut:
    return await service.create_scan(session, ctx, body, settings, tasks.SCAN, idempotency_key)


@router.get("/scans/{scan_id}", response_model=ScanOut)
async def get_scan(scan_id: uuid.UUID, session: DbSession) -> ScanOut:
    return await service.get_scan(session, scan_id)


@router.get("/scans/{scan_id}/hosts", response_model=list[HostOut])
async def scan_hosts(scan_id: uuid.UUID, session: DbSession) -> list[HostOut]:
    return await service.scan_hosts(session, scan_id)


@router.post("/scans/{scan_id}/import", response_model=ImportResult)
async def import_hosts(
    scan_id: uuid.UUID, body: ImportRequest, ctx: Context, session: DbSession
) -> ImportResult:
    return await service.import_hosts(session, ctx, scan_id, body)
