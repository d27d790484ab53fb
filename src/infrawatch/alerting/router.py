"""Alerting routes. Operators manage channels, rules, windows and incidents;
viewers read (channel URLs and secrets are never returned)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response, status

from infrawatch.accounts.security import Context, authorize
from infrawatch.alerting import channels, incidents, rules, windows
from infrawatch.alerting.schemas import (
    ChannelCreate,
    ChannelOut,
    ChannelTestResult,
    ChannelUpdate,
    IncidentOut,
    RuleCreate,
    RuleOut,
    RuleUpdate,
    WindowCreate,
    WindowOut,
    WindowUpdate,
)
from infrawatch.core.concurrency import Versioned
from infrawatch.core.pagination import Page
from infrawatch.core.runtime import DbSession, IfMatch, KeyringDep, with_etag

router = APIRouter(tags=["alerting"], dependencies=[Depends(authorize())])
NO_CONTENT = status.HTTP_204_NO_CONTENT


@router.get("/notification-channels", response_model=list[ChannelOut])
async def list_channels(session: DbSession) -> list[ChannelOut]:
    return await channels.list_channels(session)


@router.post(
    "/notification-channels", response_model=ChannelOut, status_code=status.HTTP_201_CREATED
)
async def create_channel(
    body: ChannelCreate, ctx: Context, session: DbSession, keyring: KeyringDep
) -> ChannelOut:
    return await channels.create_channel(session, ctx, body, keyring)


@router.get("/notification-channels/{channel_id}", response_model=ChannelOut)
async def get_channel(channel_id: uuid.UUID, session: DbSession, response: Response) -> ChannelOut:
    channel = await channels.get_channel(session, channel_id)
    return with_etag(response, Versioned(channels.channel_out(channel), channel.version))


@router.patch("/notification-channels/{channel_id}", response_model=ChannelOut)
async def update_channel(
    channel_id: uuid.UUID,
    body: ChannelUpdate,
    ctx: Context,
    session: DbSession,
    keyring: KeyringDep,
    response: Response,
    if_match: IfMatch = None,
) -> ChannelOut:
    return with_etag(
        response, await channels.update_channel(session, ctx, channel_id, body, keyring, if_match)
    )


@router.delete("/notification-channels/{channel_id}", status_code=NO_CONTENT)
async def delete_channel(channel_id: uuid.UUID, ctx: Context, session: DbSession) -> Response:
    await channels.delete_channel(session, ctx, channel_id)
    return Response(status_code=NO_CONTENT)


@router.post("/notification-channels/{channel_id}/test", response_model=ChannelTestResult)
async def test_channel(
    channel_id: uuid.UUID, ctx: Context, session: DbSession, keyring: KeyringDep
) -> ChannelTestResult:
    return await channels.test_channel(session, ctx, channel_id, keyring)


@router.get("/alert-rules", response_model=list[RuleOut])
async def list_rules(session: DbSession) -> list[RuleOut]:
    return await rules.list_rules(session)


@router.post("/alert-rules", response_model=RuleOut, status_code=status.HTTP_201_CREATED)
async def create_rule(body: RuleCreate, ctx: Context, session: DbSession) -> RuleOut:
    return await rules.create_rule(session, ctx, body)


@router.get("/alert-rules/{rule_id}", response_model=RuleOut)
async def get_rule(rule_id: uuid.UUID, session: DbSession, response: Response) -> RuleOut:
    rule = await rules.get_rule(session, rule_id)
    return with_etag(response, Versioned(rules.rule_out(rule), rule.version))


@router.patch("/alert-rules/{rule_id}", response_model=RuleOut)
async def update_rule(
    rule_id: uuid.UUID,
    body: RuleUpdate,
    ctx: Context,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> RuleOut:
    return with_etag(response, await rules.update_rule(session, ctx, rule_id, body, if_match))


@router.delete("/alert-rules/{rule_id}", status_code=NO_CONTENT)
async def delete_rule(rule_id: uuid.UUID, ctx: Context, session: DbSession) -> Response:
    await rules.delete_rule(session, ctx, rule_id)
    return Response(status_code=NO_CONTENT)


@router.get("/maintenance-windows", response_model=list[WindowOut])
async def list_windows(session: DbSession) -> list[WindowOut]:
    return await windows.list_windows(session)


@router.post("/maintenance-windows", response_model=WindowOut, status_code=status.HTTP_201_CREATED)
async def create_window(body: WindowCreate, ctx: Context, session: DbSession) -> WindowOut:
    return await windows.create_window(session, ctx, body)


@router.get("/maintenance-windows/{window_id}", response_model=WindowOut)
async def get_window(window_id: uuid.UUID, session: DbSession, response: Response) -> WindowOut:
    window = await windows.get_window(session, window_id)
    return with_etag(response, Versioned(windows.window_out(window), window.version))


@router.patch("/maintenance-windows/{window_id}", response_model=WindowOut)
async def update_window(
    window_id: uuid.UUID,
    body: WindowUpdate,
    ctx: Context,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> WindowOut:
    return with_etag(response, await windows.update_window(session, ctx, window_id, body, if_match))


@router.delete("/maintenance-windows/{window_id}", status_code=NO_CONTENT)
async def delete_window(window_id: uuid.UUID, ctx: Context, session: DbSession) -> Response:
    await windows.delete_window(session, ctx, window_id)
    return Response(status_code=NO_CONTENT)


@router.get("/incidents", response_model=Page[IncidentOut])
async def list_incidents(
    session: DbSession,
    status: Literal["open", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Page[IncidentOut]:
    return await incidents.list_incidents(session, status, cursor, limit)


@router.get("/incidents/{incident_id}", response_model=IncidentOut)
async def get_incident(incident_id: uuid.UUID, session: DbSession) -> IncidentOut:
    return await incidents.get_incident(session, incident_id)


@router.post("/incidents/{incident_id}/ack", response_model=IncidentOut)
async def acknowledge(incident_id: uuid.UUID, ctx: Context, session: DbSession) -> IncidentOut:
    return await incidents.acknowledge(session, ctx, incident_id)
