"""Gatus-style conditions: `[STATUS] == 200`, `[BODY].status == ok`,
`len([BODY].items) > 0`, `[CERTIFICATE_EXPIRATION] > 72h`. Parsed once when
a monitor is saved (a bad one is a 422 naming what is wrong), evaluated
against the facts a probe gathered."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infrawatch.probes.paths import (
    ConditionError,
    parse_path,
    resolve_path,
)

OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
# Which facts each monitor type produces.
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "STATUS": frozenset({"http"}),
    "BODY": frozenset({"http"}),
    "RESPONSE_TIME": frozenset(
        {"http", "tcp", "ping", "dns", "tls", "ssh", "push", "agent", "node_exporter"}
    ),
    "CONNECTED": frozenset({"http", "tcp", "ping", "dns", "tls", "ssh", "node_exporter"}),
    "CERTIFICATE_EXPIRATION": frozenset({"http", "tls"}),
    "DNS_RCODE": frozenset({"dns"}),
    "IP": frozenset({"http", "tcp", "ping", "tls", "ssh"}),
    "BANNER": frozenset({"tcp", "ssh"}),
    "PACKET_LOSS": frozenset({"ping"}),
    # From the host agent's latest report (percent, and load per core).
    "CPU": frozenset({"agent"}),
    "MEMORY": frozenset({"agent", "node_exporter"}),
    "SWAP": frozenset({"agent", "node_exporter"}),
    "DISK": frozenset({"agent", "node_exporter"}),
    "LOAD_PER_CORE": frozenset({"agent", "node_exporter"}),
}
# What each placeholder's value is, so a right-hand side that can never
# match (`[STATUS] == banana`) is refused when saved, not compared forever.
NUMBERS = frozenset(
    {"STATUS", "RESPONSE_TIME", "PACKET_LOSS", "CPU", "MEMORY", "SWAP", "DISK", "LOAD_PER_CORE"}
)
BOOLEANS = frozenset({"CONNECTED"})
_LEFT = re.compile(
    r"^(?:(?P<func>len|has)\()?\[(?P<name>[A-Z_]+)\](?P<path>[.\[][^()]*)?(?(func)\))$"
)
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")


@dataclass(frozen=True)
class Condition:
    text: str
    placeholder: str
    path: tuple[str | int, ...]
    func: str | None
    operator: str
    expected: str

    def evaluate(self, facts: Mapping[str, Any]) -> tuple[bool, str]:
        """(holds, what was seen), e.g. (False, "[STATUS] (503) == 200")."""
        found, actual = resolve_path(facts.get(self.placeholder), self.path)
        if self.func == "has":
            actual = found
        elif self.func == "len":
            actual = len(actual) if found and hasattr(actual, "__len__") else 0
        holds = _compare(actual, self.operator, self.expected, self.placeholder)
        shown = json.dumps(actual, default=str)[:120] if actual is not None else "none"
        return holds, f"{self.text} (actual: {shown})"


def parse(text: str, monitor_type: str) -> Condition:
    op, position = _find_operator(text)
    if op is None:
        raise ConditionError(f"{text!r}: no operator; use one of {', '.join(OPERATORS)}")
    left, right = text[:position].strip(), text[position + len(op) :].strip()
    match = _LEFT.match(left)
    if not match:
        raise ConditionError(
            f"{text!r}: the left side must be a placeholder like [STATUS], [BODY].path "
            "or len([BODY].path)"
        )
    name = match["name"]
    if name not in PLACEHOLDERS:
        raise ConditionError(
            f"{text!r}: unknown placeholder [{name}]; known: "
            + ", ".join(f"[{p}]" for p in sorted(PLACEHOLDERS))
        )
    if monitor_type not in PLACEHOLDERS[name]:
        raise ConditionError(f"{text!r}: [{name}] is not available for {monitor_type} monitors")
    path = parse_path(match["path"] or "", text)
    if path and name != "BODY":
        raise ConditionError(f"{text!r}: only [BODY] has a path")
    if not right:
        raise ConditionError(f"{text!r}: nothing to compare with")
    if name == "CERTIFICATE_EXPIRATION":
        _duration_ms(right, text)
    if right[0] == "=":
        raise ConditionError(f"{text!r}: {op + right[0]!r} is not an operator")
    ordering = op in ("<", "<=", ">", ">=")
    if ordering and name != "CERTIFICATE_EXPIRATION" and _number(right) is None:
        raise ConditionError(f"{text!r}: {op} needs a number on the right")
    _check_type(text, match["func"] or name, right)
    return Condition(text, name, path, match["func"], op, right)


def _check_type(text: str, left: str, right: str) -> None:
    shown = f"{left}()" if left in ("len", "has") else f"[{left}]"
    if left == "len" or left in NUMBERS:
        kind = "a number"
    elif left == "has" or left in BOOLEANS:
        kind = "true or false"
    else:
        return
    if right.startswith("pat(") and right.endswith(")"):
        return
    options = (
        right[4:-1].split(",") if right.startswith("any(") and right.endswith(")") else [right]
    )
    for option in (o.strip() for o in options):
        fits = _number(option) is not None if kind == "a number" else option.lower() in _BOOLS
        if not fits:
            raise ConditionError(f"{text!r}: {shown} is {kind}, so {option!r} can never match it")


_BOOLS = ("true", "false")


def parse_all(texts: list[str], monitor_type: str) -> list[Condition]:
    return [parse(t, monitor_type) for t in texts]


def _find_operator(text: str) -> tuple[str | None, int]:
    depth = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif depth == 0:
            for op in OPERATORS:
                if text.startswith(op, i):
                    return op, i
        i += 1
    return None, -1


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, int | float):
        return float(raw)
    try:
        return float(str(raw))
    except ValueError:
        return None


def _duration_ms(raw: str, text: str = "") -> float:
    number = _number(raw)
    if number is not None:
        return number  # Gatus: a bare number is milliseconds
    match = _DURATION.match(raw)
    if not raw or not match or not any(match.groups()):
        raise ConditionError(f"{text or raw!r}: {raw!r} is not a duration like 72h, 7d or 30m")
    days, hours, minutes, seconds, millis = (int(g or 0) for g in match.groups())
    return float((((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000 + millis)


def _compare(actual: Any, op: str, expected: str, placeholder: str) -> bool:
    if placeholder == "CERTIFICATE_EXPIRATION":
        right: Any = _duration_ms(expected)
        left: Any = _number(actual)
    elif expected.startswith("pat(") and expected.endswith(")") and op in ("==", "!="):
        matched = fnmatch.fnmatchcase(str(actual if actual is not None else ""), expected[4:-1])
        return matched if op == "==" else not matched
    elif expected.startswith("any(") and expected.endswith(")") and op in ("==", "!="):
        options = [o.strip() for o in expected[4:-1].split(",")]
        hit = any(_equal(actual, o) for o in options)
        return hit if op == "==" else not hit
    elif op in ("==", "!="):
        return _equal(actual, expected) == (op == "==")
    else:
        left, right = _number(actual), _number(expected)
    if left is None or right is None:
        return False
    holds: bool = {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
        "==": left == right,
        "!=": left != right,
    }[op]
    return holds


def _equal(actual: Any, expected: str) -> bool:
    if isinstance(actual, bool):
        return expected.lower() == str(actual).lower()
    left, right = _number(actual), _number(expected)
    if left is not None and right is not None and not isinstance(actual, str):
        return left == right
    if isinstance(actual, int | float) and right is not None:
        return float(actual) == right
    text = actual if isinstance(actual, str) else json.dumps(actual) if actual is not None else ""
    return text == expected.strip('"')
