"""JSON paths in responses (`$.status`, `$[0].id`, `status.code`), read
the same way by the HTTP probe and by monitor conditions."""

from __future__ import annotations

import json
import re
from typing import Any

_PATH_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


class ConditionError(ValueError):
    """A condition or a path that cannot be read, in words for the user."""


def parse_path(raw: str, text: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    position = 0
    for match in _PATH_PART.finditer(raw):
        if match.start() != position:
            break
        parts.append(int(match[2]) if match[2] is not None else match[1])
        position = match.end()
    if position != len(raw):
        raise ConditionError(f"{text!r}: cannot read the path {raw!r}; use .key or [index]")
    return tuple(parts)


def json_path_parts(path: str) -> tuple[str | int, ...]:
    """A response JSON path as users write it: `$.status`, `$[0].id` or `$`
    (JSONPath, as in Uptime Kuma), or the short `status.code` / `.status`."""
    raw = path.strip()
    if raw.startswith("$"):
        raw = raw[1:]
    elif raw and not raw.startswith((".", "[")):
        raw = "." + raw
    return parse_path(raw, path)


def resolve_path(value: Any, path: tuple[str | int, ...]) -> tuple[bool, Any]:
    if path and isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            return False, None
    for part in path:
        if isinstance(part, int) and isinstance(value, list) and -len(value) <= part < len(value):
            value = value[part]
        elif isinstance(part, str) and isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return False, None
    return value is not None, value
