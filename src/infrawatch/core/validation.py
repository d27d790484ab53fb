"""Input types shared by every domain's schemas. They refuse what the
databases would refuse later (NUL characters, non-finite numbers, absurd
nesting), so bad input is a 422 that names the field, never a 500."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, StringConstraints, model_validator

MAX_JSON_DEPTH = 16
MAX_JSON_BYTES = 64 * 1024


class NullMeansUnset(BaseModel):
    """A create body where `"field": null` for an optional field means the
    same as leaving it out: the default applies. Clients that serialize
    every attribute (null for "I have no value") are then not refused for
    a field they never meant to set."""

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls_for_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {
            key: value
            for key, value in data.items()
            if not (value is None and key in cls.model_fields and has_default(cls, key))
        }


def has_default(model: type[BaseModel], name: str) -> bool:
    """The field may be left out and then takes a value other than None."""
    field = model.model_fields[name]
    return not field.is_required() and field.get_default(call_default_factory=True) is not None


def _no_control_chars(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _single_line(value: str) -> str:
    _no_control_chars(value)
    if any(ch in value for ch in "\r\n\t"):
        raise ValueError("must be a single line")
    return value


def check_json_document(value: Any, depth: int = 0) -> Any:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        _no_control_chars(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        raise ValueError("integers must fit in 53 bits to survive a JSON round trip")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_control_chars(str(key))
            check_json_document(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json_document(item, depth + 1)
    return value


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    import json

    check_json_document(value)
    if len(json.dumps(value)) > MAX_JSON_BYTES:
        raise ValueError(f"larger than {MAX_JSON_BYTES} bytes")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
    AfterValidator(_single_line),
]
ShortText = Annotated[str, StringConstraints(max_length=255), AfterValidator(_single_line)]
LongText = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_no_control_chars)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
JSONObject = Annotated[dict[str, Any], AfterValidator(_bounded_json)]
