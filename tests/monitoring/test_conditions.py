from __future__ import annotations

import re

import pytest

from infrawatch.monitoring.conditions import ConditionError, parse

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
    ],
)
def test_a_bad_condition_is_refused_with_the_reason(text: str, kind: str, message: str) -> None:
    with pytest.raises(ConditionError, match=re.escape(message)):
        parse(text, kind)
