from __future__ import annotations

import re

import pytest

from infrawatch.monitoring.conditions import parse
from infrawatch.probes.paths import ConditionError, json_path_parts

FACTS = {
    "STATUS": 200,
    "RESPONSE_TIME": 120.5,
    "BODY": '{"status": "ok", "items": [1, 2], "nested": {"n": 3}}',
    "CERTIFICATE_EXPIRATION": 5 * 86400 * 1000,
    "CONNECTED": True,
}


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("[STATUS] == 200", True),
        ("[STATUS] != 200", False),
        ("[STATUS] == any(200, 201)", True),
        ("[RESPONSE_TIME] < 300", True),
        ("[RESPONSE_TIME] < 100", False),
        ("[BODY].status == ok", True),
        ("[BODY].status == broken", False),
        ("[BODY].nested.n >= 3", True),
        ("len([BODY].items) > 0", True),
        ("len([BODY].items) > 2", False),
        ("has([BODY].missing) == false", True),
        ("[BODY].status == pat(o*)", True),
        ("[CERTIFICATE_EXPIRATION] > 72h", True),
        ("[CERTIFICATE_EXPIRATION] > 7d", False),
        ("[CONNECTED] == true", True),
        ("[STATUS] == pat(2*)", True),
        ("[BODY].status == <html>", False),
    ],
)
def test_a_condition_is_judged_against_the_facts(text: str, holds: bool) -> None:
    assert parse(text, "http").evaluate(FACTS)[0] is holds


def test_a_failed_condition_says_what_was_seen() -> None:
    holds, seen = parse("[STATUS] == 200", "http").evaluate({"STATUS": 503})
    assert not holds and "503" in seen


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("[STATUS] = 200", "http", "no operator"),
        ("[NOPE] == 1", "http", "unknown placeholder"),
        ("[STATUS] == 200", "tcp", "not available for tcp"),
        ("[RESPONSE_TIME] < fast", "http", "needs a number"),
        ("[CERTIFICATE_EXPIRATION] > soon", "http", "not a duration"),
        ("[STATUS].x == 1", "http", "only [BODY] has a path"),
        ("STATUS == 200", "http", "placeholder like"),
        ("[STATUS] ==", "http", "nothing to compare"),
        # A right-hand side that can never match the placeholder's type.
        ("[STATUS] === banana", "http", "'===' is not an operator"),
        ("[STATUS] == banana", "http", "[STATUS] is a number, so 'banana' can never match it"),
        ("[STATUS] == any(200, ok)", "http", "so 'ok' can never match"),
        ("len([BODY].items) == many", "http", "len() is a number"),
        ("[CONNECTED] == yes", "tcp", "[CONNECTED] is true or false"),
        ("has([BODY].x) == 1", "http", "has() is true or false"),
    ],
)
def test_a_bad_condition_is_refused_with_the_reason(text: str, kind: str, message: str) -> None:
    with pytest.raises(ConditionError, match=re.escape(message)):
        parse(text, kind)


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("$.status", ("status",)),
        ("$", ()),
        ("$[0].id", (0, "id")),
        ("$.a.b[2]", ("a", "b", 2)),
        ("status.code", ("status", "code")),
        (".status", ("status",)),
    ],
)
def test_json_paths_are_read_with_or_without_the_jsonpath_root(
    path: str, parts: tuple[str | int, ...]
) -> None:
    assert json_path_parts(path) == parts
