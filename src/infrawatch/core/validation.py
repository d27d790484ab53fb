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


# --- validation errors in plain words ----------------------------------------
# pydantic's messages are written for developers ("String should match
# pattern '^[A-Za-z0-9]…$'", "Value error, …", a docs URL in str(exc)).
# Users see the field and the rule; the type codes stay for programs.
_PLAIN: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a field here",
    "string_too_short": "must be at least {min_length} characters long",
    "string_too_long": "must be at most {max_length} characters long",
    "too_short": "needs at least {min_length} item(s)",
    "too_long": "takes at most {max_length} item(s)",
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be {ge} or more",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be {le} or less",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "uuid_parsing": "must be an id (a UUID)",
    "uuid_type": "must be an id (a UUID)",
    "enum": "must be one of {expected}",
    "literal_error": "must be one of {expected}",
    "datetime_parsing": "must be a date and time (ISO 8601, e.g. 2026-01-31T12:00:00Z)",
    "datetime_from_date_parsing": "must be a date and time (ISO 8601, e.g. 2026-01-31T12:00:00Z)",
    "ip_address": "must be an IPv4 or IPv6 address",
    "json_invalid": "is not valid JSON",
    "url_parsing": "must be a URL",
    "url_scheme": "must be a URL starting with {expected_schemes}",
}
# What a pattern means, for the patterns users meet (names, usernames, tags).
_START = "must start with a letter or digit and hold only letters, digits and "
PATTERN_WORDS: dict[str, str] = {
    r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$": _START + "_ . @ - (64 at most)",
    r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$": _START + "_ . / - (63 at most)",
    r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$": _START + "_ . : / - (128 at most)",
    r"^[a-z0-9][a-z0-9._-]{0,63}$": "must start with a lower-case letter or digit and hold only "
    "lower-case letters, digits and . _ - (64 at most)",
    r"^[a-z0-9][a-z0-9-]{0,62}$": "must start with a lower-case letter or digit and hold only "
    "lower-case letters, digits and - (63 at most)",
    r"^[^\x00-\x1f]*$": "must not contain control characters (line breaks, tabs)",
    r"^[^\x00-\x08\x0a-\x1f]*$": "must be one line without control characters",
    r"^[^\x00]*$": "must not contain NUL characters",
    r"^[^\s\x00]+$": "must not contain spaces",
    r"^[1-5]\d\d(-[1-5]\d\d)?$": "must be a status code or a range of them (200, 200-299)",
    r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$": "must be a header name (letters, digits, - and the "
    "characters HTTP allows; no spaces or colons)",
}


def plain_message(error: dict[str, Any]) -> str:
    """One pydantic error's rule in words, without the field."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    message = str(error.get("msg", ""))
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return PATTERN_WORDS.get(pattern, "has characters that are not allowed here")
    template = _PLAIN.get(kind)
    if template is not None:
        try:
            return template.format(**{k: str(v) for k, v in ctx.items()})
        except (KeyError, IndexError):
            pass
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def field_name(loc: Any) -> str:
    """`body.servers.0.name` → `servers.0.name`: where the error is, as a user
    would write it (the request's part is noise)."""
    parts = [str(p) for p in (loc or ()) if p not in ("body", "query", "path")]
    return ".".join(parts)


def plain_errors(errors: Any) -> list[str]:
    """`field: rule` lines for a list of pydantic errors."""
    lines = []
    for error in errors:
        where = field_name(error.get("loc"))
        rule = plain_message(error)
        lines.append(f"{where}: {rule}" if where else rule)
    return lines
