from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobOut(BaseModel):
    id: uuid.UUID
    type: str
    status: JobStatus
    arguments: dict[str, Any]
    attempts: int
    max_attempts: int
    progress: int
    progress_message: str | None
    result: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    subject_type: str | None
    subject_id: str | None
    created_by: str | None
    run_after: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    event_count: int


class JobEventOut(BaseModel):
    seq: int
    at: datetime
    kind: str
    message: str
    data: dict[str, Any] | None


class JobEventsOut(BaseModel):
    job_id: uuid.UUID
    status: JobStatus
    events: list[JobEventOut]
    # Pass as `after` to read on; unchanged when nothing new was there.
    last_seq: int
