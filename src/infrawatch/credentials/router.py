"""The vault's routes. Admins manage keys and secrets; operators may run
connection tests; everyone signed in may read key metadata (never the
private part, which no route returns)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response, status

from infrawatch.accounts.security import Context, authorize
from infrawatch.core.concurrency import Versioned
from infrawatch.core.context import Role
from infrawatch.core.errors import NotFound
from infrawatch.core.runtime import DbSession, IfMatch, KeyringDep, with_etag
from infrawatch.credentials import assignments as credential_assignments
from infrawatch.credentials import authority as credential_authority
from infrawatch.credentials import host_keys as credential_host_keys
from infrawatch.credentials import keys as credential_keys
from infrawatch.credentials import stored_secrets as credential_stored_secrets
from infrawatch.credentials import tasks
from infrawatch.credentials.schemas import (
    AssignmentCreate,
    AssignmentOut,
    CertificateOut,
    CertificateRequest,
    ConnectionTestRequest,
    JobStarted,
    KnownHostOut,
    SecretCreate,
    SecretOut,
    SecretUpdate,
    SshKeyCreate,
    SshKeyOut,
    SshKeyUpdate,
)
from infrawatch.jobs import service as jobs

router = APIRouter(tags=["credentials"], dependencies=[Depends(authorize(write=Role.admin))])
# Operators may test a connection (it changes nothing on the server).
operator_router = APIRouter(tags=["credentials"], dependencies=[Depends(authorize())])
secrets_router = APIRouter(
    prefix="/secrets",
    tags=["credentials"],
    dependencies=[Depends(authorize(write=Role.admin, read=Role.operator))],
)
NO_CONTENT = status.HTTP_204_NO_CONTENT
IdempotencyKey = Annotated[str | None, Header(max_length=200)]


@router.get("/ssh-keys/host-keys", response_model=list[KnownHostOut])
async def list_host_keys(
    session: DbSession, server_id: uuid.UUID | None = None
) -> list[KnownHostOut]:
    return await credential_host_keys.list_known_hosts(session, server_id)


@router.delete("/ssh-keys/host-keys/{server_id}", status_code=NO_CONTENT)
async def forget_host_key(server_id: uuid.UUID, ctx: Context, session: DbSession) -> Response:
    await credential_host_keys.forget_host_key(session, ctx, server_id)
    return Response(status_code=NO_CONTENT)


@router.get("/ssh-keys", response_model=list[SshKeyOut])
async def list_keys(session: DbSession, include_retired: bool = False) -> list[SshKeyOut]:
    return await credential_keys.list_keys(session, include_retired)


@router.post("/ssh-keys", response_model=SshKeyOut, status_code=status.HTTP_201_CREATED)
async def create_key(
    body: SshKeyCreate, ctx: Context, session: DbSession, keyring: KeyringDep
) -> SshKeyOut:
    return await credential_keys.create_key(session, ctx, body, keyring)


@router.get("/ssh-keys/{key_id}", response_model=SshKeyOut)
async def get_key(key_id: uuid.UUID, session: DbSession, response: Response) -> SshKeyOut:
    return with_etag(response, await credential_keys.get_key(session, key_id))


@router.get(
    "/ssh-keys/{key_id}/public-key",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def public_key(key_id: uuid.UUID, session: DbSession) -> Response:
    key = await credential_keys.require_key(session, key_id)
    filename = f"{key.name}.pub".replace('"', "")
    return Response(
        key.public_key + "\n",
        media_type="text/plain",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.patch("/ssh-keys/{key_id}", response_model=SshKeyOut)
async def update_key(
    key_id: uuid.UUID,
    body: SshKeyUpdate,
    ctx: Context,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> SshKeyOut:
    return with_etag(
        response, await credential_keys.update_key(session, ctx, key_id, body, if_match)
    )


@router.delete("/ssh-keys/{key_id}", status_code=NO_CONTENT)
async def delete_key(key_id: uuid.UUID, ctx: Context, session: DbSession) -> Response:
    await credential_keys.delete_key(session, ctx, key_id)
    return Response(status_code=NO_CONTENT)


@router.get("/ssh-keys/{key_id}/assignments", response_model=list[AssignmentOut])
async def list_assignments(key_id: uuid.UUID, session: DbSession) -> list[AssignmentOut]:
    return await credential_assignments.list_assignments(session, key_id)


@router.post(
    "/ssh-keys/{key_id}/assignments",
    response_model=AssignmentOut,
    status_code=status.HTTP_201_CREATED,
)
async def assign(
    key_id: uuid.UUID, body: AssignmentCreate, ctx: Context, session: DbSession
) -> AssignmentOut:
    return await credential_assignments.assign(session, ctx, key_id, body)


@router.delete("/ssh-keys/{key_id}/assignments/{server_id}", status_code=NO_CONTENT)
async def unassign(
    key_id: uuid.UUID, server_id: uuid.UUID, ctx: Context, session: DbSession
) -> Response:
    await credential_assignments.unassign(session, ctx, key_id, server_id)
    return Response(status_code=NO_CONTENT)


@router.post(
    "/ssh-keys/{key_id}/certificates",
    response_model=CertificateOut,
    status_code=status.HTTP_201_CREATED,
)
async def sign_certificate(
    key_id: uuid.UUID,
    body: CertificateRequest,
    ctx: Context,
    session: DbSession,
    keyring: KeyringDep,
) -> CertificateOut:
    """Sign a short-lived user certificate with this CA key (for a vault
    key or any public key); servers that trust the CA accept it."""
    return await credential_authority.sign_certificate(session, ctx, key_id, body, keyring)


@router.post(
    "/ssh-keys/{key_id}/rotate", response_model=JobStarted, status_code=status.HTTP_202_ACCEPTED
)
async def rotate(
    key_id: uuid.UUID,
    ctx: Context,
    session: DbSession,
    idempotency_key: IdempotencyKey = None,
) -> JobStarted:
    key = await credential_keys.require_key(session, key_id)
    if key.status == "retired":
        raise NotFound("this key is retired; there is nothing to rotate")
    job, created = await jobs.enqueue(
        session,
        ctx,
        tasks.ROTATE,
        {"key_id": str(key.id)},
        idempotency_key=idempotency_key,
        subject=("ssh_key", str(key.id)),
    )
    return JobStarted(job_id=job.id, status=job.status, created=created)


@operator_router.post(
    "/ssh-keys/{key_id}/test", response_model=JobStarted, status_code=status.HTTP_202_ACCEPTED
)
async def connection_test(
    key_id: uuid.UUID,
    body: ConnectionTestRequest,
    ctx: Context,
    session: DbSession,
    idempotency_key: IdempotencyKey = None,
) -> JobStarted:
    await credential_assignments.require_assignment(session, key_id, body.server_id)
    job, created = await jobs.enqueue(
        session,
        ctx,
        tasks.CONNECTION_TEST,
        {"key_id": str(key_id), "server_id": str(body.server_id)},
        idempotency_key=idempotency_key,
        subject=("ssh_key", str(key_id)),
    )
    return JobStarted(job_id=job.id, status=job.status, created=created)


# --- secrets ----------------------------------------------------------------------


@secrets_router.get("", response_model=list[SecretOut])
async def list_secrets(session: DbSession) -> list[SecretOut]:
    return await credential_stored_secrets.list_secrets(session)


@secrets_router.post("", response_model=SecretOut, status_code=status.HTTP_201_CREATED)
async def create_secret(
    body: SecretCreate, ctx: Context, session: DbSession, keyring: KeyringDep
) -> SecretOut:
    return await credential_stored_secrets.create_secret(session, ctx, body, keyring)


@secrets_router.get("/{secret_id}", response_model=SecretOut)
async def get_secret(secret_id: uuid.UUID, session: DbSession, response: Response) -> SecretOut:
    secret = await credential_stored_secrets.require_secret(session, secret_id)
    return with_etag(
        response, Versioned(credential_stored_secrets.secret_out(secret), secret.version)
    )


@secrets_router.patch("/{secret_id}", response_model=SecretOut)
async def update_secret(
    secret_id: uuid.UUID,
    body: SecretUpdate,
    ctx: Context,
    session: DbSession,
    keyring: KeyringDep,
    response: Response,
    if_match: IfMatch = None,
) -> SecretOut:
    return with_etag(
        response,
        await credential_stored_secrets.update_secret(
            session, ctx, secret_id, body, keyring, if_match
        ),
    )


@secrets_router.delete("/{secret_id}", status_code=NO_CONTENT)
async def delete_secret(secret_id: uuid.UUID, ctx: Context, session: DbSession) -> Response:
    await credential_stored_secrets.delete_secret(session, ctx, secret_id)
    return Response(status_code=NO_CONTENT)
