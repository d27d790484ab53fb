from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ApplyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any] | str = Field(
        description="the fleet document: a mapping, or its YAML text (several documents too)"
    )
    dry_run: bool = Field(default=False, description="only say what would change")
    prune: bool = Field(
        default=False,
        description="delete what the document does not name, of the kinds it lists",
    )


class ChangeOut(BaseModel):
    action: Literal["create", "update", "delete"]
    kind: str
    name: str
    fields: list[str] = Field(description="for an update, the fields that change")


class ApplyOut(BaseModel):
    applied: bool
    request_id: str = Field(description="every audit record of this apply carries it")
    changes: list[ChangeOut]
