from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditRecordOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_user_id: uuid.UUID | None
    actor_username: str
    token_name: str | None
    action: str
    object_type: str
    object_id: str | None
    changes: dict[str, Any]
    request_id: str
    source_ip: str | None
